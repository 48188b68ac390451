#pragma once
// Direct 3x3 convolution kernels vectorised along image rows, for layers with few output channels (the
// model's last layer has one), where the channel-blocked kernels would leave most vector lanes empty.
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/clones.h"
#include "kernels/cpu/conv2d_layout.h"

namespace mriae::cpu::conv_detail {

constexpr int kRowOutBlock = 8;   // output channels per register block (forward)
constexpr int kRowGradBlock = 8;  // output channels per register block (weight gradient): 24 accumulators

// y[o0..o0+OB) at row i, columns [j0, j0+jn): (+)= sum_c sum_taps w * xp, plus bias when given. Each output
// element is computed whole in one call, so overwriting needs no zero fill.
// always_inline: the block must be compiled inside each target clone of its caller to get its vector width.
template <typename T, int OB>
__attribute__((always_inline)) inline void forward_block(const T* xp, const T* w, const T* b, T* y, int c_in, const Padded& p, int o0, int i, int j0,
                          int jn, int64_t out_plane, int out_w, bool accumulate) {
  T acc[OB][kRowBlock];
  for (int a = 0; a < OB; ++a)
    for (int v = 0; v < kRowBlock; ++v) acc[a][v] = T(0);
  for (int c = 0; c < c_in; ++c) {
    const T* wc = w + (int64_t(o0) * c_in + c) * 9;
    for (int ky = 0; ky < 3; ++ky) {
      const T* xr = xp + c * p.plane + int64_t(i + ky) * p.pitch + j0;
      for (int kx = 0; kx < 3; ++kx)
        for (int a = 0; a < OB; ++a) {
          const T wv = wc[int64_t(a) * c_in * 9 + ky * 3 + kx];
#pragma omp simd
          for (int v = 0; v < kRowBlock; ++v) acc[a][v] += wv * xr[kx + v];
        }
    }
  }
  for (int a = 0; a < OB; ++a) {
    T* yr = y + (o0 + a) * out_plane + int64_t(i) * out_w + j0;
    const T bias = b ? b[o0 + a] : T(0);
    if (accumulate)
      for (int v = 0; v < jn; ++v) yr[v] += acc[a][v] + bias;
    else
      for (int v = 0; v < jn; ++v) yr[v] = acc[a][v] + bias;
  }
}

// epi (or null, and only without accumulate): the inference batchnorm of relu(y), run on each row of a block of
// channels once it is complete.
template <typename T>
MRIAE_CPU_CLONES_FMA void forward_rows(const T* xp, const T* w, const T* b, T* y, const NchwDims& d, int k,
                                       const Padded& p, bool accumulate, const ReluBatchnormEval<T>* epi = nullptr) {
  const int full = k / kRowOutBlock, blocks = full + (k % kRowOutBlock);
  const int jblocks = (d.w + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for collapse(3) schedule(static)
  for (int n = 0; n < d.n; ++n)
    for (int ob = 0; ob < blocks; ++ob)
      for (int i = 0; i < d.h; ++i) {
        const T* xn = xp + int64_t(n) * d.c * p.plane;
        T* yn = y + int64_t(n) * k * d.plane();
        for (int jb = 0; jb < jblocks; ++jb) {
          const int j0 = jb * kRowBlock, jn = std::min(kRowBlock, d.w - j0);
          if (ob < full)
            forward_block<T, kRowOutBlock>(xn, w, b, yn, d.c, p, ob * kRowOutBlock, i, j0, jn, d.plane(), d.w,
                                           accumulate);
          else
            forward_block<T, 1>(xn, w, b, yn, d.c, p, full * kRowOutBlock + (ob - full), i, j0, jn, d.plane(), d.w,
                                accumulate);
        }
        if (epi) {
          const int o0 = ob < full ? ob * kRowOutBlock : full * kRowOutBlock + (ob - full);
          relu_batchnorm_eval_inplace(yn + o0 * d.plane() + int64_t(i) * d.w, d.plane(), d.w, o0,
                                      ob < full ? kRowOutBlock : 1, *epi);
        }
      }
}

// dw[o0..o0+OB, c, ky, 0..2] += sum over images, rows and columns of dy * shifted xp. One kernel row per
// call keeps OB*3 accumulators in registers while each x load serves OB output channels. dyp rows have the
// padded pitch with zeros past the last column, so whole lane groups can be read.
template <typename T, int OB>
__attribute__((always_inline)) inline void weight_grad_block(const T* xp, const T* dyp, T* dw, const NchwDims& d, int k,
                                                             const Padded& p, int o0, int c, int ky) {
  T acc[OB][3][kLanes];
  for (int a = 0; a < OB; ++a)
    for (int t = 0; t < 3; ++t)
      for (int v = 0; v < kLanes; ++v) acc[a][t][v] = T(0);
  for (int n = 0; n < d.n; ++n) {
    const T* xc = xp + (int64_t(n) * d.c + c) * p.plane + int64_t(ky) * p.pitch;
    const T* gn = dyp + (int64_t(n) * k + o0) * p.plane;
    for (int i = 0; i < d.h; ++i)
      for (int j0 = 0; j0 < d.w; j0 += kLanes) {
        const T* xr = xc + int64_t(i) * p.pitch + j0;
#pragma GCC unroll 8
        for (int a = 0; a < OB; ++a) {
          const T* g = gn + a * p.plane + int64_t(i) * p.pitch + j0;
#pragma omp simd
          for (int v = 0; v < kLanes; ++v) {
            acc[a][0][v] += g[v] * xr[v];
            acc[a][1][v] += g[v] * xr[v + 1];
            acc[a][2][v] += g[v] * xr[v + 2];
          }
        }
      }
  }
  for (int a = 0; a < OB; ++a)
    for (int t = 0; t < 3; ++t) {
      T s = T(0);
      for (int v = 0; v < kLanes; ++v) s += acc[a][t][v];
      dw[(int64_t(o0 + a) * d.c + c) * 9 + ky * 3 + t] += s;
    }
}

template <typename T>
MRIAE_CPU_CLONES_FMA void weight_grad_rows(const T* xp, const T* dyp, T* dw,
                                                                                    const NchwDims& d, int k,
                                                                                    const Padded& p) {
  const int full = k / kRowGradBlock, blocks = full + k % kRowGradBlock;
#pragma omp parallel for collapse(3) schedule(dynamic)
  for (int ob = 0; ob < blocks; ++ob)
    for (int c = 0; c < d.c; ++c)
      for (int ky = 0; ky < 3; ++ky) {
        if (ob < full)
          weight_grad_block<T, kRowGradBlock>(xp, dyp, dw, d, k, p, ob * kRowGradBlock, c, ky);
        else
          weight_grad_block<T, 1>(xp, dyp, dw, d, k, p, full * kRowGradBlock + (ob - full), c, ky);
      }
}

}  // namespace mriae::cpu::conv_detail
