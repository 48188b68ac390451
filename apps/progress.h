#pragma once
// Keras-style training progress:
//   Epoch 3/300
//    384/1224 [========>.....................] - ETA: 5s - loss: 0.1456
//   1224/1224 [==============================] - 7s 6ms/step - loss: 0.1201 - val_loss: 0.0838
// On a terminal the bar redraws in place; into a pipe or file only the epoch lines are written.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace mriae {

class Progress {
 public:
  // out may be null (quiet). interactive: redraw a bar during the epoch.
  Progress(std::FILE* out, bool interactive) : out_(out), interactive_(interactive) {}

  void begin_epoch(int64_t epoch, int64_t epochs, int64_t samples);
  void update(int64_t samples_done, int64_t steps_done, double running_loss);
  // Returns the epoch's summary line (also printed).
  std::string end_epoch(double loss, double val_loss, int64_t steps);
  double epoch_seconds() const;

  static std::string bar(int64_t done, int64_t total, int width = 30);
  static std::string duration(double seconds);

 private:
  std::FILE* out_;
  bool interactive_;
  int64_t samples_ = 0;
  std::chrono::steady_clock::time_point start_{}, last_draw_{};
};

}  // namespace mriae
