#include "engine/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace mriae {

void LrSchedule::validate() const {
  if (kind != "constant" && kind != "cosine")
    throw std::invalid_argument("--lr-schedule must be 'constant' or 'cosine', not '" + kind + "'");
  if (!(lr > 0) || !std::isfinite(lr)) throw std::invalid_argument("--lr must be a positive number");
  if (!(floor >= 0 && floor <= 1)) throw std::invalid_argument("--lr-floor must be a fraction of --lr in [0, 1]");
  if (total_steps <= 0) throw std::invalid_argument("learning-rate schedule: the run has no steps");
}

double LrSchedule::at(int64_t step) const {
  if (kind == "constant") return lr;
  const double t = double(std::clamp<int64_t>(step, 0, total_steps)) / double(total_steps);
  const double pi = std::acos(-1.0);
  return lr * (floor + (1 - floor) * 0.5 * (1 + std::cos(pi * t)));
}

}  // namespace mriae
