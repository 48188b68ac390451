#pragma once
// Zero-padded and re-blocked copies of activations and weights that the direct 3x3 convolution reads.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/common/nchw_dims.h"

namespace mriae::cpu::conv_detail {

constexpr int kLanes = 16;       // channels per vector block: one AVX-512 register of float
constexpr int kOutLanes = 32;    // output channels per forward register block: each input load feeds two
constexpr int kPixelBlock = 11;  // output pixels per forward register block; 176, 88 and 44 are multiples
constexpr int kRowBlock = 32;    // output columns per block of the row kernels
// The generic forward tile for 16 vector registers (of 4 doubles with AVX2, of 4 floats with SSE2): 16 lanes by
// 3 pixels is 12 accumulators. The 32 x 11 tile would need 88. (AVX2 float has its own, conv2d_avx2.h.)
constexpr int kNarrowLanes = 16;
constexpr int kNarrowPixels = 3;

// Whether the kernels take their AVX-512 register tiles (32 registers of 16 floats) or the narrow ones.
// The processor decides; MRIAE_CPU_TILES=narrow|wide overrides it, so that a test on one machine runs both
// (a wide tile is only slow, never wrong, without AVX-512).
inline bool wide_tiles() {
  if (const char* force = std::getenv("MRIAE_CPU_TILES")) {
    if (std::strcmp(force, "narrow") == 0) return false;
    if (std::strcmp(force, "wide") == 0) return true;
  }
#if defined(__x86_64__) && defined(__GNUC__)
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

inline int round_up(int v, int m) { return (v + m - 1) / m * m; }
inline int lane_blocks(int channels, int lanes = kLanes) { return (channels + lanes - 1) / lanes; }

// One zero row above and below, one zero column left, and enough zero columns right that every
// register block of either kernel family reads inside its row.
struct Padded {
  int h, w, pitch;
  int64_t plane;
  explicit Padded(const NchwDims& d)
      : h(d.h), w(d.w),
        pitch(std::max({round_up(d.w, kRowBlock), round_up(d.w, kPixelBlock), round_up(d.w, kNarrowPixels)}) + 2),
        plane(int64_t(d.h + 2) * pitch) {}
};

// xp[n, c, i+1, j+1] = x[n, c, i, j], zero elsewhere. upsampled: x holds d.h/2 x d.w/2 planes, and
// xp[n, c, i+1, j+1] = x[n, c, i/2, j/2] (their upsample2, padded).
template <typename T> void pad(const T* x, T* xp, const NchwDims& d, const Padded& p, bool upsampled = false) {
  const int sw = upsampled ? d.w / 2 : d.w;
  const int64_t src_plane = upsampled ? int64_t(d.h / 2) * sw : d.plane();
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < int64_t(d.n) * d.c; ++q) {
    T* dst = xp + q * p.plane;
    std::fill(dst, dst + p.pitch, T(0));
    std::fill(dst + int64_t(d.h + 1) * p.pitch, dst + p.plane, T(0));
    for (int i = 0; i < d.h; ++i) {
      T* row = dst + int64_t(i + 1) * p.pitch;
      row[0] = T(0);
      if (upsampled) {
        const T* s = x + q * src_plane + int64_t(i / 2) * sw;
        for (int j = 0; j < sw; ++j) row[1 + 2 * j] = row[2 + 2 * j] = s[j];
      } else {
        std::copy(x + q * src_plane + int64_t(i) * d.w, x + q * src_plane + int64_t(i + 1) * d.w, row + 1);
      }
      std::fill(row + 1 + d.w, row + p.pitch, T(0));
    }
  }
}

// Rows of dy at the padded pitch without halo rows, zero past the last column: dyp[n, k, i, j].
template <typename T> void pitch_rows(const T* dy, T* dyp, const NchwDims& dyd, const Padded& p) {
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < int64_t(dyd.n) * dyd.c; ++q)
    for (int i = 0; i < dyd.h; ++i) {
      T* row = dyp + q * p.plane + int64_t(i) * p.pitch;
      std::copy(dy + q * dyd.plane() + int64_t(i) * dyd.w, dy + q * dyd.plane() + int64_t(i + 1) * dyd.w, row);
      std::fill(row + dyd.w, row + p.pitch, T(0));
    }
}

// Output-channel-blocked weights: wb[kb, c, tap, lane] = w[kb*32 + lane, c, tap] (zero past the last
// output channel). With flip, the kernel of the input-gradient convolution instead:
// wb[cb, k, 8 - tap, lane] = w[k, cb*32 + lane, tap], i.e. channels transposed and taps reversed.
template <typename T> void block_weights(const T* w, T* wb, int k, int c, bool flip) {
  const int outs = flip ? c : k, ins = flip ? k : c;
  for (int ob = 0; ob < lane_blocks(outs, kOutLanes); ++ob)
    for (int i = 0; i < ins; ++i)
      for (int t = 0; t < 9; ++t)
        for (int l = 0; l < kOutLanes; ++l) {
          const int o = ob * kOutLanes + l;
          T v = T(0);
          if (o < outs) v = flip ? w[(int64_t(i) * c + o) * 9 + (8 - t)] : w[(int64_t(o) * c + i) * 9 + t];
          wb[((int64_t(ob) * ins + i) * 9 + t) * kOutLanes + l] = v;
        }
}

}  // namespace mriae::cpu::conv_detail
