#include "model/training_step.h"

#include <cmath>

namespace mriae {

float train_step(Autoencoder& model, RMSprop& optimizer, const Tensor& images) {
  Tape tape;
  model.parameters().zero_grad();
  Var loss = mse_loss(&tape, model.forward(&tape, Var(images), true), images);
  const float l = loss.value().item();
  if (!std::isfinite(l)) return l;
  tape.backward(loss);
  optimizer.step();
  return l;
}

}  // namespace mriae
