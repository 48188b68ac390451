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
#include "kernels/common/op_math.h"
#include "kernels/cpu/clones.h"
#include "kernels/common/nchw_dims.h"

namespace mriae::cpu {

// Training mode: normalises with the batch mean and biased variance. Writes the per-channel mean and
// invstd that backward needs, and the biased batch variance for the moving statistics.
template <typename T, bool kReluInput = false>
MRIAE_CPU_CLONES void batchnorm_forward_train(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* invstd, T* var,
                             const NchwDims& d, T eps, const T* xbias = nullptr) {
  const int64_t hw = d.plane();
  const double m = double(d.n) * hw;
#pragma omp parallel for schedule(static)
  for (int c = 0; c < d.c; ++c) {
    const T xb = xbias ? xbias[c] : T(0);  // adding +0 leaves every value unchanged (-0 becomes +0: alike)
    double s = 0;
    for (int n = 0; n < d.n; ++n) {
      const T* p = x + (int64_t(n) * d.c + c) * hw;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < hw; ++i) s += hd::bn_input<kReluInput>(p[i] + xb);
    }
    const double mu = s / m;
    // Two passes: the variance as the mean squared deviation, which does not cancel like E[x^2] - mean^2.
    double ss = 0;
    for (int n = 0; n < d.n; ++n) {
      const T* p = x + (int64_t(n) * d.c + c) * hw;
#pragma omp simd reduction(+ : ss)
      for (int64_t i = 0; i < hw; ++i) {
        const double dev = hd::bn_input<kReluInput>(p[i] + xb) - mu;
        ss += dev * dev;
      }
    }
    const T v = T(ss / m);
    const T mu_t = T(mu), is = hd::bn_invstd(v, eps), g = gamma[c], b = beta[c];
    mean[c] = mu_t;
    invstd[c] = is;
    var[c] = v;
    for (int n = 0; n < d.n; ++n) {
      const T* p = x + (int64_t(n) * d.c + c) * hw;
      T* q = y + (int64_t(n) * d.c + c) * hw;
#pragma omp simd
      for (int64_t i = 0; i < hw; ++i) q[i] = hd::bn_forward(hd::bn_input<kReluInput>(p[i] + xb), mu_t, is, g, b);
    }
  }
}

// Inference mode: normalises with the given (moving) mean and variance.
template <typename T, bool kReluInput = false>
MRIAE_CPU_CLONES void batchnorm_forward_eval(const T* x, const T* gamma, const T* beta, const T* mean, const T* var, T* y,
                            const NchwDims& d, T eps, const T* xbias = nullptr) {
  const int64_t hw = d.plane();
#pragma omp parallel for schedule(static)
  for (int c = 0; c < d.c; ++c) {
    const T is = hd::bn_invstd(var[c], eps), mu = mean[c], g = gamma[c], b = beta[c], xb = xbias ? xbias[c] : T(0);
    for (int n = 0; n < d.n; ++n) {
      const T* p = x + (int64_t(n) * d.c + c) * hw;
      T* q = y + (int64_t(n) * d.c + c) * hw;
#pragma omp simd
      for (int64_t i = 0; i < hw; ++i) q[i] = hd::bn_forward(hd::bn_input<kReluInput>(p[i] + xb), mu, is, g, b);
    }
  }
}

// Backward of training mode. Accumulates into dx, dgamma and dbeta, each of which may be null; with
// accumulate_dx = false, dx is overwritten instead.
template <typename T, bool kReluInput = false>
MRIAE_CPU_CLONES void batchnorm_backward_train(const T* x, const T* dy, const T* gamma, const T* mean, const T* invstd, T* dx,
                              T* dgamma, T* dbeta, const NchwDims& d, bool accumulate_dx = true,
                              const T* xbias = nullptr) {
  const int64_t hw = d.plane();
  const double m = double(d.n) * hw;
#pragma omp parallel for schedule(static)
  for (int c = 0; c < d.c; ++c) {
    const T mu = mean[c], is = invstd[c], xb = xbias ? xbias[c] : T(0);
    double sdy = 0, sdyx = 0;
    for (int n = 0; n < d.n; ++n) {
      const int64_t off = (int64_t(n) * d.c + c) * hw;
#pragma omp simd reduction(+ : sdy, sdyx)
      for (int64_t i = 0; i < hw; ++i) {
        sdy += dy[off + i];
        sdyx += double(dy[off + i]) * ((hd::bn_input<kReluInput>(x[off + i] + xb) - mu) * is);
      }
    }
    if (dgamma) dgamma[c] += T(sdyx);
    if (dbeta) dbeta[c] += T(sdy);
    if (!dx) continue;
    const T mdy = T(sdy / m), mdyx = T(sdyx / m), gi = gamma[c] * is;
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
}

}  // namespace mriae::cpu
