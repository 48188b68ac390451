#pragma once
// 3x3 convolution, stride 1, 'same' zero padding, computed directly on a zero-padded copy of the input.
// Measured on this model's shapes, this beats im2col + OpenBLAS GEMM by avoiding the 9x im2col buffer and
// the GEMM's packing of it, which cost more than the multiply itself (bench/NOTES.md).
//
// Backward: the input gradient of a 'same' 3x3 convolution is itself one (dy with the kernel transposed
// in channels and flipped in space); the weight gradient is a direct correlation of dy with the padded x.
// Backward passes accumulate into their outputs.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cpu/shape.h"

namespace mriae::cpu {

namespace conv_detail {

constexpr int kRowBlock = 32;  // output columns per register block
constexpr int kOutBlock = 8;   // output channels per register block (forward)
constexpr int kGradBlock = 8;  // output channels per register block (weight gradient): 24 accumulators
constexpr int kLanes = 16;     // columns per step of the weight-gradient dot products

// Padded plane geometry: one zero row above and below, one zero column left and enough zero columns
// right that every register block reads inside the row.
struct Padded {
  int h, w, pitch;
  int64_t plane;
  explicit Padded(const Dims& d)
      : h(d.h), w(d.w), pitch((d.w + kRowBlock - 1) / kRowBlock * kRowBlock + 2),
        plane(int64_t(d.h + 2) * pitch) {}
};

template <typename T> void pad(const T* x, T* xp, const Dims& d, const Padded& p) {
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < int64_t(d.n) * d.c; ++q) {
    T* dst = xp + q * p.plane;
    std::fill(dst, dst + p.pitch, T(0));
    std::fill(dst + int64_t(d.h + 1) * p.pitch, dst + p.plane, T(0));
    for (int i = 0; i < d.h; ++i) {
      T* row = dst + int64_t(i + 1) * p.pitch;
      row[0] = T(0);
      std::copy(x + q * d.plane() + int64_t(i) * d.w, x + q * d.plane() + int64_t(i + 1) * d.w, row + 1);
      std::fill(row + 1 + d.w, row + p.pitch, T(0));
    }
  }
}

// y[o0..o0+OB) at row i, columns [j0, j0+jn): += sum_c sum_taps w * xp, plus bias when given.
// always_inline: the block must be compiled inside each target clone of its caller to get its vector width.
template <typename T, int OB>
__attribute__((always_inline)) inline void forward_block(const T* xp, const T* w, const T* b, T* y, int c_in, const Padded& p, int o0, int i, int j0,
                          int jn, int64_t out_plane, int out_w) {
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
    for (int v = 0; v < jn; ++v) yr[v] += acc[a][v] + bias;
  }
}

template <typename T>
__attribute__((target_clones("avx512f", "avx2", "default"))) void forward_padded(const T* xp, const T* w, const T* b,
                                                                                T* y, const Dims& d, int k,
                                                                                const Padded& p) {
  const int full = k / kOutBlock, blocks = full + (k % kOutBlock);
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
            forward_block<T, kOutBlock>(xn, w, b, yn, d.c, p, ob * kOutBlock, i, j0, jn, d.plane(), d.w);
          else
            forward_block<T, 1>(xn, w, b, yn, d.c, p, full * kOutBlock + (ob - full), i, j0, jn, d.plane(), d.w);
        }
      }
}

// dw[o0..o0+OB, c, ky, 0..2] += sum over images, rows and columns of dy * shifted xp. One kernel row per
// call keeps OB*3 accumulators in registers while each x load serves OB output channels. dyp rows have the
// padded pitch with zeros past the last column, so whole lane groups can be read.
template <typename T, int OB>
__attribute__((always_inline)) inline void weight_grad_block(const T* xp, const T* dyp, T* dw, const Dims& d, int k,
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
__attribute__((target_clones("avx512f", "avx2", "default"))) void weight_grad_padded(const T* xp, const T* dyp, T* dw,
                                                                                    const Dims& d, int k,
                                                                                    const Padded& p) {
  const int full = k / kGradBlock, blocks = full + k % kGradBlock;
#pragma omp parallel for collapse(3) schedule(dynamic)
  for (int ob = 0; ob < blocks; ++ob)
    for (int c = 0; c < d.c; ++c)
      for (int ky = 0; ky < 3; ++ky) {
        if (ob < full)
          weight_grad_block<T, kGradBlock>(xp, dyp, dw, d, k, p, ob * kGradBlock, c, ky);
        else
          weight_grad_block<T, 1>(xp, dyp, dw, d, k, p, full * kGradBlock + (ob - full), c, ky);
      }
}

// dy laid out with the padded pitch (no halo rows needed) and zeros past the last column.
template <typename T> void pitch_rows(const T* dy, T* dyp, const Dims& dyd, const Padded& p) {
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < int64_t(dyd.n) * dyd.c; ++q)
    for (int i = 0; i < dyd.h; ++i) {
      T* row = dyp + q * p.plane + int64_t(i) * p.pitch;
      std::copy(dy + q * dyd.plane() + int64_t(i) * dyd.w, dy + q * dyd.plane() + int64_t(i + 1) * dyd.w, row);
      std::fill(row + dyd.w, row + p.pitch, T(0));
    }
}

}  // namespace conv_detail

// Scratch elements needed by conv3x3_forward / conv3x3_backward for an input of shape x and k filters.
inline int64_t conv3x3_scratch_elems(const Dims& x, int k) {
  const conv_detail::Padded p(x);
  const int64_t widest = std::max(x.c, k);
  // padded input, padded dy (also the padded input of the input-gradient convolution), flipped kernel
  return int64_t(x.n) * x.c * p.plane + int64_t(x.n) * widest * p.plane + int64_t(k) * x.c * 9;
}

// y = conv(x, w) + b, or y += conv(x, w) + b with accumulate. w is [K, C, 3, 3]; b may be null.
template <typename T>
void conv3x3_forward(const T* x, const T* w, const T* b, T* y, const Dims& xd, int k, T* scratch,
                     bool accumulate = false) {
  const conv_detail::Padded p(xd);
  if (!accumulate) std::fill(y, y + int64_t(xd.n) * k * xd.plane(), T(0));
  conv_detail::pad(x, scratch, xd, p);
  conv_detail::forward_padded(scratch, w, b, y, xd, k, p);
}

// Accumulates dx, dw and db (each may be null) from dy. Scratch: conv3x3_scratch_elems(xd, k).
template <typename T>
void conv3x3_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* db, const Dims& xd, int k, T* scratch) {
  const conv_detail::Padded p(xd);
  const Dims dyd{xd.n, k, xd.h, xd.w};
  T* xp = scratch;
  T* dyp = xp + int64_t(xd.n) * xd.c * p.plane;
  T* wt = dyp + int64_t(xd.n) * std::max(xd.c, k) * p.plane;
  if (db) {
#pragma omp parallel for schedule(static)
    for (int o = 0; o < k; ++o) {
      double s = 0;  // double accumulation keeps the CPU path a trustworthy oracle
      for (int n = 0; n < xd.n; ++n) {
        const T* g = dy + (int64_t(n) * k + o) * xd.plane();
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < xd.plane(); ++i) s += g[i];
      }
      db[o] += T(s);
    }
  }
  if (dw) {
    conv_detail::pad(x, xp, xd, p);
    conv_detail::pitch_rows(dy, dyp, dyd, p);
    conv_detail::weight_grad_padded(xp, dyp, dw, xd, k, p);
  }
  if (dx) {
    for (int o = 0; o < k; ++o)
      for (int c = 0; c < xd.c; ++c)
        for (int t = 0; t < 9; ++t) wt[(int64_t(c) * k + o) * 9 + (8 - t)] = w[(int64_t(o) * xd.c + c) * 9 + t];
    conv_detail::pad(dy, dyp, dyd, p);
    conv_detail::forward_padded(dyp, wt, static_cast<const T*>(nullptr), dx, dyd, xd.c, p);
  }
}

}  // namespace mriae::cpu
