#include "engine/rmsprop.h"

#include <stdexcept>

#include "kernels/cpu/optim.h"

namespace mriae {

RMSprop::RMSprop(ParameterSet& params, const RMSpropOptions& options) : params_(params), opt_(options) {
  if (!(opt_.lr > 0) || !(opt_.rho >= 0 && opt_.rho < 1) || !(opt_.eps >= 0))
    throw std::invalid_argument("RMSprop: need lr > 0, 0 <= rho < 1 and eps >= 0");
  acc_ = Tensor::zeros(params.flat_values().shape(), params.flat_values().device());
}

void RMSprop::step() {
  const Tensor& p = params_.flat_values();
  if (p.device() == Device::CUDA)
    throw std::runtime_error("RMSprop: this build has no CUDA kernel for it; run with --device cpu");
  cpu::rmsprop_update(p.data(), acc_.data(), params_.flat_grads().data(), p.numel(), opt_.lr, opt_.rho, opt_.eps);
  ++steps_;
}

}  // namespace mriae
