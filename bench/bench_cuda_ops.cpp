// Kernel micro-benchmarks in the manner of llm.c's dev/cuda: every CUDA kernel of the model at every shape
// the model gives it (batch 128, 176x176 input by default), and every cuDNN convolution of the model,
// forward, backward data and backward filter+bias, through kernels/cuda/conv_cudnn.h. For each:
//
//   1. validate: the CUDA result against the CPU twin's (kernels/cpu) on random inputs at that shape, with
//      the limits of tests/test_cuda_ops.cpp. Convolutions are checked on the first --check-batch images of
//      the full batch (with dy zero on the others, so the weight gradient of the batch is theirs): the CPU
//      reference stays cheap, and what is checked is the very algorithm cuDNN chose for the timed shape.
//      Input gradients are checked in both modes: accumulating onto random values, and overwriting a buffer
//      filled with NaN (every element must be written), the mode the engine runs and the one timed;
//   2. time: the median of --repeats runs, each timed alone with CUDA events, L2 flushed before each
//      (bench/cuda_timer.h), after --warmup calls;
//   3. rate: GB/s for memory-bound kernels (bench/op_traffic.h counts the bytes), TFLOP/s for
//      convolutions, and the fraction of the peaks measured at the start of the same run
//      (bench/device_peaks.h).
//
// Prints the device, the peaks and two markdown tables (strict FP32; the convolutions again with TF32
// allowed), then the cuDNN algorithms chosen. Exit status: 0, 1 when a validation failed or a call
// failed, 2 for bad arguments, 77 without a GPU.
//
//   bench_cuda_ops [--batch N] [--size S] [--repeats N] [--warmup N] [--check-batch N]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_check.h"
#include "bench/bench_flags.h"
#include "bench/cuda_timer.h"
#include "bench/device_peaks.h"
#include "bench/model_shapes.h"
#include "bench/op_traffic.h"
#include "engine/cuda_context.h"
#include "engine/device.h"
#include "engine/tensor.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/optim.h"
#include "kernels/cpu/pooling.h"
#include "kernels/cuda/batchnorm.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_cudnn.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/loss.h"
#include "kernels/cuda/optim.h"
#include "kernels/cuda/pooling.h"
#include "model/autoencoder.h"

namespace {

using namespace mriae;
using namespace mriae::bench;

struct Options {
  int batch = 128, size = 176, repeats = 100, warmup = 5, check_batch = 2;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "bench_cuda_ops: %s\nusage: bench_cuda_ops [--batch N] [--size S] [--repeats N] [--warmup N] "
               "[--check-batch N]\n",
               why.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  parse_int_flags(argc, argv,
                  {{"--batch", &o.batch},
                   {"--size", &o.size},
                   {"--repeats", &o.repeats},
                   {"--warmup", &o.warmup},
                   {"--check-batch", &o.check_batch}},
                  usage);
  if (o.size % 4 != 0) usage("--size must be a multiple of 4 (two poolings)");
  return o;
}

// ---- device buffers

Tensor upload(const std::vector<float>& v) { return Tensor::from_vector({int64_t(v.size())}, v, Device::CUDA); }
Tensor device_buffer(int64_t n) { return Tensor::empty({std::max<int64_t>(n, 1)}, Device::CUDA); }
// Scratch of `bytes`, as floats; the allocator's blocks are aligned well beyond the 8 bytes asked for.
Tensor scratch(size_t bytes) { return device_buffer(int64_t((bytes + 3) / 4)); }
std::vector<float> head(const Tensor& t, int64_t n) { return t.view(0, {n}).to_vector(); }
// All bits set: a NaN, which an overwriting backward must replace in every element.
void fill_nan(const Tensor& t, cudaStream_t s) {
  MRIAE_CUDA_CHECK(cudaMemsetAsync(t.data(), 0xff, size_t(t.numel()) * sizeof(float), s));
}
std::vector<int32_t> ints(const Tensor& t) {
  const std::vector<float> f = t.to_vector();
  std::vector<int32_t> v(f.size());
  if (!f.empty()) std::memcpy(v.data(), f.data(), f.size() * 4);
  return v;
}

// ---- rows and tables

struct Row {
  std::string op, shape, direction, validation;
  double us = 0;
  double rate = -1;       // GB/s or TFLOP/s; < 0: none
  bool flops = false;     // rate is TFLOP/s
  double peak_pct = -1;   // of the measured peak of its kind
  double ours_gbps = -1;  // GB/s counting our implementation's passes
  double vs_strict = -1;  // TF32 table: strict time / TF32 time
};

class Runner {
 public:
  Runner(const Options& o, CudaTimer& timer, const DevicePeaks& peaks, cudaStream_t stream)
      : o_(o), timer_(timer), peaks_(peaks), stream_(stream) {}

  const Options& options() const { return o_; }
  cudaStream_t stream() const { return stream_; }
  bool ok() const { return ok_; }

  void memory_row(const std::string& op, const std::string& shape, const std::string& direction,
                  const Validation& v, Traffic t, const std::function<void()>& f) {
    check(v, op + " " + direction + " " + shape);
    Row r{op, shape, direction, v.summary()};
    r.us = time(f);
    r.rate = t.minimal / (r.us * 1e-6) / 1e9;
    r.ours_gbps = t.ours / (r.us * 1e-6) / 1e9;
    r.peak_pct = 100.0 * r.rate / peaks_.copy_gbps;
    strict.push_back(r);
  }

  // A row of the strict table, or with tf32 of the TF32 table. Returns the median microseconds.
  double conv_row(bool tf32, const std::string& op, const std::string& shape, const std::string& direction,
                  const Validation& v, double flops, const std::function<void()>& f, double strict_us = -1) {
    check(v, op + " " + direction + " " + shape + (tf32 ? " (TF32)" : ""));
    Row r{op, shape, direction, v.summary()};
    r.us = time(f);
    r.flops = true;
    r.rate = flops / (r.us * 1e-6) / 1e12;
    r.peak_pct = 100.0 * r.rate / (tf32 ? peaks_.sgemm_tf32_tflops : peaks_.sgemm_fp32_tflops);
    if (strict_us > 0) r.vs_strict = strict_us / r.us;
    (tf32 ? this->tf32 : strict).push_back(r);
    return r.us;
  }

  // A row with a time only.
  void time_row(const std::string& op, const std::string& shape, const std::string& direction,
                const std::function<void()>& f) {
    Row r{op, shape, direction, "-"};
    r.us = time(f);
    strict.push_back(r);
  }

  std::vector<Row> strict, tf32;

 private:
  double time(const std::function<void()>& f) { return timer_.median_us(f, o_.warmup, o_.repeats); }
  void check(const Validation& v, const std::string& what) {
    for (const std::string& e : v.failures()) {
      std::fprintf(stderr, "bench_cuda_ops: validation FAILED: %s: %s\n", what.c_str(), e.c_str());
      ok_ = false;
    }
  }

  Options o_;
  CudaTimer& timer_;
  const DevicePeaks& peaks_;
  cudaStream_t stream_;
  bool ok_ = true;
};

void print_table(const std::vector<Row>& rows, bool with_vs_strict) {
  std::printf("| op | shape | direction | us (median) | GB/s or TFLOP/s | %% of measured peak | GB/s of our passes "
              "| validation error |%s\n|---|---|---|---|---|---|---|---|%s\n",
              with_vs_strict ? " vs strict FP32 |" : "", with_vs_strict ? "---|" : "");
  for (const Row& r : rows) {
    const std::string rate = r.rate < 0 ? "-" : fixed(r.rate, r.flops ? 2 : 0) + (r.flops ? " TFLOP/s" : " GB/s");
    std::printf("| %s | %s | %s | %s | %s | %s | %s | %s |", r.op.c_str(), r.shape.c_str(), r.direction.c_str(),
                fixed(r.us, 1).c_str(), rate.c_str(), r.peak_pct < 0 ? "-" : (fixed(r.peak_pct, 0) + "%").c_str(),
                r.ours_gbps < 0 ? "-" : fixed(r.ours_gbps, 0).c_str(), r.validation.c_str());
    if (with_vs_strict) std::printf(" %s |", r.vs_strict < 0 ? "-" : (fixed(r.vs_strict, 2) + "x").c_str());
    std::printf("\n");
  }
}

// ---- one function per kernel family: validate at the shape, then time each direction

void bench_relu(Runner& r, const Use& u) {
  const int64_t n = u.d.count();
  const cudaStream_t s = r.stream();
  Tensor x, y = device_buffer(n), dy, dx;
  Validation vf, vb;
  {
    auto hx = random_values(n, 11);
    for (int64_t i = 0; i < n; i += 7) hx[size_t(i)] = 0.0f;  // the gradient at exactly 0 is 0
    auto hdy = random_values(n, 12), hdx = random_values(n, 13);
    x = upload(hx), dy = upload(hdy), dx = upload(hdx);
    std::vector<float> y_ref(size_t(n), 0.0f);
    cpu::relu_forward(hx.data(), y_ref.data(), n);
    cpu::relu_backward(hx.data(), hdy.data(), hdx.data(), n);  // hdx becomes the reference
    cuda::relu_forward(x.data(), y.data(), n, s);
    cuda::relu_backward(x.data(), dy.data(), dx.data(), n, s);
    vf.add(compare("y", y.to_vector(), y_ref, kExact));
    vb.add(compare("dx, accumulating", dx.to_vector(), hdx, kExact));
    cpu::relu_backward(hx.data(), hdy.data(), hdx.data(), n, false);
    fill_nan(dx, s);
    cuda::relu_backward(x.data(), dy.data(), dx.data(), n, s, false);
    vb.add(compare("dx, overwriting", dx.to_vector(), hdx, kExact));
  }
  r.memory_row(u.layers, str(u.d), "forward", vf, elementwise_forward(n),
               [&] { cuda::relu_forward(x.data(), y.data(), n, s); });
  r.memory_row(u.layers, str(u.d), "backward", vb, elementwise_backward(n),
               [&] { cuda::relu_backward(x.data(), dy.data(), dx.data(), n, s, false); });
}

// kRelu: the fused ReLU-then-batchnorm kernels the model runs; without it, batchnorm alone, the earlier
// version, which with bench_relu's rows shows what the fusion saves.
template <bool kRelu> void bench_batchnorm(Runner& r, const Use& u) {
  const NchwDims& d = u.d;
  const int64_t n = d.count();
  const float eps = 1e-3f;
  const cudaStream_t s = r.stream();
  Tensor x, gamma, beta, dy, dx, dgamma, dbeta, y = device_buffer(n), ye = device_buffer(n), mean = device_buffer(d.c),
                                               invstd = device_buffer(d.c), var = device_buffer(d.c);
  Tensor fscratch = scratch(cuda::batchnorm_forward_scratch_bytes(d)),
         bscratch = scratch(cuda::batchnorm_backward_scratch_bytes(d));
  Validation vt, ve, vb;
  const std::string label =
      (kRelu ? "relu+batchnorm fused, as the model runs (" : "batchnorm alone, the unfused version (") + u.layers + ")";
  {
    // An offset mean, as after a ReLU: the two-pass variance must not cancel. The fused kernels get negative
    // inputs too, so that their ReLU matters.
    const auto hx = random_values(n, 21, kRelu ? -1.0 : 0.5, 2.5), hgamma = random_values(d.c, 22, 0.5, 1.5),
               hbeta = random_values(d.c, 23), hdy = random_values(n, 24);
    auto hdx = random_values(n, 25), hdgamma = random_values(d.c, 26), hdbeta = random_values(d.c, 27);
    x = upload(hx), gamma = upload(hgamma), beta = upload(hbeta), dy = upload(hdy), dx = upload(hdx),
    dgamma = upload(hdgamma), dbeta = upload(hdbeta);
    const auto c = size_t(d.c);
    const auto nn = static_cast<size_t>(n);
    std::vector<float> y_ref(nn), ye_ref(nn), mean_ref(c), invstd_ref(c), var_ref(c);
    cpu::batchnorm_forward_train<float, kRelu>(hx.data(), hgamma.data(), hbeta.data(), y_ref.data(), mean_ref.data(),
                                 invstd_ref.data(), var_ref.data(), d, eps);
    cpu::batchnorm_backward_train<float, kRelu>(hx.data(), hdy.data(), hgamma.data(), mean_ref.data(), invstd_ref.data(),
                                  hdx.data(), hdgamma.data(), hdbeta.data(), d);
    cpu::batchnorm_forward_eval<float, kRelu>(hx.data(), hgamma.data(), hbeta.data(), mean_ref.data(), var_ref.data(),
                                ye_ref.data(), d, eps);

    cuda::batchnorm_forward_train<kRelu>(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), invstd.data(),
                                  var.data(), fscratch.data(), d, eps, s);
    vt.add(compare("y", y.to_vector(), y_ref, kReduction));
    vt.add(compare("mean", mean.to_vector(), mean_ref, kStatistics));
    vt.add(compare("variance", var.to_vector(), var_ref, kStatistics));
    vt.add(compare("invstd", invstd.to_vector(), invstd_ref, kTranscendental));
    // Backward and inference from the CPU's statistics, so each row checks its own kernels only.
    const Tensor rmean = upload(mean_ref), rinvstd = upload(invstd_ref), rvar = upload(var_ref);
    cuda::batchnorm_backward_train<kRelu>(x.data(), dy.data(), gamma.data(), rmean.data(), rinvstd.data(), dx.data(),
                                   dgamma.data(), dbeta.data(), bscratch.data(), d, s);
    vb.add(compare("dx, accumulating", dx.to_vector(), hdx, kReduction));
    vb.add(compare("dgamma", dgamma.to_vector(), hdgamma, kReduction));
    vb.add(compare("dbeta", dbeta.to_vector(), hdbeta, kReduction));
    cpu::batchnorm_backward_train<float, kRelu>(hx.data(), hdy.data(), hgamma.data(), mean_ref.data(),
                                                invstd_ref.data(), hdx.data(), nullptr, nullptr, d, false);
    fill_nan(dx, s);
    cuda::batchnorm_backward_train<kRelu>(x.data(), dy.data(), gamma.data(), rmean.data(), rinvstd.data(), dx.data(),
                                          nullptr, nullptr, bscratch.data(), d, s, false);
    vb.add(compare("dx, overwriting", dx.to_vector(), hdx, kReduction));
    cuda::batchnorm_forward_eval<kRelu>(x.data(), gamma.data(), beta.data(), rmean.data(), rvar.data(), ye.data(), d, eps, s);
    ve.add(compare("y", ye.to_vector(), ye_ref, kTranscendental));
  }
  r.memory_row(label, str(d), "forward, training", vt, batchnorm_forward_train(d), [&] {
    cuda::batchnorm_forward_train<kRelu>(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), invstd.data(),
                                  var.data(), fscratch.data(), d, eps, s);
  });
  r.memory_row(label, str(d), "forward, inference", ve, batchnorm_forward_eval(d), [&] {
    cuda::batchnorm_forward_eval<kRelu>(x.data(), gamma.data(), beta.data(), mean.data(), var.data(), ye.data(), d, eps, s);
  });
  r.memory_row(label, str(d), "backward", vb, batchnorm_backward(d), [&] {
    cuda::batchnorm_backward_train<kRelu>(x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(), dx.data(),
                                   dgamma.data(), dbeta.data(), bscratch.data(), d, s, false);
  });
}

void bench_maxpool(Runner& r, const Use& u) {
  const NchwDims& d = u.d;
  const int64_t n = d.count(), m = int64_t(d.n) * d.c * (d.h / 2) * (d.w / 2);
  const cudaStream_t s = r.stream();
  Tensor x, dy, dx, y = device_buffer(m), idx = device_buffer(m);
  auto* ip = reinterpret_cast<int32_t*>(idx.data());
  Validation vf, vb;
  {
    const auto hx = random_values(n, 31), hdy = random_values(m, 32);
    auto hdx = random_values(n, 33);
    x = upload(hx), dy = upload(hdy), dx = upload(hdx);
    std::vector<float> y_ref(static_cast<size_t>(m));
    std::vector<int32_t> idx_ref(static_cast<size_t>(m));
    cpu::maxpool2_forward(hx.data(), y_ref.data(), idx_ref.data(), d);
    cpu::maxpool2_backward(hdy.data(), idx_ref.data(), hdx.data(), d);
    cuda::maxpool2_forward(x.data(), y.data(), ip, d, s);
    cuda::maxpool2_backward(dy.data(), ip, dx.data(), d, s);
    vf.add(compare("y", y.to_vector(), y_ref, kExact));
    vf.add(compare_exact_ints("argmax", ints(idx), idx_ref));
    vb.add(compare("dx, accumulating", dx.to_vector(), hdx, kExact));
    cpu::maxpool2_backward(hdy.data(), idx_ref.data(), hdx.data(), d, false);
    fill_nan(dx, s);
    cuda::maxpool2_backward(dy.data(), ip, dx.data(), d, s, false);
    vb.add(compare("dx, overwriting", dx.to_vector(), hdx, kExact));
  }
  r.memory_row(u.layers, str(d), "forward", vf, maxpool_forward(d),
               [&] { cuda::maxpool2_forward(x.data(), y.data(), ip, d, s); });
  r.memory_row(u.layers, str(d), "backward", vb, maxpool_backward(d),
               [&] { cuda::maxpool2_backward(dy.data(), ip, dx.data(), d, s, false); });
}

void bench_upsample(Runner& r, const Use& u) {
  const NchwDims& d = u.d;
  const int64_t n = d.count();
  const cudaStream_t s = r.stream();
  Tensor x, dy, dx, y = device_buffer(4 * n);
  Validation vf, vb;
  {
    const auto hx = random_values(n, 41), hdy = random_values(4 * n, 42);
    auto hdx = random_values(n, 43);
    x = upload(hx), dy = upload(hdy), dx = upload(hdx);
    std::vector<float> y_ref(static_cast<size_t>(4 * n));
    cpu::upsample2_forward(hx.data(), y_ref.data(), d);
    cpu::upsample2_backward(hdy.data(), hdx.data(), d);
    cuda::upsample2_forward(x.data(), y.data(), d, s);
    cuda::upsample2_backward(dy.data(), dx.data(), d, s);
    vf.add(compare("y", y.to_vector(), y_ref, kExact));
    vb.add(compare("dx, accumulating", dx.to_vector(), hdx, kExact));
    cpu::upsample2_backward(hdy.data(), hdx.data(), d, false);
    fill_nan(dx, s);
    cuda::upsample2_backward(dy.data(), dx.data(), d, s, false);
    vb.add(compare("dx, overwriting", dx.to_vector(), hdx, kExact));
  }
  r.memory_row(u.layers, str(d), "forward", vf, upsample_forward(d),
               [&] { cuda::upsample2_forward(x.data(), y.data(), d, s); });
  r.memory_row(u.layers, str(d), "backward", vb, upsample_backward(d),
               [&] { cuda::upsample2_backward(dy.data(), dx.data(), d, s, false); });
}

void bench_sigmoid(Runner& r, const NchwDims& d) {
  const int64_t n = d.count();
  const cudaStream_t s = r.stream();
  Tensor x, dy, dx, y = device_buffer(n);
  Validation vf, vb;
  {
    const auto hx = random_values(n, 51, -8, 8), hdy = random_values(n, 52);
    auto hdx = random_values(n, 53);
    x = upload(hx), dy = upload(hdy), dx = upload(hdx);
    std::vector<float> y_ref(static_cast<size_t>(n));
    cpu::sigmoid_forward(hx.data(), y_ref.data(), n);
    cpu::sigmoid_backward(y_ref.data(), hdy.data(), hdx.data(), n);
    cuda::sigmoid_forward(x.data(), y.data(), n, s);
    // From the GPU's own forward output, as the op runs.
    cuda::sigmoid_backward(y.data(), dy.data(), dx.data(), n, s);
    vf.add(compare("y", y.to_vector(), y_ref, kTranscendental));
    vb.add(compare("dx, accumulating", dx.to_vector(), hdx, kTranscendental));
    cpu::sigmoid_backward(y_ref.data(), hdy.data(), hdx.data(), n, false);
    fill_nan(dx, s);
    cuda::sigmoid_backward(y.data(), dy.data(), dx.data(), n, s, false);
    vb.add(compare("dx, overwriting", dx.to_vector(), hdx, kTranscendental));
  }
  r.memory_row("sigmoid", str(d), "forward", vf, elementwise_forward(n),
               [&] { cuda::sigmoid_forward(x.data(), y.data(), n, s); });
  r.memory_row("sigmoid", str(d), "backward", vb, elementwise_backward(n),
               [&] { cuda::sigmoid_backward(y.data(), dy.data(), dx.data(), n, s, false); });
}

void bench_mse(Runner& r, const NchwDims& d) {
  const int64_t n = d.count();
  const cudaStream_t s = r.stream();
  const float dloss_value = 0.7f;
  Tensor y, t, dy, loss = device_buffer(1), mse_scratch = scratch(cuda::mse_forward_scratch_bytes()),
                   dloss = upload({dloss_value});
  Validation vf, vb;
  {
    const auto hy = random_values(n, 61, 0, 1), ht = random_values(n, 62, 0, 1);
    auto hdy = random_values(n, 63);
    y = upload(hy), t = upload(ht), dy = upload(hdy);
    const float loss_ref = cpu::mse_forward(hy.data(), ht.data(), n);
    cpu::mse_backward(hy.data(), ht.data(), dloss_value, hdy.data(), n);
    cuda::mse_forward(y.data(), t.data(), n, loss.data(), mse_scratch.data(), s);
    cuda::mse_backward(y.data(), t.data(), dloss.data(), dy.data(), n, s);
    vf.add(compare("loss", loss.to_vector(), {loss_ref}, kStatistics));
    vb.add(compare("dy, accumulating", dy.to_vector(), hdy, kOneUlp));
    cpu::mse_backward(hy.data(), ht.data(), dloss_value, hdy.data(), n, false);
    fill_nan(dy, s);
    cuda::mse_backward(y.data(), t.data(), dloss.data(), dy.data(), n, s, false);
    vb.add(compare("dy, overwriting", dy.to_vector(), hdy, kOneUlp));
  }
  r.memory_row("mse loss", str(d), "forward", vf, mse_forward(n),
               [&] { cuda::mse_forward(y.data(), t.data(), n, loss.data(), mse_scratch.data(), s); });
  r.memory_row("mse loss", str(d), "backward", vb, mse_backward(n),
               [&] { cuda::mse_backward(y.data(), t.data(), dloss.data(), dy.data(), n, s, false); });
}

void bench_rmsprop(Runner& r, int64_t n) {
  const float lr = 1e-3f, rho = 0.9f, eps = 1e-7f;
  const cudaStream_t s = r.stream();
  Tensor p, acc, g;
  Validation v;
  {
    auto hp = random_values(n, 71), hacc = random_values(n, 72, 0, 1);
    const auto hg = random_values(n, 73);
    p = upload(hp), acc = upload(hacc), g = upload(hg);
    cpu::rmsprop_update(hp.data(), hacc.data(), hg.data(), n, lr, rho, eps);
    cuda::rmsprop_update(p.data(), acc.data(), g.data(), n, lr, rho, eps, s);
    v.add(compare("parameters", p.to_vector(), hp, kOneUlp));
    v.add(compare("accumulators", acc.to_vector(), hacc, kOneUlp));
  }
  r.memory_row("rmsprop", std::to_string(n) + " parameters, one buffer", "update", v, rmsprop(n),
               [&] { cuda::rmsprop_update(p.data(), acc.data(), g.data(), n, lr, rho, eps, s); });
}

// The Keras rule, which the model uses by default. The count (N*H*W) only sets the Bessel factor.
void bench_bn_moving(Runner& r, const Use& u) {
  const int c = u.d.c;
  const int64_t count = int64_t(u.d.n) * u.d.plane();
  const float momentum = 0.99f;
  const int64_t step = 3;
  const cudaStream_t s = r.stream();
  Tensor hm, hv, mm, mv, bm, bv;
  Validation v;
  {
    auto h_hm = random_values(c, 81), h_hv = random_values(c, 82, 0, 1), h_mm = random_values(c, 83),
         h_mv = random_values(c, 84, 0, 1);
    const auto h_bm = random_values(c, 85), h_bv = random_values(c, 86, 0, 2);
    hm = upload(h_hm), hv = upload(h_hv), mm = upload(h_mm), mv = upload(h_mv), bm = upload(h_bm), bv = upload(h_bv);
    cpu::bn_moving_update_keras(h_hm.data(), h_hv.data(), h_mm.data(), h_mv.data(), h_bm.data(), h_bv.data(), c,
                                count, step, momentum);
    cuda::bn_moving_update_keras(hm.data(), hv.data(), mm.data(), mv.data(), bm.data(), bv.data(), c, count, step,
                                 momentum, s);
    v.add(compare("hidden mean", hm.to_vector(), h_hm, kOneUlp));
    v.add(compare("hidden variance", hv.to_vector(), h_hv, kOneUlp));
    v.add(compare("moving mean", mm.to_vector(), h_mm, kOneUlp));
    v.add(compare("moving variance", mv.to_vector(), h_mv, kOneUlp));
  }
  r.memory_row("bn moving statistics (" + u.layers + ")", std::to_string(c) + " channels", "update", v,
               bn_moving_update(c), [&] {
                 cuda::bn_moving_update_keras(hm.data(), hv.data(), mm.data(), mv.data(), bm.data(), bv.data(), c,
                                              count, step, momentum, s);
               });
}

// Returns the median microseconds of forward, backward data (0 for the first layer) and backward filter.
struct ConvTimes {
  double forward = 0, data = 0, filter = 0;
};

ConvTimes bench_conv(Runner& r, const Use& u, bool tf32, const ConvTimes* strict, std::vector<std::string>& algos) {
  const NchwDims& xd = u.d;
  const int k = u.k;
  const int nb = std::min(r.options().check_batch, xd.n);
  const NchwDims cd{nb, xd.c, xd.h, xd.w};  // the images the CPU recomputes: the first nb of the batch
  const int64_t nx = xd.count(), nw = int64_t(k) * xd.c * 9, ny = int64_t(xd.n) * k * xd.plane();
  const int64_t cx = cd.count(), cy = int64_t(nb) * k * xd.plane();
  const Tolerance tol = tf32 ? kConvTf32 : kConvStrict;
  const std::string first = "first " + std::to_string(nb) + " images";
  auto& conv = Context::get().cuda().conv();
  Tensor x, w, b, dy, dx, dw, db, y = device_buffer(ny);
  Validation vf, vd, vw;
  {
    const auto hx = random_values(nx, 91 + uint64_t(k)), hw = random_values(nw, 92, -0.1, 0.1),
               hb = random_values(k, 93, -0.1, 0.1);
    // dy is zero beyond the first nb images, so the weight and bias gradients of the whole batch are
    // those of the images the CPU recomputes.
    std::vector<float> hdy(size_t(ny), 0.0f), hdx(size_t(nx), 0.0f);
    const auto part_dy = random_values(cy, 94), part_dx = random_values(cx, 95);
    std::copy(part_dy.begin(), part_dy.end(), hdy.begin());
    std::copy(part_dx.begin(), part_dx.end(), hdx.begin());
    auto hdw = random_values(nw, 96), hdb = random_values(k, 97);
    x = upload(hx), w = upload(hw), b = upload(hb), dy = upload(hdy), dx = upload(hdx), dw = upload(hdw),
    db = upload(hdb);

    std::vector<float> conv_scratch(size_t(cpu::conv3x3_scratch_elems(cd, k))), y_ref(static_cast<size_t>(cy));
    std::vector<float> dx_ref(part_dx);
    cpu::conv3x3_forward(hx.data(), hw.data(), hb.data(), y_ref.data(), cd, k, conv_scratch.data());
    cpu::conv3x3_backward(hx.data(), hw.data(), hdy.data(), u.input_grad ? dx_ref.data() : nullptr, hdw.data(),
                          hdb.data(), cd, k, conv_scratch.data());

    conv.forward(x.data(), w.data(), b.data(), y.data(), xd, k);
    conv.backward(x.data(), w.data(), dy.data(), u.input_grad ? dx.data() : nullptr, dw.data(), db.data(), xd, k);
    vf.add(compare("y, " + first, head(y, cy), y_ref, tol));
    if (u.input_grad) vd.add(compare("dx accumulating, " + first, head(dx, cx), dx_ref, tol));
    vw.add(compare("dw", dw.to_vector(), hdw, tol));
    vw.add(compare("db", db.to_vector(), hdb, tol));
    if (u.input_grad) {
      cpu::conv3x3_backward(hx.data(), hw.data(), hdy.data(), dx_ref.data(), static_cast<float*>(nullptr),
                            static_cast<float*>(nullptr), cd, k, conv_scratch.data(), /*accumulate_dx=*/false);
      fill_nan(dx, r.stream());
      conv.backward(x.data(), w.data(), dy.data(), dx.data(), nullptr, nullptr, xd, k, false);
      vd.add(compare("dx overwriting, " + first, head(dx, cx), dx_ref, tol));
    }
  }
  // Timed on a dy that is random throughout: zeros could let the multipliers draw less power and clock up.
  dy = upload(random_values(ny, 98));
  const std::string shape = str(xd) + " -> " + std::to_string(k);
  const double flops = conv3x3_flops(xd, k);
  ConvTimes t;
  t.forward = r.conv_row(
      tf32, u.layers, shape, "forward", vf, flops, [&] { conv.forward(x.data(), w.data(), b.data(), y.data(), xd, k); },
      strict ? strict->forward : -1);
  if (u.input_grad)
    t.data = r.conv_row(
        tf32, u.layers, shape, "backward data", vd, flops,
        [&] { conv.backward(x.data(), w.data(), dy.data(), dx.data(), nullptr, nullptr, xd, k, false); },
        strict ? strict->data : -1);
  t.filter = r.conv_row(
      tf32, u.layers, shape, "backward filter+bias", vw, flops,
      [&] { conv.backward(x.data(), w.data(), dy.data(), nullptr, dw.data(), db.data(), xd, k); },
      strict ? strict->filter : -1);
  algos.push_back(u.layers + (tf32 ? " (TF32)" : "") + ": " + conv.describe(xd, k));
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (!cuda_available()) {
    std::puts("bench_cuda_ops: no CUDA GPU: skipped");
    return 77;
  }
  try {
    CudaContext& ctx = Context::get().cuda();
    ctx.set_options(CudaOptions{});  // strict FP32, algorithms chosen by timing
    const cudaStream_t s = ctx.compute_stream();
    CudaTimer timer(s, ctx.device());
    std::printf("%s\n\n", ctx.describe().c_str());
    std::printf("batch %d, %dx%d input; median of %d repeats after %d warm-up calls, each repeat timed alone with "
                "CUDA events after an L2 flush (%zu MiB written; L2 %zu MiB); convolutions validated on the "
                "first %d images\n\n",
                o.batch, o.size, o.size, o.repeats, o.warmup, timer.flush_bytes() >> 20, timer.l2_bytes() >> 20,
                std::min(o.check_batch, o.batch));

    const DevicePeaks peaks = measure_peaks(timer, s, size_t(1) << 30, 8192);
    std::printf("measured peaks: device-to-device copy of %zu MiB %.0f GB/s (read + write); cuBLAS SGEMM %d^3 "
                "%.2f TFLOP/s strict FP32, %.2f TFLOP/s TF32\n\n",
                peaks.copy_bytes >> 20, peaks.copy_gbps, peaks.gemm_n, peaks.sgemm_fp32_tflops,
                peaks.sgemm_tf32_tflops);

    Runner r(o, timer, peaks, s);
    const ModelShapes m = model_shapes(o.batch, o.size);
    std::vector<std::string> algos;
    std::vector<ConvTimes> strict_conv;
    for (const Use& u : m.conv) strict_conv.push_back(bench_conv(r, u, false, nullptr, algos));
    for (const Use& u : m.bn) bench_batchnorm<true>(r, u);
    for (const Use& u : m.bn) bench_batchnorm<false>(r, u);
    for (const Use& u : m.relu) bench_relu(r, u);
    for (const Use& u : m.pool) bench_maxpool(r, u);
    for (const Use& u : m.upsample) bench_upsample(r, u);
    bench_sigmoid(r, m.output);
    bench_mse(r, m.output);
    bench_rmsprop(r, Autoencoder::trainable_count());
    for (const Use& u : m.bn_moving) bench_bn_moving(r, u);
    // The floor under the smallest rows: one tiny operation on the stream, timed the same way.
    {
      const Tensor one = device_buffer(1);
      r.time_row("cudaMemsetAsync, 4 bytes (timing floor)", "-", "-",
                 [&] { MRIAE_CUDA_CHECK(cudaMemsetAsync(one.data(), 0, 4, s)); });
    }

    CudaOptions tf32;
    tf32.tf32 = true;
    ctx.set_options(tf32);  // drops the strict plans: each shape chooses again
    for (size_t i = 0; i < m.conv.size(); ++i) bench_conv(r, m.conv[i], true, &strict_conv[i], algos);
    ctx.set_options(CudaOptions{});

    std::printf("## Strict FP32\n\n");
    print_table(r.strict, false);
    std::printf("\n## Convolutions with TF32 allowed\n\n");
    print_table(r.tf32, true);
    std::printf("\nGB/s counts the bytes the op must read and write once (bench/op_traffic.h) and is compared "
                "with the copy; 'our passes' counts every pass our kernels make. TFLOP/s counts 2*N*K*C*9*H*W "
                "per direction (an effective rate for Winograd and FFT algorithms) and is compared with SGEMM of "
                "the same precision.\n\n## cuDNN algorithms chosen\n\n");
    for (const std::string& a : algos) std::printf("- %s\n", a.c_str());
    std::printf("\nvalidation: %s\n", r.ok() ? "every kernel matched its CPU twin" : "FAILED (see stderr)");
    ctx.synchronize();
    return r.ok() ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_ops: error: %s\n", e.what());
    return 1;
  }
}
