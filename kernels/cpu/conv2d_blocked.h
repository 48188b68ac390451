#pragma once
// Direct 3x3 convolution kernels vectorised over 16 output channels, the layout oneDNN uses: each input
// value is broadcast once and multiplied into a register of 16 channels, so the loop is bound by
// multiply-adds rather than by loads. For layers with at least 16 output channels.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/clones.h"
#include "kernels/cpu/conv2d_avx2.h"
#include "kernels/cpu/conv2d_layout.h"
#include "kernels/cpu/pooling.h"

namespace mriae::cpu::conv_detail {

// One output tile: L output channels by P pixels of one row, y = (or +=, with accumulate) conv + bias, its
// L*P sums kept in vector registers while each input value is broadcast once into L lanes. x0 points at
// channel 0 of the tile's first padded input row (the row above the output row) at the tile's first column;
// channels are x_plane apart and rows pitch apart. wt points at the tile's first lane of block_weights' layout
// (its lane offset within a block of kOutLanes), b (or null) at the tile's first channel's bias, yr at its
// first output; output channels are y_plane apart. lanes and jn (<= L, P) are how many of them are real.
// Each sum runs over channels, then tap rows, then taps in the same order whatever L and P are, so every
// tile shape gives the same bits.
// always_inline: the block must be compiled inside each target clone of its caller to get its vector width.
template <typename T, int L, int P>
__attribute__((always_inline)) inline void forward_blocked_tile(const T* x0, int64_t x_plane, int pitch, const T* wt,
                                                                const T* b, T* yr, int64_t y_plane, int c_in,
                                                                int lanes, int jn, bool accumulate) {
  T acc[P][L];
  for (int q = 0; q < P; ++q)
    for (int l = 0; l < L; ++l) acc[q][l] = T(0);
  for (int c = 0; c < c_in; ++c) {
    const T* wc = wt + int64_t(c) * 9 * kOutLanes;
    const T* xc = x0 + c * x_plane;
    // Rows of taps, each row's three unrolled: measured 7-10% faster than one loop over the nine taps (whose
    // row and column come from t / 3 and t % 3), and also faster than unrolling all nine.
    for (int ky = 0; ky < 3; ++ky) {
      const T* xr = xc + ky * pitch;
#pragma GCC unroll 3
      for (int kx = 0; kx < 3; ++kx) {
        const T* wv = wc + (ky * 3 + kx) * kOutLanes;
#pragma GCC unroll 11
        for (int q = 0; q < P; ++q) {
          const T xv = xr[q + kx];
#pragma omp simd
          for (int l = 0; l < L; ++l) acc[q][l] += xv * wv[l];
        }
      }
    }
  }
  for (int l = 0; l < lanes; ++l) {
    T* yl = yr + l * y_plane;
    const T bias = b ? b[l] : T(0);
    if (accumulate)
      for (int q = 0; q < jn; ++q) yl[q] += acc[q][l] + bias;
    else
      for (int q = 0; q < jn; ++q) yl[q] = acc[q][l] + bias;
  }
}

// Every tile of a band of rows of one image: blocks of L output channels, then rows, then blocks of P pixels,
// so a block's weights (c_in * 9 * L values) stay in cache across the band. The band's output row r of channel
// o is at yband + o * y_plane + r * d.w. epi (or null): run on each row of a block's channels once it is
// complete, while it is in L1.
template <typename T, int L, int P>
__attribute__((always_inline)) inline void forward_blocked_band_tiles(const T* band, int64_t band_plane, int pitch,
                                                                      const T* wb, const T* b, T* yband,
                                                                      int64_t y_plane, const NchwDims& d, int k,
                                                                      int rows, bool accumulate,
                                                                      const ReluBatchnormEval<T>* epi) {
  static_assert(kOutLanes % L == 0, "a tile's lanes lie inside one block of the weights");
  const int tbs = lane_blocks(k, L), jbs = round_up(d.w, P) / P;
  for (int tb = 0; tb < tbs; ++tb) {
    const int o0 = tb * L, lanes = std::min(L, k - o0);
    const T* wt = wb + int64_t(o0 / kOutLanes) * d.c * 9 * kOutLanes + o0 % kOutLanes;
    for (int r = 0; r < rows; ++r) {
      T* yr = yband + o0 * y_plane + int64_t(r) * d.w;
      for (int jb = 0; jb < jbs; ++jb) {
        const int j0 = jb * P;
        forward_blocked_tile<T, L, P>(band + int64_t(r) * pitch + j0, band_plane, pitch, wt, b ? b + o0 : nullptr,
                                      yr + j0, y_plane, d.c, lanes, std::min(P, d.w - j0), accumulate);
      }
      if (epi) relu_batchnorm_eval_inplace(yr, y_plane, d.w, o0, lanes, *epi);
    }
  }
}

// Rows i0-1 .. i0+rows of image n, every channel, padded as pad() lays out a whole plane (zero rows above and
// below the image, one zero column on the left, zeros past the last column), channels band_plane apart.
// upsampled: x holds the d.h/2 x d.w/2 planes whose nearest-neighbour 2x upsampling (upsample2) is the input,
// which is made here row by row instead of being written out whole and read back.
template <typename T>
__attribute__((always_inline)) inline void pad_band(const T* x, T* band, const NchwDims& d, const Padded& p, int n, int i0,
                                                    int rows, int64_t band_plane, bool upsampled = false) {
  const int sw = upsampled ? d.w / 2 : d.w;
  const int64_t src_plane = upsampled ? int64_t(d.h / 2) * sw : d.plane();
  for (int c = 0; c < d.c; ++c) {
    T* dst = band + c * band_plane;
    const T* src = x + (int64_t(n) * d.c + c) * src_plane;
    for (int r = 0; r < rows + 2; ++r) {
      T* row = dst + int64_t(r) * p.pitch;
      const int i = i0 - 1 + r;
      if (i < 0 || i >= d.h) {
        std::fill(row, row + p.pitch, T(0));
        continue;
      }
      row[0] = T(0);
      if (upsampled) {
        const T* s = src + int64_t(i / 2) * sw;
        for (int j = 0; j < sw; ++j) row[1 + 2 * j] = row[2 + 2 * j] = s[j];
      } else {
        std::copy(src + int64_t(i) * d.w, src + int64_t(i + 1) * d.w, row + 1);
      }
      std::fill(row + 1 + d.w, row + p.pitch, T(0));
    }
  }
}

// Whether float tiles go to conv2d_avx2.h's intrinsics: where the narrow tiles are taken and the processor
// has AVX2 and FMA. Double always takes the generic tiles.
template <typename T> inline bool avx2_tiles(bool wide) {
#ifdef MRIAE_CPU_HAVE_AVX2_TILES
  if constexpr (std::is_same_v<T, float>) return !wide && have_avx2_fma();
#endif
  (void)wide;
  return false;
}

// y = (or +=) conv(x) + b from the unpadded input: each task pads a band of rows of one image, every channel,
// into a buffer of its thread's that stays in cache, and computes every output channel of those rows from it.
// A padded copy of the whole input would go out to memory and be read back.
constexpr int kForwardBandRows = 8;

// Elements of one thread's buffer of a band's output, which forward_blocked_banded pools from.
inline int64_t forward_pool_band_elems(const NchwDims& d, int k) { return int64_t(k) * kForwardBandRows * d.w; }

// Elements of one thread's band buffer.
inline int64_t forward_band_elems(const NchwDims& d) {
  int64_t elems = int64_t(d.c) * (kForwardBandRows + 2) * Padded(d).pitch;
#ifdef MRIAE_CPU_HAVE_AVX2_TILES
  elems += forward_avx2_partial_elems(d);  // then the AVX2 tiles' partial sums
#endif
  return elems;
}

// epi (or null, and only without accumulate): the inference batchnorm of relu(y), fused (ReluBatchnormEval).
// upsampled: x is the half-size tensor whose upsample2 is the input (pad_band). pooled (or null; only
// without accumulate): y is not written; each band's output goes to a buffer of the thread's (in
// pool_bands, forward_pool_band_elems(d, k) each) and its 2x2 max pooling (maxpool2_forward's values) to
// pooled, [N, K, H/2, W/2]. Bands have an even number of rows, so no window straddles two.
template <typename T>
MRIAE_CPU_CLONES_FMA void forward_blocked_banded(const T* x, const T* wb, const T* b, T* y, const NchwDims& d, int k,
                                                 bool accumulate, T* bands, const ReluBatchnormEval<T>* epi,
                                                 bool upsampled, T* pooled = nullptr, T* pool_bands = nullptr) {
  static_assert(kForwardBandRows % 2 == 0, "pooling windows lie inside one band");
  const Padded p(d);
  const bool wide = wide_tiles();
  [[maybe_unused]] const bool avx2 = avx2_tiles<T>(wide);  // read once a call, not once a band
  const int band_count = (d.h + kForwardBandRows - 1) / kForwardBandRows;
  const int64_t band_plane = int64_t(kForwardBandRows + 2) * p.pitch, band_elems = forward_band_elems(d);
  const int oh = d.h / 2, ow = d.w / 2;
  const int64_t y_plane = pooled ? int64_t(kForwardBandRows) * d.w : d.plane();
#pragma omp parallel
  {
    T* band = bands + omp_get_thread_num() * band_elems;
    T* out_band = pooled ? pool_bands + omp_get_thread_num() * forward_pool_band_elems(d, k) : nullptr;
#pragma omp for collapse(2) schedule(static)
    for (int n = 0; n < d.n; ++n)
      for (int bi = 0; bi < band_count; ++bi) {
        const int i0 = bi * kForwardBandRows, rows = std::min(kForwardBandRows, d.h - i0);
        pad_band(x, band, d, p, n, i0, rows, band_plane, upsampled);
        T* yband = pooled ? out_band : y + (int64_t(n) * k * d.h + i0) * d.w;
        bool done = false;
#ifdef MRIAE_CPU_HAVE_AVX2_TILES
        if constexpr (std::is_same_v<T, float>)
          if (avx2) {
            forward_band_avx2(band, band_plane, p.pitch, wb, b, yband, y_plane, d, k, rows, accumulate,
                              band + d.c * band_plane, epi);
            done = true;
          }
#endif
        if (!done && wide)
          forward_blocked_band_tiles<T, kOutLanes, kPixelBlock>(band, band_plane, p.pitch, wb, b, yband, y_plane, d, k,
                                                                rows, accumulate, epi);
        else if (!done)
          forward_blocked_band_tiles<T, kNarrowLanes, kNarrowPixels>(band, band_plane, p.pitch, wb, b, yband, y_plane,
                                                                     d, k, rows, accumulate, epi);
        if (!pooled) continue;
        for (int o = 0; o < k; ++o)
          for (int r = 0; r + 1 < rows; r += 2) {
            const T* r0 = out_band + o * y_plane + int64_t(r) * d.w;
            maxpool2_row_values(r0, r0 + d.w, pooled + ((int64_t(n) * k + o) * oh + (i0 + r) / 2) * ow, ow);
          }
      }
  }
}

constexpr int kBandRows = 16;  // image rows per weight-gradient task: its x and dy rows stay in cache

// Weight-gradient tasks: bands of up to kBandRows rows, none crossing an image.
inline int64_t weight_grad_bands(const NchwDims& d) { return int64_t(d.n) * ((d.h + kBandRows - 1) / kBandRows); }
// Per-band partial sums of the blocked weight gradient, [band][kb*16 + lane][c][tap].
inline int64_t weight_grad_partial_elems(const NchwDims& d, int k) {
  return weight_grad_bands(d) * lane_blocks(k) * kLanes * d.c * 9;
}
// Elements of one thread's buffers for the weight gradient: a padded band of x, then the band's dy blocked by
// 16 channels.
inline int64_t weight_grad_band_elems(const NchwDims& d, int k) {
  return int64_t(d.c) * (kBandRows + 2) * Padded(d).pitch + int64_t(lane_blocks(k)) * kBandRows * d.w * kLanes;
}

// gb[kb][r][j][lane] = dy[n, kb*16 + lane, i0 + r, j] for the band's rows, zero for lanes past the last channel:
// dy blocked by 16 channels, one band of it.
template <typename T>
__attribute__((always_inline)) inline void block_band(const T* dy, T* gb, const NchwDims& dyd, int n, int i0, int rows) {
  const int kbs = lane_blocks(dyd.c);
  for (int kb = 0; kb < kbs; ++kb) {
    const int lanes = std::min(kLanes, dyd.c - kb * kLanes);
    for (int r = 0; r < rows; ++r) {
      T* dst = gb + (int64_t(kb) * rows + r) * dyd.w * kLanes;
      for (int l = 0; l < kLanes; ++l) {
        if (l >= lanes) {
          for (int j = 0; j < dyd.w; ++j) dst[int64_t(j) * kLanes + l] = T(0);
          continue;
        }
        const T* src = dy + ((int64_t(n) * dyd.c + kb * kLanes + l) * dyd.h + i0 + r) * dyd.w;
        for (int j = 0; j < dyd.w; ++j) dst[int64_t(j) * kLanes + l] = src[j];
      }
    }
  }
}

// part[kb*16 .. +16, c0 .. c0+CB, taps] = sum over `rows` rows of dy (g, blocked: 16 channels a pixel) times
// the shifted padded x (xb: channel 0 of the padded row above the first, channels x_plane apart): 9*CB
// accumulators of 16 channels each, one dy load per 9*CB multiply-adds.
template <typename T, int CB>
__attribute__((always_inline)) inline void weight_grad_blocked_tile(const T* xb, int64_t x_plane, int pitch,
                                                                    const T* g, int rows, int w, T* part, int c_in,
                                                                    int kb, int c0) {
  T acc[CB][9][kLanes];
  for (int a = 0; a < CB; ++a)
    for (int t = 0; t < 9; ++t)
      for (int l = 0; l < kLanes; ++l) acc[a][t][l] = T(0);
  for (int r = 0; r < rows; ++r) {
    const T* gr = g + int64_t(r) * w * kLanes;
    const T* x0 = xb + c0 * x_plane + int64_t(r) * pitch;
    for (int j = 0; j < w; ++j) {
#pragma GCC unroll 3
      for (int a = 0; a < CB; ++a)
#pragma GCC unroll 9
        for (int t = 0; t < 9; ++t) {
          const T xv = x0[a * x_plane + (t / 3) * pitch + j + t % 3];
#pragma omp simd
          for (int l = 0; l < kLanes; ++l) acc[a][t][l] += xv * gr[int64_t(j) * kLanes + l];
        }
    }
  }
  for (int a = 0; a < CB; ++a)
    for (int t = 0; t < 9; ++t)
      for (int l = 0; l < kLanes; ++l) part[(int64_t(kb * kLanes + l) * c_in + c0 + a) * 9 + t] = acc[a][t][l];
}

// dw += the weight gradient, from the unpadded x and dy. part: weight_grad_partial_elems(d, k); bands:
// omp_get_max_threads() * weight_grad_band_elems(d, k).
template <typename T>
MRIAE_CPU_CLONES_FMA void weight_grad_blocked(const T* x, const T* dy, T* dw, T* part, const NchwDims& d, int k,
                                              T* bands) {
  constexpr int kInBlock = 3;  // 27 accumulators
  const Padded p(d);
  const bool wide = wide_tiles();
  [[maybe_unused]] const bool avx2 = avx2_tiles<T>(wide);  // read once a call, not once a band
  const int kbs = lane_blocks(k), cbs = (d.c + kInBlock - 1) / kInBlock;
  const int per_image = (d.h + kBandRows - 1) / kBandRows;
  const int64_t tasks = weight_grad_bands(d), task_elems = int64_t(kbs) * kLanes * d.c * 9;
  const int64_t band_plane = int64_t(kBandRows + 2) * p.pitch, band_elems = weight_grad_band_elems(d, k);
  const NchwDims dyd{d.n, k, d.h, d.w};
  // A task is a band of rows of one image: it pads that band of x and channel-blocks that band of dy, in
  // cache, once, then takes every block of output and input channels in turn over them. Each task writes only
  // its own partial sums, and they are added in task order below: the result does not depend on how tasks
  // meet threads.
#pragma omp parallel
  {
    T* band = bands + omp_get_thread_num() * band_elems;
    T* gband = band + int64_t(d.c) * band_plane;
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; ++task) {
      const int n = int(task / per_image), i0 = int(task % per_image) * kBandRows;
      const int rows = std::min(kBandRows, d.h - i0);
      pad_band(x, band, d, p, n, i0, rows, band_plane);
      block_band(dy, gband, dyd, n, i0, rows);
      T* part_task = part + task * task_elems;
#ifdef MRIAE_CPU_HAVE_AVX2_TILES
      if constexpr (std::is_same_v<T, float>)
        if (avx2) {
          weight_grad_task_avx2(band, band_plane, p.pitch, gband, rows, d, k, part_task);
          continue;
        }
#endif
      for (int kb = 0; kb < kbs; ++kb) {
        const T* g = gband + int64_t(kb) * rows * d.w * kLanes;
        for (int cb = 0; cb < cbs; ++cb) {
          const int c0 = cb * kInBlock, cn = std::min(kInBlock, d.c - c0);
          if (cn == 3)
            weight_grad_blocked_tile<T, 3>(band, band_plane, p.pitch, g, rows, d.w, part_task, d.c, kb, c0);
          else if (cn == 2)
            weight_grad_blocked_tile<T, 2>(band, band_plane, p.pitch, g, rows, d.w, part_task, d.c, kb, c0);
          else
            weight_grad_blocked_tile<T, 1>(band, band_plane, p.pitch, g, rows, d.w, part_task, d.c, kb, c0);
        }
      }
    }
  }
  // dw's layout is the partials' minus the padding lanes. Each element's partials are added in task order,
  // as one sum from zero then into dw; chunks of elements run side by side, so that the adds are vector adds
  // over contiguous partials (one element at a time, they were scalar adds of values a task's stride apart).
  const int64_t wn = int64_t(k) * d.c * 9;
  constexpr int64_t kChunk = 256;
#pragma omp parallel for schedule(static)
  for (int64_t e0 = 0; e0 < wn; e0 += kChunk) {
    const int64_t len = std::min(kChunk, wn - e0);
    T s[kChunk];
    for (int64_t i = 0; i < len; ++i) s[i] = T(0);
    for (int64_t task = 0; task < tasks; ++task) {
      const T* pt = part + task * task_elems + e0;
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) s[i] += pt[i];
    }
    for (int64_t i = 0; i < len; ++i) dw[e0 + i] += s[i];
  }
}

}  // namespace mriae::cpu::conv_detail
