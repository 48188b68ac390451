#include "model/training_step.h"

#include <cmath>
#include <stdexcept>
#include <string>

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

double train_step(Autoencoder& model, RMSprop& optimizer, const Tensor& input, const Tensor& target,
                  const BatchShare& share) {
  if (!share.processes || share.processes->size() == 1) return train_step(model, optimizer, input, target);
  if (share.local < 1 || share.local > share.global || input.dim(0) != share.local)
    throw std::logic_error("train_step: this process holds " + std::to_string(input.dim(0)) + " samples as " +
                           std::to_string(share.local) + " of " + std::to_string(share.global));
  Tape tape;
  model.parameters().zero_grad();
  const Tensor x = model.input(input);
  const Tensor t = target.raw_data() == input.raw_data() && target.shape() == input.shape() ? x : model.input(target);
  Var loss = mse_loss(&tape, model.forward(&tape, Var(x), true), t);
  tape.backward(loss, double(share.local) / double(share.global));
  double sum = loss.value().item() * double(share.local);
  share.processes->sum(&sum, 1);
  const double l = sum / double(share.global);
  if (!std::isfinite(l)) return l;
  Tensor grads = model.parameters().flat_grads();
  share.processes->sum(grads);
  optimizer.step();
  return l;
}

}  // namespace mriae
