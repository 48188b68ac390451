#pragma once
// The learning rate of each step. "constant" is the tutorial's (Keras' fit with a fixed lr); "cosine" decays
// from the given lr to a floor along half a cosine over the whole run (Keras' CosineDecay, PyTorch's
// CosineAnnealingLR stepped per batch), which lets a short schedule settle into a minimum instead of ending
// at a fixed lr's noise level.
//
// A function of the step's position alone, so a resumed run continues the same curve.
#include <cstdint>
#include <string>

namespace mriae {

struct LrSchedule {
  std::string kind = "constant";  // or "cosine"
  double lr = 1e-3;               // the first step's lr (all of them for "constant")
  double floor = 0;               // "cosine": the lr the last step approaches, as a fraction of lr
  int64_t total_steps = 1;        // "cosine": steps in the whole run

  // Throws std::invalid_argument naming the option for an unknown kind or an impossible value.
  void validate() const;
  // The lr of step `step` (0-based, counted over the whole run, resumed parts included).
  double at(int64_t step) const;
};

}  // namespace mriae
