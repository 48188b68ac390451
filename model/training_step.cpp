#include "model/training_step.h"

#include <cmath>

namespace mriae {

double train_step(Autoencoder& model, RMSprop& optimizer, const Tensor& images) {
  return train_step(model, optimizer, images, images);
}

double train_step(Autoencoder& model, RMSprop& optimizer, const Tensor& input, const Tensor& target) {
  Tape tape;
  model.parameters().zero_grad();
  const Tensor x = model.input(input);
  // An autoencoder's target is its input: convert it once.
  const Tensor t = target.raw_data() == input.raw_data() && target.shape() == input.shape() ? x : model.input(target);
  Var loss = mse_loss(&tape, model.forward(&tape, Var(x), true), t);
  tape.backward(loss);
  // Read only now: on the GPU the host then waits while the backward pass runs, not before queuing it, and
  // only the optimizer's single launch follows the wait.
  const double l = loss.value().item();
  if (!std::isfinite(l)) return l;
  optimizer.step();
  return l;
}

}  // namespace mriae
