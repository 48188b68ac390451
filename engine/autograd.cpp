#include "engine/autograd.h"

#include <algorithm>
#include <stdexcept>

#ifdef MRIAE_WITH_CUDA
#include "engine/cuda_context.h"
#include "kernels/cuda/elementwise.h"
#endif

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

void Tape::backward(Var& loss, double seed_value) {
  if (loss.value().numel() != 1)
    throw std::invalid_argument("backward needs a one-element loss, got shape " + shape_str(loss.shape()));
  if (!loss.requires_grad()) throw std::invalid_argument("backward: the loss does not depend on any parameter");
  // dL/dL = 1, written over whatever the buffer held. On a GPU by a kernel queued on the compute stream:
  // a host tensor of ones would cost a pageable copy and a stream synchronisation every step.
  const Var::GradTarget seed = loss.grad_target();
  const int64_t n = loss.value().numel();
  if (loss.value().device() == Device::CPU) {
    if (loss.dtype() == DType::Float64)
      std::fill(seed.data<double>(), seed.data<double>() + n, seed_value);
    else
      std::fill(seed.data<float>(), seed.data<float>() + n, float(seed_value));
  } else {
#ifdef MRIAE_WITH_CUDA
    cuda::fill(seed.data<float>(), float(seed_value), n, Context::get().cuda().compute_stream());  // the GPU is float32 only
#else
    throw std::runtime_error("backward of a CUDA loss in a build without the CUDA backend");
#endif
  }
  for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
    (*it)();
    *it = nullptr;  // free what this step saved as soon as it has run
  }
  steps_.clear();
}

}  // namespace mriae
