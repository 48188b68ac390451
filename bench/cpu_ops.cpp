// The CPU counterpart of bench_cuda_ops' kernel table: every non-convolution CPU kernel of the model
// (kernels/cpu), and the whole copies the convolution's row kernels make of their inputs (padding, pitched
// rows), at every shape the model gives it (batch 8, 176x176 input by default), each shape once with the
// layers that share it. For each:
//
//   1. validate, where a plain scalar loop is a cheap independent formulation (ReLU, pooling's forward,
//      upsampling, the convolution's copies, batchnorm's statistics and forward outputs, sigmoid's forward,
//      the loss, RMSprop), and the other backward kernels' overwrite mode against their accumulate mode
//      onto zeros. A mismatch is reported on stderr and in the row, and makes the exit status 1.
//   2. time with steady_clock: the median of --repeats calls after one warm-up call. Backward kernels run
//      as the engine runs them on the CPU: overwriting dx, a fresh gradient buffer (accumulate = false).
//   3. rate: GB/s of the bytes the op's contract forces it to move (bench/op_traffic.h, Grad::Overwrite
//      for backward), and its fraction of the bandwidth of a large parallel memcpy measured at the start of
//      the same run with the same threads (2 x bytes / time: each byte is read and written).
//
// Reading the figures: calls follow each other on the same buffers with no cache flush, so the buffers
// that fit in the last-level cache (the small shapes; RMSprop's 5 MB) can beat the copy. And the
// kernels write with ordinary stores, which read each line before writing it, while glibc's memcpy
// switches to non-temporal stores for large copies; an op that writes as much as it reads therefore moves
// more bytes over the bus than it is credited with.
//
// Exit status: 0, 1 when a validation or a call failed, 2 for bad arguments.
//
//   cpu_ops [--batch N] [--size S] [--repeats N] [--copy-mib N]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/bench_check.h"
#include "bench/bench_flags.h"
#include "bench/model_shapes.h"
#include "bench/op_traffic.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/optim.h"
#include "kernels/cpu/pooling.h"
#include "model/autoencoder.h"

namespace {

using namespace mriae;
using namespace mriae::bench;
using Floats = std::vector<float>;

struct Options {
  int batch = 8, size = 176, repeats = 9, copy_mib = 512;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "cpu_ops: %s\nusage: cpu_ops [--batch N] [--size S] [--repeats N] [--copy-mib N]\n",
               why.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  parse_int_flags(argc, argv,
                  {{"--batch", &o.batch}, {"--size", &o.size}, {"--repeats", &o.repeats}, {"--copy-mib", &o.copy_mib}},
                  usage);
  if (o.size % 4 != 0) usage("--size must be a multiple of 4 (two poolings)");
  return o;
}

// One warm-up call (first touch of the outputs, as a training step's buffers are touched before the op
// that fills them), then the median of `repeats`.
double median_us(int repeats, const std::function<void()>& f) {
  using clock = std::chrono::steady_clock;
  f();
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  const size_t m = t.size() / 2;
  return t.size() % 2 ? t[m] : 0.5 * (t[m - 1] + t[m]);
}

// Each thread copies its own contiguous chunk with memcpy, as an OpenMP kernel over a buffer splits it.
double copy_gbps(size_t bytes, int repeats) {
  const std::unique_ptr<char[]> src(new char[bytes]), dst(new char[bytes]);
  auto each_chunk = [&](const std::function<void(size_t, size_t)>& f) {
#pragma omp parallel
    {
      const size_t t = size_t(omp_get_thread_num()), nt = size_t(omp_get_num_threads());
      const size_t lo = bytes * t / nt, hi = bytes * (t + 1) / nt;
      f(lo, hi - lo);
    }
  };
  // Fault the pages in before the clock runs: a first touch costs more than the copy.
  each_chunk([&](size_t lo, size_t n) {
    std::memset(src.get() + lo, 1, n);
    std::memset(dst.get() + lo, 0, n);
  });
  const double us = median_us(repeats, [&] {
    each_chunk([&](size_t lo, size_t n) { std::memcpy(dst.get() + lo, src.get() + lo, n); });
  });
  if (std::memcmp(src.get(), dst.get(), bytes) != 0) throw std::runtime_error("copy_gbps: the copy differs");
  return 2.0 * double(bytes) / (us * 1e-6) / 1e9;
}

// ---- rows and the table

struct Row {
  std::string op, layers, shape, direction, validation;
  double us = 0, gbps = 0, ours_gbps = 0, copy_pct = 0;
};

class Runner {
 public:
  Runner(const Options& o, double copy_gbps) : o_(o), copy_gbps_(copy_gbps) {}

  bool ok() const { return ok_; }
  const std::vector<Row>& rows() const { return rows_; }

  void row(const std::string& op, const Use& u, const std::string& direction, const Validation& v, Traffic t,
           const std::function<void()>& f) {
    row(op, u.layers, str(u.d), direction, v, t, f);
  }
  void row(const std::string& op, const std::string& layers, const std::string& shape, const std::string& direction,
           const Validation& v, Traffic t, const std::function<void()>& f) {
    for (const std::string& e : v.failures()) {
      std::fprintf(stderr, "cpu_ops: validation FAILED: %s (%s) %s %s: %s\n", op.c_str(), layers.c_str(),
                   direction.c_str(), shape.c_str(), e.c_str());
      ok_ = false;
    }
    Row r{op, layers, shape, direction, v.summary()};
    r.us = median_us(o_.repeats, f);
    r.gbps = t.minimal / (r.us * 1e-6) / 1e9;
    r.ours_gbps = t.ours / (r.us * 1e-6) / 1e9;
    r.copy_pct = 100.0 * r.gbps / copy_gbps_;
    rows_.push_back(r);
  }

 private:
  Options o_;
  double copy_gbps_;
  bool ok_ = true;
  std::vector<Row> rows_;
};

void print_table(const std::vector<Row>& rows) {
  std::printf("| op | layers | shape | direction | us (median) | GB/s | %% of copy | GB/s of our passes | check |\n"
              "|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows)
    std::printf("| %s | %s | %s | %s | %s | %s | %s%% | %s | %s |\n", r.op.c_str(), r.layers.c_str(), r.shape.c_str(),
                r.direction.c_str(), fixed(r.us, 1).c_str(), fixed(r.gbps, 1).c_str(), fixed(r.copy_pct, 0).c_str(),
                fixed(r.ours_gbps, 1).c_str(), r.validation.c_str());
}

// ---- validation helpers

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// dx written by overwrite and by accumulation onto zeros must agree bit for bit (0 + v is v), so the
// overwrite branch, which the engine runs, is the same gradient as the accumulate branch the tests check.
Comparison overwrite_vs_accumulate(const std::string& what, const Floats& overwritten,
                                   const std::function<void(float*)>& accumulate) {
  Floats onto_zeros(overwritten.size(), 0.0f);
  accumulate(onto_zeros.data());
  return compare(what + " (overwrite vs accumulate onto zeros)", overwritten, onto_zeros, kExact);
}

// ---- one function per kernel family: validate at the shape, then time each direction

// Not a kernel the model runs: its ReLUs are fused into the batchnorms (and the last conv feeds the
// sigmoid). Timed at the convolution outputs, as bench_cuda_ops does, to show what the fusion saves.
void bench_relu(Runner& r, const Use& u) {
  const int64_t n = u.d.count();
  Floats x = random_values(n, 11), dy = random_values(n, 12), y(sz(n)), dx(sz(n));
  for (int64_t i = 0; i < n; i += 7) x[sz(i)] = 0.0f;  // the gradient at exactly 0 is 0
  Validation vf, vb;
  {
    Floats y_ref(sz(n)), dx_ref(sz(n));
    for (size_t i = 0; i < y_ref.size(); ++i) {
      y_ref[i] = x[i] > 0 ? x[i] : 0.0f;
      dx_ref[i] = x[i] > 0 ? dy[i] : 0.0f;
    }
    cpu::relu_forward(x.data(), y.data(), n);
    cpu::relu_backward(x.data(), dy.data(), dx.data(), n, false);
    vf.add(compare("y", y, y_ref, kExact));
    vb.add(compare("dx", dx, dx_ref, kExact));
  }
  const std::string op = "relu, unfused";
  r.row(op, u, "forward", vf, elementwise_forward(n), [&] { cpu::relu_forward(x.data(), y.data(), n); });
  r.row(op, u, "backward", vb, elementwise_backward(n, Grad::Overwrite),
        [&] { cpu::relu_backward(x.data(), dy.data(), dx.data(), n, false); });
}

// kRelu: ReLU-then-batchnorm in one kernel, as the model runs it; without, batchnorm alone.
template <bool kRelu> void bench_batchnorm(Runner& r, const Use& u) {
  const NchwDims& d = u.d;
  const int64_t n = d.count(), hw = d.plane();
  const float eps = 1e-3f;
  // An offset mean, as after a ReLU: the two-pass variance must not cancel. The fused kernels get
  // negative inputs too, so that their ReLU matters.
  const Floats x = random_values(n, 21, kRelu ? -1.0 : 0.5, 2.5), gamma = random_values(d.c, 22, 0.5, 1.5),
               beta = random_values(d.c, 23), dy = random_values(n, 24);
  Floats y(sz(n)), ye(sz(n)), dx(sz(n)), mean(sz(d.c)), invstd(sz(d.c)), var(sz(d.c)), dgamma(sz(d.c)),
      dbeta(sz(d.c));
  Validation vt, ve, vb;
  {
    // Statistics and outputs in double from plain loops over the channel's elements.
    auto input = [](float v) { return kRelu ? std::max(double(v), 0.0) : double(v); };
    Floats mean_ref(sz(d.c)), var_ref(sz(d.c)), y_ref(sz(n));
    for (int c = 0; c < d.c; ++c) {
      double s = 0, ss = 0;
      for (int i = 0; i < d.n; ++i)
        for (int64_t p = 0; p < hw; ++p) s += input(x[sz((int64_t(i) * d.c + c) * hw + p)]);
      const double mu = s / (double(d.n) * double(hw));
      for (int i = 0; i < d.n; ++i)
        for (int64_t p = 0; p < hw; ++p) ss += std::pow(input(x[sz((int64_t(i) * d.c + c) * hw + p)]) - mu, 2);
      const double v = ss / (double(d.n) * double(hw));
      mean_ref[sz(c)] = float(mu), var_ref[sz(c)] = float(v);
      for (int i = 0; i < d.n; ++i)
        for (int64_t p = 0; p < hw; ++p) {
          const size_t o = sz((int64_t(i) * d.c + c) * hw + p);
          y_ref[o] = float((input(x[o]) - mu) / std::sqrt(v + eps) * gamma[sz(c)] + beta[sz(c)]);
        }
    }
    cpu::batchnorm_forward_train<float, kRelu>(x.data(), gamma.data(), beta.data(), y.data(), mean.data(),
                                               invstd.data(), var.data(), d, eps);
    vt.add(compare("mean", mean, mean_ref, kStatistics));
    vt.add(compare("variance", var, var_ref, kStatistics));
    vt.add(compare("y", y, y_ref, kReduction));
    // Inference from the same statistics rounded to float, as the moving statistics are stored: the
    // same output as training's, within float rounding.
    cpu::batchnorm_forward_eval<float, kRelu>(x.data(), gamma.data(), beta.data(), mean_ref.data(), var_ref.data(),
                                              ye.data(), d, eps);
    ve.add(compare("y", ye, y_ref, kReduction));
    cpu::batchnorm_backward_train<float, kRelu>(x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(),
                                                dx.data(), dgamma.data(), dbeta.data(), d, false);
    vb.add(overwrite_vs_accumulate("dx", dx, [&](float* acc) {
      cpu::batchnorm_backward_train<float, kRelu>(x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(), acc,
                                                  static_cast<float*>(nullptr), static_cast<float*>(nullptr), d, true);
    }));
  }
  const std::string op = kRelu ? "relu+batchnorm fused, as the model runs" : "batchnorm alone";
  r.row(op, u, "forward, training", vt, batchnorm_forward_train(d), [&] {
    cpu::batchnorm_forward_train<float, kRelu>(x.data(), gamma.data(), beta.data(), y.data(), mean.data(),
                                               invstd.data(), var.data(), d, eps);
  });
  r.row(op, u, "forward, inference", ve, batchnorm_forward_eval(d), [&] {
    cpu::batchnorm_forward_eval<float, kRelu>(x.data(), gamma.data(), beta.data(), mean.data(), var.data(), ye.data(),
                                              d, eps);
  });
  // dgamma and dbeta accumulate, as the engine's parameter gradients do; dx is overwritten.
  r.row(op, u, "backward", vb, batchnorm_backward(d, Grad::Overwrite), [&] {
    cpu::batchnorm_backward_train<float, kRelu>(x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(),
                                                dx.data(), dgamma.data(), dbeta.data(), d, false);
  });
}

void bench_maxpool(Runner& r, const Use& u) {
  const NchwDims& d = u.d;
  const int oh = d.h / 2, ow = d.w / 2;
  const int64_t n = d.count(), m = int64_t(d.n) * d.c * oh * ow;
  const Floats x = random_values(n, 31), dy = random_values(m, 32);
  Floats y(sz(m)), dx(sz(n));
  std::vector<int32_t> idx(sz(m));
  Validation vf, vb;
  {
    // The first maximum in row-major order; the random inputs have no NaN.
    Floats y_ref(sz(m));
    std::vector<int32_t> idx_ref(sz(m));
    for (int64_t p = 0; p < int64_t(d.n) * d.c; ++p)
      for (int i = 0; i < oh; ++i)
        for (int j = 0; j < ow; ++j) {
          int32_t best = 2 * i * d.w + 2 * j;
          for (int a = 0; a < 2; ++a)
            for (int b = 0; b < 2; ++b) {
              const int32_t at = (2 * i + a) * d.w + 2 * j + b;
              if (x[sz(p * d.plane() + at)] > x[sz(p * d.plane() + best)]) best = at;
            }
          const size_t o = sz(p * oh * ow + int64_t(i) * ow + j);
          y_ref[o] = x[sz(p * d.plane() + best)];
          idx_ref[o] = best;
        }
    cpu::maxpool2_forward(x.data(), y.data(), idx.data(), d);
    vf.add(compare("y", y, y_ref, kExact));
    vf.add(compare_exact_ints("argmax", idx, idx_ref));
    cpu::maxpool2_backward(dy.data(), idx.data(), dx.data(), d, false);
    vb.add(overwrite_vs_accumulate(
        "dx", dx, [&](float* acc) { cpu::maxpool2_backward(dy.data(), idx.data(), acc, d, true); }));
  }
  r.row("maxpool 2x2", u, "forward", vf, maxpool_forward(d),
        [&] { cpu::maxpool2_forward(x.data(), y.data(), idx.data(), d); });
  r.row("maxpool 2x2", u, "backward", vb, maxpool_backward(d, Grad::Overwrite),
        [&] { cpu::maxpool2_backward(dy.data(), idx.data(), dx.data(), d, false); });
}

void bench_upsample(Runner& r, const Use& u) {
  const NchwDims& d = u.d;
  const int64_t n = d.count(), ow = 2 * d.w;
  const Floats x = random_values(n, 41), dy = random_values(4 * n, 42);
  Floats y(sz(4 * n)), dx(sz(n));
  Validation vf, vb;
  {
    Floats y_ref(sz(4 * n)), dx_ref(sz(n));
    for (int64_t p = 0; p < int64_t(d.n) * d.c; ++p)
      for (int i = 0; i < d.h; ++i)
        for (int j = 0; j < d.w; ++j) {
          const size_t in = sz(p * d.plane() + int64_t(i) * d.w + j);
          const int64_t o = p * 4 * d.plane() + int64_t(2 * i) * ow + 2 * j;
          for (int64_t q : {o, o + 1, o + ow, o + ow + 1}) y_ref[sz(q)] = x[in];
          // Summed in the kernel's order, so the check is exact.
          dx_ref[in] = (dy[sz(o)] + dy[sz(o + 1)]) + (dy[sz(o + ow)] + dy[sz(o + ow + 1)]);
        }
    cpu::upsample2_forward(x.data(), y.data(), d);
    cpu::upsample2_backward(dy.data(), dx.data(), d, false);
    vf.add(compare("y", y, y_ref, kExact));
    vb.add(compare("dx", dx, dx_ref, kExact));
  }
  r.row("upsample 2x", u, "forward", vf, upsample_forward(d), [&] { cpu::upsample2_forward(x.data(), y.data(), d); });
  r.row("upsample 2x", u, "backward", vb, upsample_backward(d, Grad::Overwrite),
        [&] { cpu::upsample2_backward(dy.data(), dx.data(), d, false); });
}

void bench_sigmoid(Runner& r, const NchwDims& d) {
  const int64_t n = d.count();
  const Floats x = random_values(n, 51, -8, 8), dy = random_values(n, 52);
  Floats y(sz(n)), dx(sz(n));
  Validation vf, vb;
  {
    Floats y_ref(sz(n));
    for (size_t i = 0; i < y_ref.size(); ++i) y_ref[i] = float(1.0 / (1.0 + std::exp(-double(x[i]))));
    cpu::sigmoid_forward(x.data(), y.data(), n);
    vf.add(compare("y", y, y_ref, kTranscendental));
    cpu::sigmoid_backward(y.data(), dy.data(), dx.data(), n, false);
    vb.add(overwrite_vs_accumulate(
        "dx", dx, [&](float* acc) { cpu::sigmoid_backward(y.data(), dy.data(), acc, n, true); }));
  }
  const Use u{d, "conv11 output"};
  r.row("sigmoid", u, "forward", vf, elementwise_forward(n), [&] { cpu::sigmoid_forward(x.data(), y.data(), n); });
  r.row("sigmoid", u, "backward", vb, elementwise_backward(n, Grad::Overwrite),
        [&] { cpu::sigmoid_backward(y.data(), dy.data(), dx.data(), n, false); });
}

void bench_mse(Runner& r, const NchwDims& d) {
  const int64_t n = d.count();
  const float dloss = 0.7f;
  const Floats y = random_values(n, 61, 0, 1), t = random_values(n, 62, 0, 1);
  Floats dy(sz(n));
  float loss = 0;
  Validation vf, vb;
  {
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += std::pow(double(y[i]) - double(t[i]), 2);
    loss = cpu::mse_forward(y.data(), t.data(), n);
    vf.add(compare("loss", Floats{loss}, Floats{float(s / double(n))}, kStatistics));
    cpu::mse_backward(y.data(), t.data(), dloss, dy.data(), n, false);
    vb.add(overwrite_vs_accumulate(
        "dy", dy, [&](float* acc) { cpu::mse_backward(y.data(), t.data(), dloss, acc, n, true); }));
  }
  const Use u{d, "loss"};
  // The loss is stored where the caller can see it, so the call cannot be dropped as unused.
  r.row("mse loss", u, "forward", vf, mse_forward(n), [&] { loss = cpu::mse_forward(y.data(), t.data(), n); });
  r.row("mse loss", u, "backward", vb, mse_backward(n, Grad::Overwrite),
        [&] { cpu::mse_backward(y.data(), t.data(), dloss, dy.data(), n, false); });
  if (!std::isfinite(loss)) throw std::runtime_error("bench_mse: the loss is not finite");
}

void bench_rmsprop(Runner& r, int64_t n) {
  const float lr = 1e-3f, rho = 0.9f, eps = 1e-7f;
  Floats p = random_values(n, 71), acc = random_values(n, 72, 0, 1);
  const Floats g = random_values(n, 73);
  Validation v;
  {
    // Keras 2.2's rule written out in float: eps after the square root.
    Floats p_ref = p, acc_ref = acc;
    for (size_t i = 0; i < p_ref.size(); ++i) {
      acc_ref[i] = rho * acc_ref[i] + (1.0f - rho) * g[i] * g[i];
      p_ref[i] -= lr * g[i] / (std::sqrt(acc_ref[i]) + eps);
    }
    cpu::rmsprop_update(p.data(), acc.data(), g.data(), n, lr, rho, eps);
    v.add(compare("parameters", p, p_ref, kOneUlp));
    v.add(compare("accumulators", acc, acc_ref, kOneUlp));
  }
  r.row("rmsprop", "all trainable parameters", std::to_string(n) + " floats", "update", v, rmsprop(n),
        [&] { cpu::rmsprop_update(p.data(), acc.data(), g.data(), n, lr, rho, eps); });
}

// ---- the convolution's copies of its inputs (kernels/cpu/conv2d_layout.h)

// Read the input once; write the padded copy in full, its zero border too.
Traffic pad_traffic(const NchwDims& d, const cpu::conv_detail::Padded& p) {
  return same(kF * (double(d.count()) + double(int64_t(d.n) * d.c) * double(p.plane)));
}

// The shapes the engine pads whole, where the row kernels run: the one-channel sides of conv1 and conv11
// (forward, weight gradient and input gradient). The channel-blocked kernels pad band by band in cache, inside
// their own timings (bench/cpu_conv_layers).
std::vector<Use> pad_uses(const ModelShapes& m) {
  using cpu::conv_detail::use_blocked;
  using cpu::conv_detail::use_blocked_weight_grad;
  std::vector<Use> uses;
  for (const Use& c : m.conv) {
    if (!use_blocked(c.d.c, c.k)) add_use(uses, {c.d, c.layers + " x"});
    if (!use_blocked_weight_grad(c.d.c, c.k)) add_use(uses, {c.d, c.layers + " x (weight gradient)"});
  }
  for (const Use& c : m.conv)
    if (c.input_grad && !use_blocked(c.k, c.d.c)) add_use(uses, {NchwDims{c.d.n, c.k, c.d.h, c.d.w}, c.layers + " dy"});
  return uses;
}

void bench_pad(Runner& r, const Use& u) {
  const NchwDims& d = u.d;
  const cpu::conv_detail::Padded p(d);
  const int64_t planes = int64_t(d.n) * d.c;
  const Floats x = random_values(d.count(), 101);
  Floats xp(sz(planes * p.plane), -1.0f);
  Validation v;
  {
    Floats ref(xp.size(), 0.0f);
    for (int64_t q = 0; q < planes; ++q)
      for (int i = 0; i < d.h; ++i)
        for (int j = 0; j < d.w; ++j)
          ref[sz(q * p.plane + int64_t(i + 1) * p.pitch + j + 1)] = x[sz(q * d.plane() + int64_t(i) * d.w + j)];
    cpu::conv_detail::pad(x.data(), xp.data(), d, p);
    v.add(compare("padded", xp, ref, kExact));
  }
  r.row("conv: zero-padded copy (pad)", u, "copy", v, pad_traffic(d, p),
        [&] { cpu::conv_detail::pad(x.data(), xp.data(), d, p); });
}

// dy of the layers whose weight gradient takes the row kernels, whose rows it copies at the padded pitch
// (pitch_rows). The channel-blocked weight gradient blocks dy band by band in cache, inside its own timing.
void bench_dy_layouts(Runner& r, const ModelShapes& m) {
  using namespace cpu::conv_detail;
  std::vector<Use> rows;
  for (const Use& c : m.conv)
    if (!use_blocked_weight_grad(c.d.c, c.k)) add_use(rows, {NchwDims{c.d.n, c.k, c.d.h, c.d.w}, c.layers + " dy"});
  for (const Use& u : rows) {
    const NchwDims& d = u.d;
    const Padded p(d);
    const Floats dy = random_values(d.count(), 121);
    Floats dyp(sz(int64_t(d.n) * d.c * p.plane), -1.0f);
    Validation v;
    {
      Floats ref = dyp;  // the halo rows below each plane are not written
      for (int64_t q = 0; q < int64_t(d.n) * d.c; ++q)
        for (int i = 0; i < d.h; ++i)
          for (int j = 0; j < p.pitch; ++j)
            ref[sz(q * p.plane + int64_t(i) * p.pitch + j)] =
                j < d.w ? dy[sz(q * d.plane() + int64_t(i) * d.w + j)] : 0.0f;
      pitch_rows(dy.data(), dyp.data(), d, p);
      v.add(compare("pitched", dyp, ref, kExact));
    }
    // Read dy once, write its rows at the padded pitch.
    r.row("conv: dy rows at the padded pitch (pitch_rows)", u, "copy", v,
          same(kF * (double(d.count()) + double(int64_t(d.n) * d.c * d.h) * p.pitch)),
          [&] { pitch_rows(dy.data(), dyp.data(), d, p); });
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    const int threads = omp_get_max_threads();
    const size_t copy_bytes = size_t(o.copy_mib) << 20;
    const double copy = copy_gbps(copy_bytes, 5);
    std::printf("cpu_ops: batch %d, %dx%d input, %d OpenMP threads; median of %d repeats after one warm-up call "
                "(steady_clock), no cache flush between calls\n\n",
                o.batch, o.size, o.size, threads, o.repeats);
    std::printf("measured copy bandwidth: %.1f GB/s (parallel memcpy of %d MiB in %d chunks, one per thread; "
                "2 x bytes / time, median of 5)\n\n",
                copy, o.copy_mib, threads);

    Runner r(o, copy);
    const ModelShapes m = model_shapes(o.batch, o.size);
    for (const Use& u : m.bn) bench_batchnorm<true>(r, u);
    for (const Use& u : m.bn) bench_batchnorm<false>(r, u);
    for (const Use& u : m.relu) bench_relu(r, u);
    for (const Use& u : m.pool) bench_maxpool(r, u);
    for (const Use& u : m.upsample) bench_upsample(r, u);
    bench_sigmoid(r, m.output);
    bench_mse(r, m.output);
    bench_rmsprop(r, Autoencoder::trainable_count());
    for (const Use& u : pad_uses(m)) bench_pad(r, u);
    bench_dy_layouts(r, m);

    print_table(r.rows());
    std::printf("\nGB/s counts the bytes the op must read and write once (bench/op_traffic.h); backward kernels "
                "overwrite dx, as the engine runs them, so dx is written, not read. 'Our passes' counts each pass "
                "our kernels make (batchnorm reads its input more than once). %% of copy compares GB/s with the "
                "copy above.\n\nvalidation: %s\n",
                r.ok() ? "every checked kernel matched" : "FAILED (see stderr)");
    return r.ok() ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cpu_ops: error: %s\n", e.what());
    return 1;
  }
}
