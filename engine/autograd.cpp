#include "engine/autograd.h"

#include <stdexcept>


namespace mriae {

Var::Var(Tensor value, bool requires_grad) : impl_(std::make_shared<Impl>()) {
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
}

Tensor& Var::grad_accumulator() const {
  if (!impl_->grad.defined())
    impl_->grad = Tensor::zeros(impl_->value.shape(), impl_->value.device(), impl_->value.dtype());
  return impl_->grad;
}

Var::GradTarget Var::grad_target() const {
  if (impl_->grad.defined()) return {impl_->grad.raw_data(), true};
  impl_->grad = Tensor::empty(impl_->value.shape(), impl_->value.device(), impl_->value.dtype());
  return {impl_->grad.raw_data(), false};
}

void Var::bind_grad(Tensor grad) {
  if (grad.shape() != impl_->value.shape() || grad.dtype() != impl_->value.dtype())
    throw std::invalid_argument("bind_grad: a " + std::string(dtype_name(grad.dtype())) + " gradient of shape " +
                                shape_str(grad.shape()) + " for a " + dtype_name(impl_->value.dtype()) +
                                " value of shape " + shape_str(impl_->value.shape()));
  impl_->grad = std::move(grad);
  impl_->grad_bound = true;
}

void Var::drop_grad() {
  if (!impl_->grad_bound) impl_->grad = Tensor();
}

void Tape::backward(Var& loss) {
  if (loss.value().numel() != 1)
    throw std::invalid_argument("backward needs a one-element loss, got shape " + shape_str(loss.shape()));
  if (!loss.requires_grad()) throw std::invalid_argument("backward: the loss does not depend on any parameter");
  loss.grad_accumulator().copy_from(Tensor::full(loss.shape(), 1.0, Device::CPU, loss.dtype()));
  for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
    (*it)();
    *it = nullptr;  // free what this step saved as soon as it has run
  }
  steps_.clear();
}

}  // namespace mriae
