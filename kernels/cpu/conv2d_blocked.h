#pragma once
// Direct 3x3 convolution kernels vectorised over 16 output channels, the layout oneDNN uses: each input
// value is broadcast once and multiplied into a register of 16 channels, so the loop is bound by
// multiply-adds rather than by loads. For layers with at least 16 output channels.
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/clones.h"
#include "kernels/cpu/conv2d_layout.h"

namespace mriae::cpu::conv_detail {

// y[n, kb*32 .. +32, i, jb*11 .. +11] = (or +=, with accumulate) conv + bias. xp is padded; wb is block_weights' layout.
// always_inline: the block must be compiled inside each target clone of its caller to get its vector width.
template <typename T>
__attribute__((always_inline)) inline void forward_blocked_tile(const T* xp, const T* wb, const T* b, T* y,
                                                                const Dims& d, int k, const Padded& p, int n, int kb,
                                                                int i, int jb, bool accumulate) {
  T acc[kPixelBlock][kOutLanes];
  for (int q = 0; q < kPixelBlock; ++q)
    for (int l = 0; l < kOutLanes; ++l) acc[q][l] = T(0);
  for (int c = 0; c < d.c; ++c) {
    const T* wc = wb + (int64_t(kb) * d.c + c) * 9 * kOutLanes;
    const T* x0 = xp + (int64_t(n) * d.c + c) * p.plane + int64_t(i) * p.pitch + jb * kPixelBlock;
    // Rows of taps, each row's three unrolled: measured 7-10% faster than one loop over the nine taps (whose
    // row and column come from t / 3 and t % 3), and also faster than unrolling all nine.
    for (int ky = 0; ky < 3; ++ky) {
      const T* xr = x0 + ky * p.pitch;
#pragma GCC unroll 3
      for (int kx = 0; kx < 3; ++kx) {
        const T* wv = wc + (ky * 3 + kx) * kOutLanes;
#pragma GCC unroll 11
        for (int q = 0; q < kPixelBlock; ++q) {
          const T xv = xr[q + kx];
#pragma omp simd
          for (int l = 0; l < kOutLanes; ++l) acc[q][l] += xv * wv[l];
        }
      }
    }
  }
  const int jn = std::min(kPixelBlock, d.w - jb * kPixelBlock), lanes = std::min(kOutLanes, k - kb * kOutLanes);
  for (int l = 0; l < lanes; ++l) {
    T* yr = y + ((int64_t(n) * k + kb * kOutLanes + l) * d.h + i) * d.w + jb * kPixelBlock;
    const T bias = b ? b[kb * kOutLanes + l] : T(0);
    if (accumulate)
      for (int q = 0; q < jn; ++q) yr[q] += acc[q][l] + bias;
    else
      for (int q = 0; q < jn; ++q) yr[q] = acc[q][l] + bias;
  }
}

template <typename T>
MRIAE_CPU_CLONES_FMA void forward_blocked(const T* xp, const T* wb,
                                                                                 const T* b, T* y, const Dims& d,
                                                                                 int k, const Padded& p,
                                                                                 bool accumulate) {
  const int kbs = lane_blocks(k, kOutLanes), jbs = round_up(d.w, kPixelBlock) / kPixelBlock;
#pragma omp parallel for collapse(3) schedule(static)
  for (int n = 0; n < d.n; ++n)
    for (int kb = 0; kb < kbs; ++kb)
      for (int i = 0; i < d.h; ++i)
        for (int jb = 0; jb < jbs; ++jb) forward_blocked_tile(xp, wb, b, y, d, k, p, n, kb, i, jb, accumulate);
}

constexpr int kBandRows = 16;  // image rows per weight-gradient task: its dy rows stay in cache for every c block

inline int64_t weight_grad_bands(const Dims& d) { return (int64_t(d.n) * d.h + kBandRows - 1) / kBandRows; }
// Per-band partial sums of the blocked weight gradient, [band][kb*16 + lane][c][tap].
inline int64_t weight_grad_partial_elems(const Dims& d, int k) {
  return weight_grad_bands(d) * lane_blocks(k) * kLanes * d.c * 9;
}

// part[kb*16 .. +16, c0 .. c0+CB, taps] = sum over the rows [r0, r1) of all images (row r is image r / h,
// row r % h) of dyt * shifted xp: 9*CB accumulators of 16 channels each, one dyt load per 9*CB multiply-adds.
template <typename T, int CB>
__attribute__((always_inline)) inline void weight_grad_blocked_tile(const T* xp, const T* dyt, T* part, const Dims& d,
                                                                    int k, const Padded& p, int kb, int c0, int64_t r0,
                                                                    int64_t r1) {
  T acc[CB][9][kLanes];
  for (int a = 0; a < CB; ++a)
    for (int t = 0; t < 9; ++t)
      for (int l = 0; l < kLanes; ++l) acc[a][t][l] = T(0);
  const int kbs = lane_blocks(k);
  for (int64_t r = r0; r < r1; ++r) {
    const int n = int(r / d.h), i = int(r % d.h);
    const T* g = dyt + ((int64_t(n) * kbs + kb) * d.plane() + int64_t(i) * d.w) * kLanes;
    const T* x0 = xp + (int64_t(n) * d.c + c0) * p.plane + int64_t(i) * p.pitch;
    for (int j = 0; j < d.w; ++j) {
#pragma GCC unroll 3
      for (int a = 0; a < CB; ++a)
#pragma GCC unroll 9
        for (int t = 0; t < 9; ++t) {
          const T xv = x0[a * p.plane + (t / 3) * p.pitch + j + t % 3];
#pragma omp simd
          for (int l = 0; l < kLanes; ++l) acc[a][t][l] += xv * g[int64_t(j) * kLanes + l];
        }
    }
  }
  for (int a = 0; a < CB; ++a)
    for (int t = 0; t < 9; ++t)
      for (int l = 0; l < kLanes; ++l) part[(int64_t(kb * kLanes + l) * d.c + c0 + a) * 9 + t] = acc[a][t][l];
}

// dw += the weight gradient. part: weight_grad_partial_elems(d, k) of scratch.
template <typename T>
MRIAE_CPU_CLONES_FMA void weight_grad_blocked(const T* xp, const T* dyt, T* dw, T* part, const Dims& d, int k,
                                              const Padded& p) {
  constexpr int kInBlock = 3;  // 27 accumulators
  const int kbs = lane_blocks(k), cbs = (d.c + kInBlock - 1) / kInBlock;
  const int64_t bands = weight_grad_bands(d), rows = int64_t(d.n) * d.h, band_elems = int64_t(kbs) * kLanes * d.c * 9;
  // A task is a band of rows for one block of output channels, taking every block of input channels in turn.
  // Each writes only its band's partial sums, and the bands are added in order below: the result does not
  // depend on how tasks meet threads.
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int kb = 0; kb < kbs; ++kb)
    for (int64_t band = 0; band < bands; ++band) {
      const int64_t r0 = band * kBandRows, r1 = std::min(rows, r0 + kBandRows);
      T* part_band = part + band * band_elems;
      for (int cb = 0; cb < cbs; ++cb) {
        const int c0 = cb * kInBlock, cn = std::min(kInBlock, d.c - c0);
        if (cn == 3)
          weight_grad_blocked_tile<T, 3>(xp, dyt, part_band, d, k, p, kb, c0, r0, r1);
        else if (cn == 2)
          weight_grad_blocked_tile<T, 2>(xp, dyt, part_band, d, k, p, kb, c0, r0, r1);
        else
          weight_grad_blocked_tile<T, 1>(xp, dyt, part_band, d, k, p, kb, c0, r0, r1);
      }
    }
  const int64_t wn = int64_t(k) * d.c * 9;  // dw's layout is the partials' minus the padding lanes
#pragma omp parallel for schedule(static)
  for (int64_t e = 0; e < wn; ++e) {
    T s = T(0);
    for (int64_t band = 0; band < bands; ++band) s += part[band * band_elems + e];
    dw[e] += s;
  }
}

}  // namespace mriae::cpu::conv_detail
