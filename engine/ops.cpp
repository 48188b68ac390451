#include "engine/ops.h"

#include "engine/collectives.h"

#include <initializer_list>
#include <stdexcept>
#include <string>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/optim.h"
#include "kernels/cpu/pooling.h"

#ifdef MRIAE_WITH_CUDA
#include "engine/cuda_context.h"
#include "kernels/cuda/batchnorm.h"
#include "kernels/cuda/conv_cudnn.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/loss.h"
#include "kernels/cuda/optim.h"
#include "kernels/cuda/pooling.h"
#endif

namespace mriae {

namespace {

NchwDims dims_of(const Tensor& t, const char* op) {
  if (t.ndim() != 4) throw std::invalid_argument(std::string(op) + ": expected an NCHW tensor, got shape " + shape_str(t.shape()));
  return {int(t.dim(0)), int(t.dim(1)), int(t.dim(2)), int(t.dim(3))};
}

void same_device(const char* op, const Var& a, const Var& b) {
  if (a.device() != b.device())
    throw std::invalid_argument(std::string(op) + ": inputs on different devices (" + device_name(a.device()) +
                                " and " + device_name(b.device()) + ")");
  if (a.dtype() != b.dtype())
    throw std::invalid_argument(std::string(op) + ": inputs of different dtypes (" + dtype_name(a.dtype()) + " and " +
                                dtype_name(b.dtype()) + ")");
}

// The CPU kernels are templates on the scalar: cpu_scalar(dtype, f) calls f(Scalar<T>{}) with T the tensors'
// element type, so each op names its kernel call once. (The GPU computes in float32 only; Tensor refuses a
// float64 tensor there.)
template <typename T> struct Scalar {
  using type = T;
};
template <typename F> void cpu_scalar(DType dtype, F&& f) {
  if (dtype == DType::Float64)
    f(Scalar<double>{});
  else
    f(Scalar<float>{});
}

[[noreturn]] [[maybe_unused]] void no_cuda_kernel(const char* op) {
  throw std::runtime_error(std::string(op) + ": this build has no CUDA backend; run with --device cpu");
}

// ON_CUDA(op, call) is the CUDA kernel call in a CUDA build and an error naming the op otherwise, so each
// op shows both backends side by side without #ifdefs. GPU work goes to the compute stream, in order.
#ifdef MRIAE_WITH_CUDA
#define ON_CUDA(op, ...) __VA_ARGS__
cudaStream_t stream() { return Context::get().cuda().compute_stream(); }
cuda::Conv3x3& cudnn_conv() { return Context::get().cuda().conv(); }
#else
#define ON_CUDA(op, ...) no_cuda_kernel(op)
#endif

bool needs_grad(Tape* tape, const Var& v) { return tape && v.defined() && v.requires_grad(); }
bool records_gradients(Tape* tape, std::initializer_list<const Var*> vars) {
  for (const Var* v : vars)
    if (needs_grad(tape, *v)) return true;
  return false;
}

}  // namespace

namespace {

// The parameters and statistics of a batchnorm over `channels` channels of x fit x.
void check_batchnorm(int64_t channels, const Var& x, const Var& gamma, const Var& beta, const BatchNormState& state) {
  same_device("batchnorm", x, gamma);
  same_device("batchnorm", x, beta);
  const Shape cs{channels};
  if (gamma.shape() != cs || beta.shape() != cs || state.moving_mean.shape() != cs)
    throw std::invalid_argument("batchnorm: per-channel tensors do not match " + std::to_string(channels) +
                                " channels");
  if (state.moving_mean.device() != x.device())
    throw std::invalid_argument(std::string("batchnorm: moving statistics on ") +
                                device_name(state.moving_mean.device()) + " but the input on " +
                                device_name(x.device()));
  if (state.moving_mean.dtype() != x.dtype())
    throw std::invalid_argument(std::string("batchnorm: ") + dtype_name(state.moving_mean.dtype()) +
                                " moving statistics for a " + dtype_name(x.dtype()) + " input");
}

// The inference batchnorm that a CPU convolution runs on its output as it goes (conv_relu_batchnorm).
struct BatchNormEval {
  const Var& gamma;
  const Var& beta;
  const BatchNormState& state;
  double eps;
};

// add_bias false: y = conv(x, w) without b, whose gradient is still b's (dL/db = the channel sums of dy):
// the caller adds b where it reads y (conv_relu_batchnorm). y must not be seen by anyone else.
// bn (CPU only, or null): y = the inference batchnorm of relu(conv(x, w) + b) instead, in one pass.
// upsampled (CPU only, without gradients): the convolution of upsample2(x), made in cache. pooled (CPU only,
// without gradients, and where cpu::conv3x3_fuses_pooling): y = maxpool2 of the result instead.
Var conv2d3x3_impl(Tape* tape, const Var& x, const Var& w, const Var& b, bool add_bias,
                   const BatchNormEval* bn = nullptr, bool upsampled = false, bool pooled = false) {
  NchwDims xd = dims_of(x.value(), "conv2d3x3");
  if ((upsampled || pooled) && (x.device() == Device::CUDA || records_gradients(tape, {&x, &w, &b})))
    throw std::logic_error("conv2d3x3: upsampling and pooling are fused on the CPU in inference only");
  if (upsampled) {
    xd.h *= 2;
    xd.w *= 2;
  }
  same_device("conv2d3x3", x, w);
  same_device("conv2d3x3", x, b);
  const Shape& ws = w.shape();
  if (ws.size() != 4 || ws[1] != xd.c || ws[2] != 3 || ws[3] != 3)
    throw std::invalid_argument("conv2d3x3: weight shape " + shape_str(ws) + " does not fit input " +
                                shape_str(x.shape()) + " (expected [K, " + std::to_string(xd.c) + ", 3, 3])");
  const int k = int(ws[0]);
  if (b.shape() != Shape{k}) throw std::invalid_argument("conv2d3x3: bias shape " + shape_str(b.shape()) + " for " + std::to_string(k) + " filters");
  if (bn) check_batchnorm(k, x, bn->gamma, bn->beta, bn->state);
  const bool gpu = x.device() == Device::CUDA;

  const DType dt = x.dtype();
  if (pooled && (xd.h < 2 || xd.w < 2))
    throw std::invalid_argument("maxpool2: input " + shape_str({xd.n, k, xd.h, xd.w}) +
                                " is smaller than the 2x2 window");
  Tensor y = pooled ? Tensor::empty({xd.n, k, xd.h / 2, xd.w / 2}, x.device(), dt)
                    : Tensor::empty({xd.n, k, xd.h, xd.w}, x.device(), dt);
  if (gpu) {
    ON_CUDA("conv2d3x3", cudnn_conv().forward(x.value().data(), w.value().data(),
                                              add_bias ? b.value().data() : nullptr, y.data(), xd, k));
  } else {
    cpu_scalar(dt, [&](auto s) {
      using T = typename decltype(s)::type;
      Tensor scratch = Tensor::empty({cpu::conv3x3_forward_scratch_elems(xd, k)}, Device::CPU, dt);
      cpu::ReluBatchnormEval<T> epi{};
      if (bn)
        epi = {bn->gamma.value().data<T>(), bn->beta.value().data<T>(), bn->state.moving_mean.data<T>(),
               bn->state.moving_var.data<T>(), T(bn->eps)};
      cpu::ConvFusion<T> fuse;
      fuse.bn = bn ? &epi : nullptr;
      fuse.upsampled_x = upsampled;
      fuse.pooled = pooled ? y.data<T>() : nullptr;
      cpu::conv3x3_forward(x.value().data<T>(), w.value().data<T>(), add_bias ? b.value().data<T>() : nullptr,
                           pooled ? nullptr : y.data<T>(), xd, k, scratch.data<T>(), false, fuse);
    });
  }
  const bool gx = needs_grad(tape, x), gw = needs_grad(tape, w), gb = needs_grad(tape, b);
  Var out(y, gx || gw || gb);
  if (gx || gw || gb) {
    tape->record([x, w, b, out, xd, k, gx, gw, gb, gpu, dt]() {
      if (!out.has_grad()) return;
      // Both backends write x's gradient outright into a fresh buffer (no zero fill) and add to it only when
      // another consumer got there first.
      const Var::GradTarget dx = gx ? x.grad_target() : Var::GradTarget{nullptr, true};
      if (gpu) {
        ON_CUDA("conv2d3x3", cudnn_conv().backward(x.value().data(), w.value().data(), out.grad().data(), dx.data(),
                                                   gw ? w.grad_accumulator().data() : nullptr,
                                                   gb ? b.grad_accumulator().data() : nullptr, xd, k, dx.accumulate));
        return;
      }
      cpu_scalar(dt, [&](auto s) {
        using T = typename decltype(s)::type;
        T* dw = gw ? w.grad_accumulator().data<T>() : nullptr;
        T* db = gb ? b.grad_accumulator().data<T>() : nullptr;
        Tensor scratch = Tensor::empty({cpu::conv3x3_scratch_elems(xd, k)}, Device::CPU, dt);
        cpu::conv3x3_backward(x.value().data<T>(), w.value().data<T>(), out.grad().data<T>(), dx.data<T>(), dw, db, xd,
                              k, scratch.data<T>(), dx.accumulate);
      });
    });
  }
  return out;
}

}  // namespace

Var conv2d3x3(Tape* tape, const Var& x, const Var& w, const Var& b, ConvInput input) {
  if (input == ConvInput::AsIs) return conv2d3x3_impl(tape, x, w, b, true);
  if (x.device() != Device::CUDA && !records_gradients(tape, {&x, &w, &b}))
    return conv2d3x3_impl(nullptr, x, w, b, true, nullptr, true);
  return conv2d3x3_impl(tape, upsample2(tape, x), w, b, true);
}

Var relu(Tape* tape, const Var& x) {
  const bool gpu = x.device() == Device::CUDA;
  Tensor y = Tensor::empty(x.shape(), x.device(), x.dtype());
  if (gpu)
    ON_CUDA("relu", cuda::relu_forward(x.value().data(), y.data(), y.numel(), stream()));
  else
    cpu_scalar(x.dtype(), [&](auto s) {
      using T = typename decltype(s)::type;
      cpu::relu_forward(x.value().data<T>(), y.data<T>(), y.numel());
    });
  Var out(y, needs_grad(tape, x));
  if (needs_grad(tape, x)) {
    tape->record([x, out, gpu]() {
      if (!out.has_grad()) return;
      const Var::GradTarget dx = x.grad_target();
      if (gpu)
        ON_CUDA("relu", cuda::relu_backward(x.value().data(), out.grad().data(), dx.data(), x.value().numel(), stream(),
                                            dx.accumulate));
      else
        cpu_scalar(x.dtype(), [&](auto s) {
          using T = typename decltype(s)::type;
          cpu::relu_backward(x.value().data<T>(), out.grad().data<T>(), dx.data<T>(), x.value().numel(), dx.accumulate);
        });
    });
  }
  return out;
}

Var sigmoid(Tape* tape, const Var& x) {
  const bool gpu = x.device() == Device::CUDA;
  Tensor y = Tensor::empty(x.shape(), x.device(), x.dtype());
  if (gpu)
    ON_CUDA("sigmoid", cuda::sigmoid_forward(x.value().data(), y.data(), y.numel(), stream()));
  else
    cpu_scalar(x.dtype(), [&](auto s) {
      using T = typename decltype(s)::type;
      cpu::sigmoid_forward(x.value().data<T>(), y.data<T>(), y.numel());
    });
  Var out(y, needs_grad(tape, x));
  if (needs_grad(tape, x)) {
    tape->record([x, out, gpu]() {
      if (!out.has_grad()) return;
      const Var::GradTarget dx = x.grad_target();
      if (gpu)
        ON_CUDA("sigmoid", cuda::sigmoid_backward(out.value().data(), out.grad().data(), dx.data(), x.value().numel(),
                                                  stream(), dx.accumulate));
      else
        cpu_scalar(x.dtype(), [&](auto s) {
          using T = typename decltype(s)::type;
          cpu::sigmoid_backward(out.value().data<T>(), out.grad().data<T>(), dx.data<T>(), x.value().numel(),
                                dx.accumulate);
        });
    });
  }
  return out;
}

Var maxpool2(Tape* tape, const Var& x) {
  const NchwDims xd = dims_of(x.value(), "maxpool2");
  if (xd.h < 2 || xd.w < 2) throw std::invalid_argument("maxpool2: input " + shape_str(x.shape()) + " is smaller than the 2x2 window");
  const bool gpu = x.device() == Device::CUDA;
  Tensor y = Tensor::empty({xd.n, xd.c, xd.h / 2, xd.w / 2}, x.device(), x.dtype());
  // On the input's device: the backward kernel reads it there.
  auto argmax = std::make_shared<Storage>(size_t(y.numel()) * sizeof(int32_t), x.device());
  auto* idx = static_cast<int32_t*>(argmax->data());
  if (gpu)
    ON_CUDA("maxpool2", cuda::maxpool2_forward(x.value().data(), y.data(), idx, xd, stream()));
  else
    cpu_scalar(x.dtype(), [&](auto s) {
      using T = typename decltype(s)::type;
      cpu::maxpool2_forward(x.value().data<T>(), y.data<T>(), idx, xd);
    });
  Var out(y, needs_grad(tape, x));
  if (needs_grad(tape, x)) {
    tape->record([x, out, argmax, xd, gpu]() {
      if (!out.has_grad()) return;
      const auto* idx = static_cast<const int32_t*>(argmax->data());
      const Var::GradTarget dx = x.grad_target();
      if (gpu)
        ON_CUDA("maxpool2", cuda::maxpool2_backward(out.grad().data(), idx, dx.data(), xd, stream(), dx.accumulate));
      else
        cpu_scalar(x.dtype(), [&](auto s) {
          using T = typename decltype(s)::type;
          cpu::maxpool2_backward(out.grad().data<T>(), idx, dx.data<T>(), xd, dx.accumulate);
        });
    });
  }
  return out;
}

Var upsample2(Tape* tape, const Var& x) {
  const NchwDims xd = dims_of(x.value(), "upsample2");
  const bool gpu = x.device() == Device::CUDA;
  Tensor y = Tensor::empty({xd.n, xd.c, xd.h * 2, xd.w * 2}, x.device(), x.dtype());
  if (gpu)
    ON_CUDA("upsample2", cuda::upsample2_forward(x.value().data(), y.data(), xd, stream()));
  else
    cpu_scalar(x.dtype(), [&](auto s) {
      using T = typename decltype(s)::type;
      cpu::upsample2_forward(x.value().data<T>(), y.data<T>(), xd);
    });
  Var out(y, needs_grad(tape, x));
  if (needs_grad(tape, x)) {
    tape->record([x, out, xd, gpu]() {
      if (!out.has_grad()) return;
      const Var::GradTarget dx = x.grad_target();
      if (gpu)
        ON_CUDA("upsample2", cuda::upsample2_backward(out.grad().data(), dx.data(), xd, stream(), dx.accumulate));
      else
        cpu_scalar(x.dtype(), [&](auto s) {
          using T = typename decltype(s)::type;
          cpu::upsample2_backward(out.grad().data<T>(), dx.data<T>(), xd, dx.accumulate);
        });
    });
  }
  return out;
}

BatchNormState BatchNormState::create(int64_t channels, Device device, DType dtype) {
  BatchNormState s;
  s.moving_mean = Tensor::zeros({channels}, device, dtype);
  s.moving_var = Tensor::full({channels}, 1.0, device, dtype);
  s.hidden_mean = Tensor::zeros({channels}, device, dtype);
  s.hidden_var = Tensor::zeros({channels}, device, dtype);
  return s;
}

namespace {

void check_no_gradients_in_inference(Tape* tape, std::initializer_list<const Var*> vars) {
  if (records_gradients(tape, vars))
    throw std::invalid_argument("batchnorm: inference mode is for evaluation only and records no gradients");
}

// relu_input: normalise relu(x) (the fused kernels give the same bits as relu, then batchnorm). xbias
// (undefined: none, GPU only): a per-channel bias added to x as it is read, forward and backward alike.
Var batchnorm_impl(Tape* tape, const Var& x, const Var& gamma, const Var& beta, BatchNormState& state,
                   bool training, const BatchNormOptions& opt, bool relu_input, const Tensor& xbias = Tensor()) {
  const NchwDims xd = dims_of(x.value(), "batchnorm");
  check_batchnorm(xd.c, x, gamma, beta, state);
  const Shape cs{xd.c};
  const Device dev = x.device();
  const DType dt = x.dtype();
  const bool gpu = dev == Device::CUDA;
  const float* xb = xbias.defined() ? xbias.data() : nullptr;
  if (xb && !gpu) throw std::logic_error("batchnorm: a folded input bias is a GPU path only");
  cpu::ChannelSums shared;
  if (opt.shared_batch && opt.shared_batch->size() > 1) {
    if (gpu)
      throw std::invalid_argument("batchnorm: statistics synchronised across processes are computed on the CPU only "
                                  "so far; on GPUs normalise each rank's batch alone (--bn per-rank)");
    Collectives* c = opt.shared_batch;
    shared = [c](double* sums, int n) { c->sum(sums, n); };
  }
  Tensor y = Tensor::empty(x.shape(), dev, dt);
  if (!training) {
    check_no_gradients_in_inference(tape, {&x, &gamma, &beta});
    if (gpu)
      ON_CUDA("batchnorm", (relu_input ? cuda::batchnorm_forward_eval<true> : cuda::batchnorm_forward_eval<false>)(
                               x.value().data(), gamma.value().data(), beta.value().data(), state.moving_mean.data(),
                               state.moving_var.data(), y.data(), xd, float(opt.eps), stream(), xb));
    else
      cpu_scalar(dt, [&](auto s) {
        using T = typename decltype(s)::type;
        (relu_input ? cpu::batchnorm_forward_eval<T, true> : cpu::batchnorm_forward_eval<T, false>)(
            x.value().data<T>(), gamma.value().data<T>(), beta.value().data<T>(), state.moving_mean.data<T>(),
            state.moving_var.data<T>(), y.data<T>(), xd, T(opt.eps), nullptr);
      });
    return Var(y);
  }

  Tensor mean = Tensor::empty(cs, dev, dt), invstd = Tensor::empty(cs, dev, dt), var = Tensor::empty(cs, dev, dt);
  if (gpu) {
    ON_CUDA("batchnorm", {
      Storage scratch(cuda::batchnorm_forward_scratch_bytes(xd), Device::CUDA);
      (relu_input ? cuda::batchnorm_forward_train<true> : cuda::batchnorm_forward_train<false>)(
          x.value().data(), gamma.value().data(), beta.value().data(), y.data(), mean.data(), invstd.data(),
          var.data(), scratch.data(), xd, float(opt.eps), stream(), xb);
    });
  }
  int64_t count = int64_t(xd.n) * xd.plane();  // the elements per channel the statistics are over
  if (!gpu) {
    cpu_scalar(dt, [&](auto s) {
      using T = typename decltype(s)::type;
      count = (relu_input ? cpu::batchnorm_forward_train<T, true> : cpu::batchnorm_forward_train<T, false>)(
          x.value().data<T>(), gamma.value().data<T>(), beta.value().data<T>(), y.data<T>(), mean.data<T>(),
          invstd.data<T>(), var.data<T>(), xd, T(opt.eps), nullptr, &shared);
    });
  }
  ++state.steps;
  if (opt.rule == MovingStatsRule::Keras) {
    if (gpu)
      ON_CUDA("batchnorm", cuda::bn_moving_update_keras(state.hidden_mean.data(), state.hidden_var.data(),
                                                        state.moving_mean.data(), state.moving_var.data(), mean.data(),
                                                        var.data(), xd.c, count, state.steps, float(opt.momentum),
                                                        stream()));
    else
      cpu_scalar(dt, [&](auto s) {
        using T = typename decltype(s)::type;
        cpu::bn_moving_update_keras(state.hidden_mean.data<T>(), state.hidden_var.data<T>(), state.moving_mean.data<T>(),
                                    state.moving_var.data<T>(), mean.data<T>(), var.data<T>(), xd.c, count,
                                    state.steps, T(opt.momentum));
      });
  } else {
    if (gpu)
      ON_CUDA("batchnorm", cuda::bn_moving_update_plain(state.moving_mean.data(), state.moving_var.data(), mean.data(),
                                                        var.data(), xd.c, count, float(opt.momentum), stream()));
    else
      cpu_scalar(dt, [&](auto s) {
        using T = typename decltype(s)::type;
        cpu::bn_moving_update_plain(state.moving_mean.data<T>(), state.moving_var.data<T>(), mean.data<T>(),
                                    var.data<T>(), xd.c, count, T(opt.momentum));
      });
  }

  const bool any = needs_grad(tape, x) || needs_grad(tape, gamma) || needs_grad(tape, beta);
  Var out(y, any);
  if (any) {
    const bool gx = needs_grad(tape, x);
    tape->record([x, gamma, beta, out, mean, invstd, xd, gx, gpu, relu_input, dt, xbias, shared]() {
      if (!out.has_grad()) return;
      const Var::GradTarget dx = gx ? x.grad_target() : Var::GradTarget{nullptr, true};
      if (gpu) {
        ON_CUDA("batchnorm", {
          float* dgamma = gamma.requires_grad() ? gamma.grad_accumulator().data() : nullptr;
          float* dbeta = beta.requires_grad() ? beta.grad_accumulator().data() : nullptr;
          Storage scratch(cuda::batchnorm_backward_scratch_bytes(xd), Device::CUDA);
          (relu_input ? cuda::batchnorm_backward_train<true> : cuda::batchnorm_backward_train<false>)(
              x.value().data(), out.grad().data(), gamma.value().data(), mean.data(), invstd.data(), dx.data(), dgamma,
              dbeta, scratch.data(), xd, stream(), dx.accumulate, xbias.defined() ? xbias.data() : nullptr);
        });
        return;
      }
      cpu_scalar(dt, [&](auto s) {
        using T = typename decltype(s)::type;
        T* dgamma = gamma.requires_grad() ? gamma.grad_accumulator().data<T>() : nullptr;
        T* dbeta = beta.requires_grad() ? beta.grad_accumulator().data<T>() : nullptr;
        (relu_input ? cpu::batchnorm_backward_train<T, true> : cpu::batchnorm_backward_train<T, false>)(
            x.value().data<T>(), out.grad().data<T>(), gamma.value().data<T>(), mean.data<T>(), invstd.data<T>(),
            dx.data<T>(), dgamma, dbeta, xd, dx.accumulate, nullptr, &shared);
      });
    });
  }
  return out;
}

}  // namespace

Var batchnorm(Tape* tape, const Var& x, const Var& gamma, const Var& beta, BatchNormState& state, bool training,
              const BatchNormOptions& opt) {
  return batchnorm_impl(tape, x, gamma, beta, state, training, opt, false);
}

Var relu_batchnorm(Tape* tape, const Var& x, const Var& gamma, const Var& beta, BatchNormState& state,
                   bool training, const BatchNormOptions& opt) {
  return batchnorm_impl(tape, x, gamma, beta, state, training, opt, true);
}

Var conv_relu_batchnorm(Tape* tape, const Var& x, const Var& w, const Var& b, const Var& gamma, const Var& beta,
                        BatchNormState& state, bool training, const BatchNormOptions& opt, ConvInput input,
                        BlockOutput output) {
  const bool cpu_fuses_pool = x.device() != Device::CUDA && !training && x.value().ndim() == 4 &&
                              w.shape().size() == 4 &&
                              cpu::conv3x3_fuses_pooling(int(x.shape()[1]), int(w.shape()[0]));
  if (output == BlockOutput::MaxPooled2 && !cpu_fuses_pool)
    return maxpool2(tape, conv_relu_batchnorm(tape, x, w, b, gamma, beta, state, training, opt, input));
  if (x.device() != Device::CUDA) {
    // The CPU convolution adds its bias inside its own accumulation, for free: nothing to fold there.
    if (training) return relu_batchnorm(tape, conv2d3x3(tape, x, w, b, input), gamma, beta, state, training, opt);
    // In inference the batchnorm is a per-element epilogue of the convolution, run while its output is in
    // cache: one pass over memory instead of two.
    check_no_gradients_in_inference(tape, {&x, &w, &b, &gamma, &beta});
    const BatchNormEval bn{gamma, beta, state, opt.eps};
    return conv2d3x3_impl(nullptr, x, w, b, true, &bn, input == ConvInput::Upsampled2,
                          output == BlockOutput::MaxPooled2);
  }
  if (input == ConvInput::Upsampled2)
    return conv_relu_batchnorm(tape, upsample2(tape, x), w, b, gamma, beta, state, training, opt);
  // cuDNN adds a bias in a pass of its own over the output (cudnnAddTensor). The batchnorm reads that output
  // anyway, forward and backward, so it adds b there instead. The stored pre-activation is bias-free, which
  // is all the backward needs: batchnorm adds b again when it reads it, and the convolution's backward reads
  // only its input, its weights and dy (= the gradient with respect to x*w + b), whose channel sums are db.
  same_device("conv_relu_batchnorm", x, b);
  const Var z = conv2d3x3_impl(tape, x, w, b, false);
  return batchnorm_impl(tape, z, gamma, beta, state, training, opt, true, b.value());
}

Var mse_loss(Tape* tape, const Var& y, const Tensor& target) {
  if (target.shape() != y.shape())
    throw std::invalid_argument("mse_loss: target shape " + shape_str(target.shape()) + " differs from prediction " +
                                shape_str(y.shape()));
  if (target.device() != y.device())
    throw std::invalid_argument(std::string("mse_loss: target on ") + device_name(target.device()) +
                                " but the prediction on " + device_name(y.device()));
  if (target.dtype() != y.dtype())
    throw std::invalid_argument(std::string("mse_loss: a ") + dtype_name(target.dtype()) + " target for a " +
                                dtype_name(y.dtype()) + " prediction");
  const bool gpu = y.device() == Device::CUDA;
  Var out;
  if (gpu) {
    // The loss stays on the device: reading it (item()) is the caller's choice of synchronisation point.
    ON_CUDA("mse_loss", {
      Tensor loss = Tensor::empty({1}, Device::CUDA);
      Storage partials(cuda::mse_forward_scratch_bytes(), Device::CUDA);
      cuda::mse_forward(y.value().data(), target.data(), y.value().numel(), loss.data(), partials.data(), stream());
      out = Var(loss, needs_grad(tape, y));
    });
  } else {
    cpu_scalar(y.dtype(), [&](auto s) {
      using T = typename decltype(s)::type;
      const T loss = cpu::mse_forward(y.value().data<T>(), target.data<T>(), y.value().numel());
      out = Var(Tensor::full({1}, loss, y.device(), y.dtype()), needs_grad(tape, y));
    });
  }
  if (needs_grad(tape, y)) {
    tape->record([y, target, out, gpu]() {
      if (!out.has_grad()) return;
      const Var::GradTarget dy = y.grad_target();
      if (gpu)
        ON_CUDA("mse_loss", cuda::mse_backward(y.value().data(), target.data(), out.grad().data(), dy.data(),
                                               y.value().numel(), stream(), dy.accumulate));
      else
        cpu_scalar(y.dtype(), [&](auto s) {
          using T = typename decltype(s)::type;
          cpu::mse_backward(y.value().data<T>(), target.data<T>(), T(out.grad().item()), dy.data<T>(),
                            y.value().numel(), dy.accumulate);
        });
    });
  }
  return out;
}

}  // namespace mriae
