#pragma once
#include "engine/collectives.h"
#include "engine/rmsprop.h"
#include "model/autoencoder.h"

namespace mriae {

// One step of the tutorial's fit(): forward in training mode, MSE against the images themselves (an
// autoencoder reconstructs its input), backward, RMSprop. images may be float32 for a float64 model: they
// are converted (exactly) first. Returns the batch loss. A NaN or infinite loss is returned without applying
// the step, so the weights stay as they were.
double train_step(Autoencoder& model, RMSprop& optimizer, const Tensor& images);
// The same step with the loss taken against another target: a denoising autoencoder's noisy input and
// clean target.
double train_step(Autoencoder& model, RMSprop& optimizer, const Tensor& input, const Tensor& target);

// Data parallelism: this process holds `local` of the global batch's `global` samples (its input and
// target), and `processes` the rest.
struct BatchShare {
  Collectives* processes = nullptr;
  int64_t local = 0, global = 0;
};
// The same step over a global batch split across processes: this process's loss is weighted by its share
// of the global batch (local / global), so the gradients summed over the processes are those of the mean
// loss over the global batch, uneven shares included. Every process then applies the same RMSprop update
// to the same weights. Returns the global batch loss (the same on every process; a NaN or infinite one on
// any process skips the update everywhere). Each process must hold at least one sample.
double train_step(Autoencoder& model, RMSprop& optimizer, const Tensor& input, const Tensor& target,
                  const BatchShare& share);

}  // namespace mriae
