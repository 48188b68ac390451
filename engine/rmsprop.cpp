#include "engine/rmsprop.h"

#include <cmath>
#include <stdexcept>

#include "kernels/cpu/optim.h"

#ifdef MRIAE_WITH_CUDA
#include "engine/cuda_context.h"
#include "kernels/cuda/optim.h"
#endif

namespace mriae {

RMSprop::RMSprop(ParameterSet& params, const RMSpropOptions& options) : params_(params), opt_(options) {
  if (!(opt_.lr > 0) || !(opt_.rho >= 0 && opt_.rho < 1) || !(opt_.eps >= 0))
    throw std::invalid_argument("RMSprop: need lr > 0, 0 <= rho < 1 and eps >= 0");
  acc_ = Tensor::zeros(params.flat_values().shape(), params.flat_values().device(), params.flat_values().dtype());
}

void RMSprop::set_lr(double lr) {
  if (!(lr > 0) || !std::isfinite(lr)) throw std::invalid_argument("RMSprop: the learning rate must be positive");
  opt_.lr = lr;
}

void RMSprop::step() {
  const Tensor& p = params_.flat_values();
  if (p.device() == Device::CUDA) {
#ifdef MRIAE_WITH_CUDA
    cuda::rmsprop_update(p.data(), acc_.data(), params_.flat_grads().data(), p.numel(), float(opt_.lr),
                         float(opt_.rho), float(opt_.eps), Context::get().cuda().compute_stream());
#else
    throw std::runtime_error("RMSprop: this build has no CUDA backend; run with --device cpu");
#endif
  } else if (p.dtype() == DType::Float64) {
    cpu::rmsprop_update(p.data<double>(), acc_.data<double>(), params_.flat_grads().data<double>(), p.numel(),
                        opt_.lr, opt_.rho, opt_.eps);
  } else {
    cpu::rmsprop_update(p.data(), acc_.data(), params_.flat_grads().data(), p.numel(), float(opt_.lr),
                        float(opt_.rho), float(opt_.eps));
  }
  ++steps_;
}

}  // namespace mriae
