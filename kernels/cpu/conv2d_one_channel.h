#pragma once
// The forward convolution to a single output channel (the model's last layer, 32 -> 1), band by band: each
// task pads a band of rows of one image, every input channel, into its thread's buffer, as the blocked
// kernels do, and computes the band's output rows from it there. Padding the whole input first (4 MB an image
// of 32 channels at 176x176) sent it out to memory and back, and the row kernel's tile of one row by 32
// columns kept only two or four accumulators, each one multiply-add latency behind the last: 15 GFLOP/s on
// two Zen 4 cores at batch 8 (bench/NOTES.md).
//
// The register tiles are R output rows by one or two vectors of columns; each input row loaded feeds every
// output row of the tile whose kernel covers it. Every output still sums over channels, then tap rows, then
// taps, one fused multiply-add per term, in the row kernel's order: every tile gives the same bits.
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/clones.h"
#include "kernels/cpu/conv2d_avx2.h"
#include "kernels/cpu/conv2d_blocked.h"
#include "kernels/cpu/conv2d_layout.h"
#include "kernels/cpu/conv2d_rows.h"

namespace mriae::cpu::conv_detail {

#ifdef MRIAE_CPU_HAVE_AVX2_TILES
#define MRIAE_TARGET_AVX512 __attribute__((target("avx512f")))

inline bool have_avx512f() { return __builtin_cpu_supports("avx512f"); }

// R rows by 32 columns: 2R accumulators of 16 floats (of 32 registers), so that 2R multiply-adds are in
// flight against the two FMA pipes' latency.
template <int R>
MRIAE_TARGET_AVX512 __attribute__((always_inline)) inline void forward_one_channel_tile_avx512(
    const float* xn, const float* w, float bias, float* yn, const NchwDims& d, const Padded& p, int i0, int j0,
    bool accumulate) {
  __m512 acc[R][2];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int c = 0; c < d.c; ++c) {
    const float* xc = xn + c * p.plane + int64_t(i0) * p.pitch + j0;
    const float* wc = w + c * 9;
#pragma GCC unroll 6
    for (int kyr = 0; kyr < R + 2; ++kyr)
#pragma GCC unroll 3
      for (int kx = 0; kx < 3; ++kx) {
        const __m512 x0 = _mm512_loadu_ps(xc + int64_t(kyr) * p.pitch + kx);
        const __m512 x1 = _mm512_loadu_ps(xc + int64_t(kyr) * p.pitch + kx + 16);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const int ky = kyr - r;
          if (ky < 0 || ky > 2) continue;
          const __m512 wv = _mm512_set1_ps(wc[ky * 3 + kx]);
          acc[r][0] = _mm512_fmadd_ps(wv, x0, acc[r][0]);
          acc[r][1] = _mm512_fmadd_ps(wv, x1, acc[r][1]);
        }
      }
  }
  alignas(64) float out[R][32];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    _mm512_store_ps(out[r], acc[r][0]);
    _mm512_store_ps(out[r] + 16, acc[r][1]);
  }
  const int jn = std::min(32, d.w - j0);
  for (int r = 0; r < R; ++r) {
    float* yr = yn + int64_t(i0 + r) * d.w + j0;
    if (accumulate)
      for (int q = 0; q < jn; ++q) yr[q] += out[r][q] + bias;
    else
      for (int q = 0; q < jn; ++q) yr[q] = out[r][q] + bias;
  }
}

// The rows of one band (see forward_one_channel_banded), in tiles of 4 rows, then single rows.
MRIAE_TARGET_AVX512 inline void forward_one_channel_band_avx512(const float* band, const float* w, float bias,
                                                                float* yn, const NchwDims& d, const Padded& bp,
                                                                int rows, bool accumulate) {
  constexpr int R = 4;
  for (int jb = 0; jb < (d.w + 31) / 32; ++jb) {
    int r = 0;
    for (; r + R <= rows; r += R) forward_one_channel_tile_avx512<R>(band, w, bias, yn, d, bp, r, jb * 32, accumulate);
    for (; r < rows; ++r) forward_one_channel_tile_avx512<1>(band, w, bias, yn, d, bp, r, jb * 32, accumulate);
  }
}

MRIAE_TARGET_AVX2 inline void forward_one_channel_band_avx2(const float* band, const float* w, float bias, float* yn,
                                                            const NchwDims& d, const Padded& bp, int rows,
                                                            bool accumulate) {
  constexpr int R = 4;
  for (int jb = 0; jb < (d.w + 15) / 16; ++jb) {
    int r = 0;
    for (; r + R <= rows; r += R) forward_one_channel_tile_avx2<R>(band, w, bias, yn, d, bp, r, jb * 16, accumulate);
    for (; r < rows; ++r) forward_one_channel_tile_avx2<1>(band, w, bias, yn, d, bp, r, jb * 16, accumulate);
  }
}
#endif

// y = (or +=) conv(x) + b to one output channel, from the unpadded x; w is [1, C, 3, 3] (b may be null), and
// `bands` is forward_bands_elems(d). epi (or null, and only without accumulate): the inference batchnorm of
// relu(y), applied to each band's rows as soon as they are complete. upsampled: x is the half-size tensor
// whose upsample2 is the input (pad_band).
template <typename T>
MRIAE_CPU_CLONES_FMA void forward_one_channel_banded(const T* x, const T* w, const T* b, T* y, const NchwDims& d,
                                                     bool accumulate, T* bands, const ReluBatchnormEval<T>* epi,
                                                     bool upsampled) {
  const Padded p(d);
  Padded bp = p;  // the band buffer, as a padded plane of kForwardBandRows + 2 rows
  bp.plane = int64_t(kForwardBandRows + 2) * p.pitch;
  const int band_count = (d.h + kForwardBandRows - 1) / kForwardBandRows;
  const int64_t band_elems = forward_band_elems(d);
  [[maybe_unused]] const bool wide = wide_tiles();
  enum class Tiles { Generic, Avx2, Avx512 } tiles = Tiles::Generic;  // chosen once a call, not once a band
#ifdef MRIAE_CPU_HAVE_AVX2_TILES
  if constexpr (std::is_same_v<T, float>) {
    if (wide && have_avx512f())
      tiles = Tiles::Avx512;
    else if (avx2_tiles<T>(wide))
      tiles = Tiles::Avx2;
  }
#endif
#pragma omp parallel
  {
    T* band = bands + omp_get_thread_num() * band_elems;
#pragma omp for collapse(2) schedule(static)
    for (int n = 0; n < d.n; ++n)
      for (int bi = 0; bi < band_count; ++bi) {
        const int i0 = bi * kForwardBandRows, rows = std::min(kForwardBandRows, d.h - i0);
        pad_band(x, band, d, p, n, i0, rows, bp.plane, upsampled);
        T* yn = y + int64_t(n) * d.plane() + int64_t(i0) * d.w;  // the band's first output row
        bool done = false;
#ifdef MRIAE_CPU_HAVE_AVX2_TILES
        if constexpr (std::is_same_v<T, float>) {
          const float bias = b ? b[0] : 0.0f;
          if (tiles == Tiles::Avx512) {
            forward_one_channel_band_avx512(band, w, bias, yn, d, bp, rows, accumulate);
            done = true;
          } else if (tiles == Tiles::Avx2) {
            forward_one_channel_band_avx2(band, w, bias, yn, d, bp, rows, accumulate);
            done = true;
          }
        }
#endif
        if (!done)
          for (int r = 0; r < rows; ++r)
            for (int j0 = 0; j0 < d.w; j0 += kRowBlock)
              forward_block<T, 1>(band, w, b, yn, d.c, bp, 0, r, j0, std::min(kRowBlock, d.w - j0), d.plane(), d.w,
                                  accumulate);
        if (epi) relu_batchnorm_eval_inplace(yn, d.plane(), int64_t(rows) * d.w, 0, 1, *epi);
      }
  }
}

}  // namespace mriae::cpu::conv_detail
