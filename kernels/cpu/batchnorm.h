#pragma once
// Batch normalisation over N, H and W of each channel, eps as given (Keras: 1e-3).
// Channel sums accumulate in double so the CPU path stays a trustworthy oracle.
//
// With kReluInput the kernels normalise relu(x) and the backward pass returns the gradient with respect to
// x: the model's ReLU-then-BatchNorm blocks in one pass over memory instead of three, with the same
// arithmetic (and so the same bits) as the two ops in sequence.
//
// xbias (per channel, may be null) is added to every x as it is read: a convolution's bias folded into the
// batchnorm's read of the convolution's output, which then need not be written a second time to add it.
// x + xbias[c] is one float addition, as the separate bias add makes it, so the results are the same bits;
// backward reads the same bias-free x and returns the gradient with respect to it (= that of x + xbias).
#include <functional>
#include <vector>

#include "kernels/common/op_math.h"
#include "kernels/cpu/clones.h"
#include "kernels/common/nchw_dims.h"

namespace mriae::cpu {

// Where the batch is shared by several processes (data parallelism with synchronised batchnorm), the
// per-channel sums are reduced across them at the two points where the statistics need the whole batch:
// ChannelSums sums `n` doubles in place over every process, each of which passes its own partial sums
// (and, as the last element, its own element count, so uneven shards weigh what they hold). Null: this
// process holds the whole batch, and the kernels run as one fused pass per channel.
using ChannelSums = std::function<void(double* sums, int n)>;

namespace bn_detail {

// The per-channel pieces both the fused and the shared-batch kernels run, inlined into each clone, so a
// single process computes the same bits either way.
template <typename T, bool kReluInput>
__attribute__((always_inline)) inline double channel_sum(const T* x, const NchwDims& d, int c, T xb) {
  const int64_t hw = d.plane();
  double s = 0;
  for (int n = 0; n < d.n; ++n) {
    const T* p = x + (int64_t(n) * d.c + c) * hw;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < hw; ++i) s += hd::bn_input<kReluInput>(p[i] + xb);
  }
  return s;
}

// Two passes: the variance as the mean squared deviation, which does not cancel like E[x^2] - mean^2.
template <typename T, bool kReluInput>
__attribute__((always_inline)) inline double channel_squared_deviations(const T* x, const NchwDims& d, int c, T xb,
                                                                        double mu) {
  const int64_t hw = d.plane();
  double ss = 0;
  for (int n = 0; n < d.n; ++n) {
    const T* p = x + (int64_t(n) * d.c + c) * hw;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < hw; ++i) {
      const double dev = hd::bn_input<kReluInput>(p[i] + xb) - mu;
      ss += dev * dev;
    }
  }
  return ss;
}

template <typename T, bool kReluInput>
__attribute__((always_inline)) inline void channel_normalise(const T* x, T* y, const NchwDims& d, int c, T xb, T mu,
                                                             T is, T g, T b) {
  const int64_t hw = d.plane();
  for (int n = 0; n < d.n; ++n) {
    const T* p = x + (int64_t(n) * d.c + c) * hw;
    T* q = y + (int64_t(n) * d.c + c) * hw;
#pragma omp simd
    for (int64_t i = 0; i < hw; ++i) q[i] = hd::bn_forward(hd::bn_input<kReluInput>(p[i] + xb), mu, is, g, b);
  }
}

// sum dy and sum dy * xhat over a channel.
template <typename T, bool kReluInput>
__attribute__((always_inline)) inline void channel_grad_sums(const T* x, const T* dy, const NchwDims& d, int c, T xb,
                                                             T mu, T is, double& sdy_out, double& sdyx_out) {
  const int64_t hw = d.plane();
  double sdy = 0, sdyx = 0;
  for (int n = 0; n < d.n; ++n) {
    const int64_t off = (int64_t(n) * d.c + c) * hw;
#pragma omp simd reduction(+ : sdy, sdyx)
    for (int64_t i = 0; i < hw; ++i) {
      sdy += dy[off + i];
      sdyx += double(dy[off + i]) * ((hd::bn_input<kReluInput>(x[off + i] + xb) - mu) * is);
    }
  }
  sdy_out = sdy;
  sdyx_out = sdyx;
}

template <typename T, bool kReluInput>
__attribute__((always_inline)) inline void channel_grad_input(const T* x, const T* dy, T* dx, const NchwDims& d, int c,
                                                              T xb, T mu, T is, T mdy, T mdyx, T gi,
                                                              bool accumulate_dx) {
  const int64_t hw = d.plane();
  auto grad = [&](int64_t o) __attribute__((always_inline)) {  // inlined into each clone
    const T xo = x[o] + xb;
    const T g = hd::bn_backward(dy[o], (hd::bn_input<kReluInput>(xo) - mu) * is, mdy, mdyx, gi);
    return kReluInput ? hd::relu_grad(xo, g) : g;
  };
  for (int n = 0; n < d.n; ++n) {
    const int64_t off = (int64_t(n) * d.c + c) * hw;
    if (accumulate_dx) {
#pragma omp simd
      for (int64_t i = 0; i < hw; ++i) dx[off + i] += grad(off + i);
    } else {
#pragma omp simd
      for (int64_t i = 0; i < hw; ++i) dx[off + i] = grad(off + i);
    }
  }
}

}  // namespace bn_detail

// Training mode: normalises with the batch mean and biased variance. Writes the per-channel mean and
// invstd that backward needs, and the biased batch variance for the moving statistics. With `shared`, the
// batch is the union of every process's x (see ChannelSums). Returns the number of elements per channel
// the statistics were taken over (every process's, with `shared`).
template <typename T, bool kReluInput = false>
MRIAE_CPU_CLONES int64_t batchnorm_forward_train(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* invstd,
                                                 T* var, const NchwDims& d, T eps, const T* xbias = nullptr,
                                                 const ChannelSums* shared = nullptr) {
  using namespace bn_detail;
  const int64_t local = int64_t(d.n) * d.plane();
  if (!shared || !*shared) {
    const double m = double(local);
#pragma omp parallel for schedule(static)
    for (int c = 0; c < d.c; ++c) {
      const T xb = xbias ? xbias[c] : T(0);  // adding +0 leaves every value unchanged (-0 becomes +0: alike)
      const double mu = channel_sum<T, kReluInput>(x, d, c, xb) / m;
      const T v = T(channel_squared_deviations<T, kReluInput>(x, d, c, xb, mu) / m);
      const T mu_t = T(mu), is = hd::bn_invstd(v, eps);
      mean[c] = mu_t;
      invstd[c] = is;
      var[c] = v;
      channel_normalise<T, kReluInput>(x, y, d, c, xb, mu_t, is, gamma[c], beta[c]);
    }
    return local;
  }
  // The same arithmetic in three sweeps over the channels, with the sums reduced between them.
  std::vector<double> sums(size_t(d.c) + 1), mu(size_t(d.c));
#pragma omp parallel for schedule(static)
  for (int c = 0; c < d.c; ++c) sums[size_t(c)] = channel_sum<T, kReluInput>(x, d, c, xbias ? xbias[c] : T(0));
  sums[size_t(d.c)] = double(local);
  (*shared)(sums.data(), d.c + 1);
  const double m = sums[size_t(d.c)];
  for (int c = 0; c < d.c; ++c) mu[size_t(c)] = m > 0 ? sums[size_t(c)] / m : 0.0;
#pragma omp parallel for schedule(static)
  for (int c = 0; c < d.c; ++c)
    sums[size_t(c)] = channel_squared_deviations<T, kReluInput>(x, d, c, xbias ? xbias[c] : T(0), mu[size_t(c)]);
  sums[size_t(d.c)] = 0;  // the count is known now
  (*shared)(sums.data(), d.c + 1);
#pragma omp parallel for schedule(static)
  for (int c = 0; c < d.c; ++c) {
    const T v = T(m > 0 ? sums[size_t(c)] / m : 0.0);
    const T mu_t = T(mu[size_t(c)]), is = hd::bn_invstd(v, eps);
    mean[c] = mu_t;
    invstd[c] = is;
    var[c] = v;
    channel_normalise<T, kReluInput>(x, y, d, c, xbias ? xbias[c] : T(0), mu_t, is, gamma[c], beta[c]);
  }
  return int64_t(m);
}

namespace bn_detail {
// q[0..len) = the inference batchnorm of p (or of relu(p)) for one channel. q may be p.
template <typename T, bool kReluInput>
__attribute__((always_inline)) inline void eval_normalise(const T* p, T* q, int64_t len, T xb, T mu, T is, T g, T b) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) q[i] = hd::bn_forward(hd::bn_input<kReluInput>(p[i] + xb), mu, is, g, b);
}
}  // namespace bn_detail

// Inference mode: normalises with the given (moving) mean and variance.
template <typename T, bool kReluInput = false>
MRIAE_CPU_CLONES void batchnorm_forward_eval(const T* x, const T* gamma, const T* beta, const T* mean, const T* var, T* y,
                            const NchwDims& d, T eps, const T* xbias = nullptr) {
  const int64_t hw = d.plane();
#pragma omp parallel for schedule(static)
  for (int c = 0; c < d.c; ++c) {
    const T is = hd::bn_invstd(var[c], eps), mu = mean[c], g = gamma[c], b = beta[c], xb = xbias ? xbias[c] : T(0);
    for (int n = 0; n < d.n; ++n) {
      const int64_t off = (int64_t(n) * d.c + c) * hw;
      bn_detail::eval_normalise<T, kReluInput>(x + off, y + off, hw, xb, mu, is, g, b);
    }
  }
}

// The inference batchnorm of relu(y) as the epilogue of the convolution that writes y (the model's blocks in
// inference): the convolution hands it each stretch of its output while that is still in cache, instead of
// a separate pass reading the whole output back from memory. It computes what batchnorm_forward_eval<T, true>
// computes from the same y, element for element (and adds the same +0 for the absent bias): the same bits.
template <typename T> struct ReluBatchnormEval {
  const T* gamma;
  const T* beta;
  const T* mean;
  const T* var;
  T eps;
};

// y[a * channel_stride + i] for a < channels and i < len, the stretches of channels c0, c0 + 1, ..., in place.
// Cloned without contraction, as batchnorm_forward_eval is: its callers, the convolutions, contract theirs.
template <typename T>
MRIAE_CPU_CLONES void relu_batchnorm_eval_inplace(T* y, int64_t channel_stride, int64_t len, int c0, int channels,
                                                  const ReluBatchnormEval<T>& e) {
  for (int a = 0; a < channels; ++a) {
    const int c = c0 + a;
    bn_detail::eval_normalise<T, true>(y + a * channel_stride, y + a * channel_stride, len, T(0), e.mean[c],
                                       hd::bn_invstd(e.var[c], e.eps), e.gamma[c], e.beta[c]);
  }
}

// Backward of training mode. Accumulates into dx, dgamma and dbeta, each of which may be null; with
// accumulate_dx = false, dx is overwritten instead. With `shared` (as in the forward pass), dx is the
// gradient of the whole shared batch's statistics, while dgamma and dbeta receive this process's own part
// (the gradients are summed across the processes afterwards, with everything else).
template <typename T, bool kReluInput = false>
MRIAE_CPU_CLONES void batchnorm_backward_train(const T* x, const T* dy, const T* gamma, const T* mean, const T* invstd, T* dx,
                              T* dgamma, T* dbeta, const NchwDims& d, bool accumulate_dx = true,
                              const T* xbias = nullptr, const ChannelSums* shared = nullptr) {
  using namespace bn_detail;
  const int64_t local = int64_t(d.n) * d.plane();
  if (!shared || !*shared) {
    const double m = double(local);
#pragma omp parallel for schedule(static)
    for (int c = 0; c < d.c; ++c) {
      const T mu = mean[c], is = invstd[c], xb = xbias ? xbias[c] : T(0);
      double sdy, sdyx;
      channel_grad_sums<T, kReluInput>(x, dy, d, c, xb, mu, is, sdy, sdyx);
      if (dgamma) dgamma[c] += T(sdyx);
      if (dbeta) dbeta[c] += T(sdy);
      if (!dx) continue;
      channel_grad_input<T, kReluInput>(x, dy, dx, d, c, xb, mu, is, T(sdy / m), T(sdyx / m), gamma[c] * is,
                                        accumulate_dx);
    }
    return;
  }
  // sums: sum dy per channel, then sum dy * xhat per channel, then the element count.
  std::vector<double> sums(2 * size_t(d.c) + 1);
#pragma omp parallel for schedule(static)
  for (int c = 0; c < d.c; ++c) {
    channel_grad_sums<T, kReluInput>(x, dy, d, c, xbias ? xbias[c] : T(0), mean[c], invstd[c], sums[size_t(c)],
                                     sums[size_t(d.c + c)]);
    if (dgamma) dgamma[c] += T(sums[size_t(d.c + c)]);
    if (dbeta) dbeta[c] += T(sums[size_t(c)]);
  }
  sums[2 * size_t(d.c)] = double(local);
  (*shared)(sums.data(), 2 * d.c + 1);
  const double m = sums[2 * size_t(d.c)];
  if (!dx || m == 0) return;
#pragma omp parallel for schedule(static)
  for (int c = 0; c < d.c; ++c) {
    const T is = invstd[c];
    channel_grad_input<T, kReluInput>(x, dy, dx, d, c, xbias ? xbias[c] : T(0), mean[c], is,
                                      T(sums[size_t(c)] / m), T(sums[size_t(d.c + c)] / m), gamma[c] * is,
                                      accumulate_dx);
  }
}

}  // namespace mriae::cpu
