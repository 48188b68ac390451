#pragma once
// The training run behind `mriae train`: the tutorial's fit() with what users of a training engine expect
// around it (progress, history, plot, checkpoints every epoch, exact resume, clean interruption).
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>

#include "apps/run_config.h"
#include "apps/run_files.h"

namespace mriae {

// A NaN or infinite loss: training stops before the step that produced it updates any weight.
class TrainingDiverged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TrainResult {
  std::vector<EpochRecord> history;
  bool interrupted = false;
  std::string last_checkpoint, best_checkpoint;
};

// Runs (or, with options.resume, continues) training; writes into options.out_dir:
//   config.json, history.csv, loss.png, last.safetensors (every epoch and on interruption),
//   best.safetensors (lowest val_loss so far).
// console: progress output (null for none). stop_requested, polled after every step, ends the run with a
// checkpoint of the exact position (Ctrl-C); it may be empty.
TrainResult train(const TrainOptions& options, std::FILE* console, const std::function<bool()>& stop_requested = {});

}  // namespace mriae
