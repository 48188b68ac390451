#include "model/training_step.h"

#include <cmath>

namespace mriae {

float train_step(Autoencoder& model, RMSprop& optimizer, const Tensor& images) {
  return train_step(model, optimizer, images, images);
}

float train_step(Autoencoder& model, RMSprop& optimizer, const Tensor& input, const Tensor& target) {
  Tape tape;
  model.parameters().zero_grad();
  Var loss = mse_loss(&tape, model.forward(&tape, Var(input), true), target);
  tape.backward(loss);
  // Read only now: on the GPU the host then waits while the backward pass runs, not before queuing it, and
  // only the optimizer's single launch follows the wait.
  const float l = loss.value().item();
  if (!std::isfinite(l)) return l;
  optimizer.step();
  return l;
}

}  // namespace mriae
