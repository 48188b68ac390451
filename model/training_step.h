#pragma once
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

}  // namespace mriae
