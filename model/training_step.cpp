#include "model/training_step.h"

#include <cmath>

namespace mriae {

double train_step(Autoencoder& model, RMSprop& optimizer, const Tensor& batch) {
  Tape tape;
  model.parameters().zero_grad();
  const Tensor images = model.input(batch);
  Var loss = mse_loss(&tape, model.forward(&tape, Var(images), true), images);
  tape.backward(loss);
  // Read only now: on the GPU the host then waits while the backward pass runs, not before queuing it, and
  // only the optimizer's single launch follows the wait.
  const double l = loss.value().item();
  if (!std::isfinite(l)) return l;
  optimizer.step();
  return l;
}

}  // namespace mriae
