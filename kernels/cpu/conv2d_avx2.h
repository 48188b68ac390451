#pragma once
// The channel-blocked float32 convolution's register tiles written out in AVX2+FMA intrinsics, for
// processors with 16 vector registers of 8 floats. GCC, given the same tiles as plain loops, keeps the
// broadcasts of several taps live at once and spills accumulators to the stack (bench/NOTES.md): written
// as below, a tile's accumulators, its weight vectors and one broadcast fit the 16 registers.
//
// Every sum is taken in the same order as the generic tiles of conv2d_blocked.h, one fused multiply-add per
// term, so these give the same bits as the generic tiles compiled with FMA (the AVX-512 clone's).
// Each function processes one band (forward) or one task (weight gradient) and is called, not inlined, from
// the cloned drivers: its target is fixed, theirs is not.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MRIAE_CPU_HAVE_AVX2_TILES 1
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d_layout.h"

#define MRIAE_TARGET_AVX2 __attribute__((target("arch=x86-64-v3")))

namespace mriae::cpu::conv_detail {

// Whether the processor runs the functions below (AVX2 and FMA: Haswell, Zen 1 and every later x86).
inline bool have_avx2_fma() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

// The forward tile: 32 output channels (four registers) by 3 pixels is 12 accumulators, 3 broadcasts and one
// weight vector at a time: 16 registers. Measured against 16 x 6 and 24 x 4 in bench/NOTES.md.
constexpr int kAvx2Lanes = kOutLanes, kAvx2Pixels = 3;

// Input channels per pass over a row's tiles. A tile reads 9 x 32 weights per input channel: those of all 128
// input channels (147 KB) would not stay in a 32 KB L1 from one tile to the next. A chunk's weights (9 KB),
// its input rows and the row's partial sums do, while every tile of the row takes its share of the sum.
constexpr int kAvx2ChannelChunk = 8;

// Floats of the row's partial sums that forward_band_avx2 keeps after the band.
inline int64_t forward_avx2_partial_elems(const NchwDims& d) { return int64_t(round_up(d.w, kAvx2Pixels)) * kAvx2Lanes; }

// All forward tiles of one padded band of rows (see forward_blocked_band_tiles). The sums go to `partial`
// between chunks of input channels and come back unchanged (a float stored is the float loaded), so they
// round exactly as one pass over every channel would. The band's output row r of channel o is at
// yband + o * y_plane + r * d.w. epi (or null) runs on each finished row of a block.
MRIAE_TARGET_AVX2 inline void forward_band_avx2(const float* band, int64_t band_plane, int pitch, const float* wb,
                                                const float* b, float* yband, int64_t y_plane, const NchwDims& d,
                                                int k, int rows, bool accumulate, float* partial,
                                                const ReluBatchnormEval<float>* epi) {
  constexpr int L = kAvx2Lanes, P = kAvx2Pixels, V = L / 8;
  const int tbs = lane_blocks(k, L), jbs = round_up(d.w, P) / P;
  for (int tb = 0; tb < tbs; ++tb) {
    const int o0 = tb * L, lanes = std::min(L, k - o0);
    const float* wt = wb + int64_t(o0 / kOutLanes) * d.c * 9 * kOutLanes + o0 % kOutLanes;
    for (int r = 0; r < rows; ++r) {
      for (int c0 = 0; c0 < d.c; c0 += kAvx2ChannelChunk) {
        const int c1 = std::min(d.c, c0 + kAvx2ChannelChunk);
        const bool first = c0 == 0, last = c1 == d.c;
        for (int jb = 0; jb < jbs; ++jb) {
          const int j0 = jb * P;
          const float* x0 = band + int64_t(r) * pitch + j0;
          float* part = partial + int64_t(jb) * P * L;
          __m256 acc[P][V];
          for (int q = 0; q < P; ++q)
            for (int v = 0; v < V; ++v) acc[q][v] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(part + q * L + 8 * v);
          for (int c = c0; c < c1; ++c) {
            const float* wc = wt + int64_t(c) * 9 * kOutLanes;
            const float* xc = x0 + c * band_plane;
            for (int ky = 0; ky < 3; ++ky) {
              const float* xr = xc + ky * pitch;
              // Not unrolled: unrolled, GCC shares the broadcast of each input value between the taps that
              // read it, and the extra live broadcasts spill accumulators.
#pragma GCC unroll 1
              for (int kx = 0; kx < 3; ++kx) {
                __m256 xv[P];
#pragma GCC unroll 6
                for (int q = 0; q < P; ++q) xv[q] = _mm256_broadcast_ss(xr + q + kx);
#pragma GCC unroll 4
                for (int v = 0; v < V; ++v) {
                  const __m256 wv = _mm256_loadu_ps(wc + (ky * 3 + kx) * kOutLanes + 8 * v);
#pragma GCC unroll 6
                  for (int q = 0; q < P; ++q) acc[q][v] = _mm256_fmadd_ps(xv[q], wv, acc[q][v]);
                }
              }
            }
          }
          for (int q = 0; q < P; ++q)
            for (int v = 0; v < V; ++v) _mm256_storeu_ps(part + q * L + 8 * v, acc[q][v]);
          if (!last) continue;
          const int jn = std::min(P, d.w - j0);
          float* yt = yband + o0 * y_plane + int64_t(r) * d.w + j0;
          for (int l = 0; l < lanes; ++l) {
            float* yl = yt + l * y_plane;
            const float bias = b ? b[o0 + l] : 0.0f;
            if (accumulate)
              for (int q = 0; q < jn; ++q) yl[q] += part[q * L + l] + bias;
            else
              for (int q = 0; q < jn; ++q) yl[q] = part[q * L + l] + bias;
          }
        }
      }
      if (epi) relu_batchnorm_eval_inplace(yband + o0 * y_plane + int64_t(r) * d.w, y_plane, d.w, o0, lanes, *epi);
    }
  }
}

// part[kb*16 .. +16, c0 .. c0+CB, ky*3 .. +3] = the sums of weight_grad_blocked_tile for one row of taps:
// 2*CB*3 accumulators of 8 channels, one load of dy's 16 channels per 6*CB multiply-adds.
template <int CB>
MRIAE_TARGET_AVX2 __attribute__((always_inline)) inline void weight_grad_tile_avx2(const float* xb, int64_t x_plane,
                                                                                   int pitch, const float* g, int rows,
                                                                                   int w, float* part, int c_in, int kb,
                                                                                   int c0, int ky) {
  __m256 acc[CB][3][2];
#pragma GCC unroll 2
  for (int a = 0; a < CB; ++a)
#pragma GCC unroll 3
    for (int t = 0; t < 3; ++t) acc[a][t][0] = acc[a][t][1] = _mm256_setzero_ps();
  for (int r = 0; r < rows; ++r) {
    const float* gr = g + int64_t(r) * w * kLanes;
    const float* x0 = xb + c0 * x_plane + int64_t(r + ky) * pitch;
    for (int j = 0; j < w; ++j) {
      const __m256 g0 = _mm256_loadu_ps(gr + int64_t(j) * kLanes), g1 = _mm256_loadu_ps(gr + int64_t(j) * kLanes + 8);
#pragma GCC unroll 2
      for (int a = 0; a < CB; ++a)
#pragma GCC unroll 3
        for (int t = 0; t < 3; ++t) {
          const __m256 xv = _mm256_broadcast_ss(x0 + a * x_plane + j + t);
          acc[a][t][0] = _mm256_fmadd_ps(xv, g0, acc[a][t][0]);
          acc[a][t][1] = _mm256_fmadd_ps(xv, g1, acc[a][t][1]);
        }
    }
  }
  // Every index into acc a constant (the loops unrolled): with one that is not, GCC keeps acc in memory and
  // stores all twelve registers on every pass of the loop above.
  alignas(32) float out[CB][3][kLanes];
#pragma GCC unroll 2
  for (int a = 0; a < CB; ++a)
#pragma GCC unroll 3
    for (int t = 0; t < 3; ++t) {
      _mm256_store_ps(out[a][t], acc[a][t][0]);
      _mm256_store_ps(out[a][t] + 8, acc[a][t][1]);
    }
  for (int a = 0; a < CB; ++a)
    for (int t = 0; t < 3; ++t)
      for (int l = 0; l < kLanes; ++l) part[(int64_t(kb * kLanes + l) * c_in + c0 + a) * 9 + ky * 3 + t] = out[a][t][l];
}

// One weight-gradient task's partial sums (see weight_grad_blocked): every block of 16 output channels, pair
// of input channels and row of taps, over the task's padded band of x and blocked band of dy.
MRIAE_TARGET_AVX2 inline void weight_grad_task_avx2(const float* band, int64_t band_plane, int pitch,
                                                    const float* gband, int rows, const NchwDims& d, int k,
                                                    float* part_task) {
  const int kbs = lane_blocks(k);
  for (int kb = 0; kb < kbs; ++kb) {
    const float* g = gband + int64_t(kb) * rows * d.w * kLanes;
    for (int c0 = 0; c0 < d.c; c0 += 2)
      for (int ky = 0; ky < 3; ++ky) {
        if (c0 + 1 < d.c)
          weight_grad_tile_avx2<2>(band, band_plane, pitch, g, rows, d.w, part_task, d.c, kb, c0, ky);
        else
          weight_grad_tile_avx2<1>(band, band_plane, pitch, g, rows, d.w, part_task, d.c, kb, c0, ky);
      }
  }
}

// The forward convolution to one output channel (the model's last layer, 32 -> 1) from a padded band of rows
// (conv2d_one_channel.h): a tile is R output rows by 16 columns, 2R accumulators, and each input row loaded
// feeds every output row of the tile whose kernel covers it. Each output sums over channels, then tap rows,
// then taps, in the row kernel's order: the same bits.
template <int R>
MRIAE_TARGET_AVX2 __attribute__((always_inline)) inline void forward_one_channel_tile_avx2(
    const float* xn, const float* w, float bias, float* yn, const NchwDims& d, const Padded& p, int i0, int j0,
    bool accumulate) {
  __m256 acc[R][2];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int c = 0; c < d.c; ++c) {
    const float* xc = xn + c * p.plane + int64_t(i0) * p.pitch + j0;
    const float* wc = w + c * 9;
#pragma GCC unroll 6
    for (int kyr = 0; kyr < R + 2; ++kyr)
#pragma GCC unroll 3
      for (int kx = 0; kx < 3; ++kx) {
        const __m256 x0 = _mm256_loadu_ps(xc + int64_t(kyr) * p.pitch + kx);
        const __m256 x1 = _mm256_loadu_ps(xc + int64_t(kyr) * p.pitch + kx + 8);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const int ky = kyr - r;
          if (ky < 0 || ky > 2) continue;
          const __m256 wv = _mm256_broadcast_ss(wc + ky * 3 + kx);
          acc[r][0] = _mm256_fmadd_ps(wv, x0, acc[r][0]);
          acc[r][1] = _mm256_fmadd_ps(wv, x1, acc[r][1]);
        }
      }
  }
  alignas(32) float out[R][16];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    _mm256_store_ps(out[r], acc[r][0]);
    _mm256_store_ps(out[r] + 8, acc[r][1]);
  }
  const int jn = std::min(16, d.w - j0);
  for (int r = 0; r < R; ++r) {
    float* yr = yn + int64_t(i0 + r) * d.w + j0;
    if (accumulate)
      for (int q = 0; q < jn; ++q) yr[q] += out[r][q] + bias;
    else
      for (int q = 0; q < jn; ++q) yr[q] = out[r][q] + bias;
  }
}

}  // namespace mriae::cpu::conv_detail
#endif
