#pragma once
// Direct 3x3 convolution kernels vectorised over 16 output channels, the layout oneDNN uses: each input
// value is broadcast once and multiplied into a register of 16 channels, so the loop is bound by
// multiply-adds rather than by loads. For layers with at least 16 output channels.
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/clones.h"
#include "kernels/cpu/conv2d_layout.h"

namespace mriae::cpu::conv_detail {

// One output tile: y[kb*32 .. +32][jb*11 .. +11] of one row = (or +=, with accumulate) conv + bias. x0 points at
// channel 0 of the tile's first padded input row (the row above the output row) at the tile's first column;
// channels are x_plane apart and rows pitch apart. yr points at the tile's first output of channel kb*32, and
// output channels are y_plane apart. wb is block_weights' layout.
// always_inline: the block must be compiled inside each target clone of its caller to get its vector width.
template <typename T>
__attribute__((always_inline)) inline void forward_blocked_tile(const T* x0, int64_t x_plane, int pitch, const T* wb,
                                                                const T* b, T* yr, int64_t y_plane, int c_in, int k,
                                                                int kb, int jn, bool accumulate) {
  T acc[kPixelBlock][kOutLanes];
  for (int q = 0; q < kPixelBlock; ++q)
    for (int l = 0; l < kOutLanes; ++l) acc[q][l] = T(0);
  for (int c = 0; c < c_in; ++c) {
    const T* wc = wb + (int64_t(kb) * c_in + c) * 9 * kOutLanes;
    const T* xc = x0 + c * x_plane;
    // Rows of taps, each row's three unrolled: measured 7-10% faster than one loop over the nine taps (whose
    // row and column come from t / 3 and t % 3), and also faster than unrolling all nine.
    for (int ky = 0; ky < 3; ++ky) {
      const T* xr = xc + ky * pitch;
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
  const int lanes = std::min(kOutLanes, k - kb * kOutLanes);
  for (int l = 0; l < lanes; ++l) {
    T* yl = yr + l * y_plane;
    const T bias = b ? b[kb * kOutLanes + l] : T(0);
    if (accumulate)
      for (int q = 0; q < jn; ++q) yl[q] += acc[q][l] + bias;
    else
      for (int q = 0; q < jn; ++q) yl[q] = acc[q][l] + bias;
  }
}

// y = (or +=) conv(x) + b over a padded copy xp of the whole input.
template <typename T>
MRIAE_CPU_CLONES_FMA void forward_blocked(const T* xp, const T* wb, const T* b, T* y, const Dims& d, int k,
                                          const Padded& p, bool accumulate) {
  const int kbs = lane_blocks(k, kOutLanes), jbs = round_up(d.w, kPixelBlock) / kPixelBlock;
#pragma omp parallel for collapse(3) schedule(static)
  for (int n = 0; n < d.n; ++n)
    for (int kb = 0; kb < kbs; ++kb)
      for (int i = 0; i < d.h; ++i)
        for (int jb = 0; jb < jbs; ++jb) {
          const int j0 = jb * kPixelBlock;
          forward_blocked_tile(xp + int64_t(n) * d.c * p.plane + int64_t(i) * p.pitch + j0, p.plane, p.pitch, wb, b,
                               y + ((int64_t(n) * k + kb * kOutLanes) * d.h + i) * d.w + j0, d.plane(), d.c, k, kb,
                               std::min(kPixelBlock, d.w - j0), accumulate);
        }
}

// The same from the unpadded input: each task pads a band of rows of one image, every channel, into a buffer
// of its thread's that stays in cache, and computes every output channel of those rows from it. The padded
// copy then never goes out to memory and back, which a whole padded input does.
constexpr int kForwardBandRows = 8;

// Elements of one thread's band buffer.
inline int64_t forward_band_elems(const Dims& d) {
  return int64_t(d.c) * (kForwardBandRows + 2) * Padded(d).pitch;
}

template <typename T>
MRIAE_CPU_CLONES_FMA void forward_blocked_banded(const T* x, const T* wb, const T* b, T* y, const Dims& d, int k,
                                                 bool accumulate, T* bands) {
  const Padded p(d);
  const int kbs = lane_blocks(k, kOutLanes), jbs = round_up(d.w, kPixelBlock) / kPixelBlock;
  const int band_count = (d.h + kForwardBandRows - 1) / kForwardBandRows;
  const int64_t band_plane = int64_t(kForwardBandRows + 2) * p.pitch, band_elems = forward_band_elems(d);
#pragma omp parallel
  {
    T* band = bands + omp_get_thread_num() * band_elems;
#pragma omp for collapse(2) schedule(static)
    for (int n = 0; n < d.n; ++n)
      for (int bi = 0; bi < band_count; ++bi) {
        const int i0 = bi * kForwardBandRows, rows = std::min(kForwardBandRows, d.h - i0);
        // Padded rows i0-1 .. i0+rows of every channel: zero above and below the image, one zero column on
        // the left and zeros past the last column, as pad() lays out a whole plane.
        for (int c = 0; c < d.c; ++c) {
          T* dst = band + c * band_plane;
          const T* src = x + (int64_t(n) * d.c + c) * d.plane();
          for (int r = 0; r < rows + 2; ++r) {
            T* row = dst + int64_t(r) * p.pitch;
            const int i = i0 - 1 + r;
            if (i < 0 || i >= d.h) {
              std::fill(row, row + p.pitch, T(0));
              continue;
            }
            row[0] = T(0);
            std::copy(src + int64_t(i) * d.w, src + int64_t(i + 1) * d.w, row + 1);
            std::fill(row + 1 + d.w, row + p.pitch, T(0));
          }
        }
        for (int kb = 0; kb < kbs; ++kb)
          for (int r = 0; r < rows; ++r)
            for (int jb = 0; jb < jbs; ++jb) {
              const int j0 = jb * kPixelBlock;
              forward_blocked_tile(band + int64_t(r) * p.pitch + j0, band_plane, p.pitch, wb, b,
                                   y + ((int64_t(n) * k + kb * kOutLanes) * d.h + i0 + r) * d.w + j0, d.plane(), d.c,
                                   k, kb, std::min(kPixelBlock, d.w - j0), accumulate);
            }
      }
  }
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
