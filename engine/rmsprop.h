#pragma once
// RMSprop exactly as Keras 2.2: a = rho*a + (1-rho)*g^2; p -= lr*g / (sqrt(a) + eps), a starting at 0.
// (torch.optim.RMSprop with alpha=rho computes the same.)
#include "engine/parameters.h"

namespace mriae {

// In double so that a float64 model gets the exact hyperparameters; float32 kernels take them rounded.
struct RMSpropOptions {
  double lr = 1e-3;
  double rho = 0.9;
  double eps = 1e-7;
};

class RMSprop {
 public:
  RMSprop(ParameterSet& params, const RMSpropOptions& options);
  // Updates every parameter from its gradient in one pass over the flat buffers.
  void step();
  const RMSpropOptions& options() const { return opt_; }
  // For a learning-rate schedule: the lr of the next step() calls. Throws unless positive and finite.
  void set_lr(double lr);
  // The per-parameter accumulators, laid out (and typed) like ParameterSet::flat_values (for checkpoints).
  Tensor& accumulators() { return acc_; }
  const Tensor& accumulators() const { return acc_; }
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }

 private:
  ParameterSet& params_;
  RMSpropOptions opt_;
  Tensor acc_;
  int64_t steps_ = 0;
};

}  // namespace mriae
