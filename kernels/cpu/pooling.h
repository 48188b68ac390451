#pragma once
// 2x2 max pooling with stride 2 and nearest-neighbour upsampling by 2, on NCHW.
#include <algorithm>
#include <cstdint>

#include "kernels/common/hd.h"
#include "kernels/cpu/clones.h"
#include "kernels/common/nchw_dims.h"

namespace mriae::cpu {

namespace pool_detail {
// The maximum of a 2x2 window v (row-major) and its position 0-3: the first maximum, a NaN counting as the
// maximum. Written as selects (not a scan that stops at the first NaN, the same rule) so that GCC vectorises
// the loops around it.
template <typename T> __attribute__((always_inline)) inline T window_max(const T (&v)[4], int32_t& pos) {
  T bv = v[0];
  pos = 0;
#pragma GCC unroll 3
  for (int k = 1; k < 4; ++k) {
    const bool take = !(bv != bv) && (v[k] > bv || v[k] != v[k]);
    bv = take ? v[k] : bv;
    pos = take ? k : pos;
  }
  return bv;
}
}  // namespace pool_detail

// out[ox] = the maximum of the window of rows r0 and r1 (adjacent input rows) at columns 2ox and 2ox + 1,
// for ox < ow, by maxpool2_forward's rule, without the positions: the pooling that a convolution fuses into
// its inference pass (conv2d_blocked.h).
template <typename T>
__attribute__((always_inline)) inline void maxpool2_row_values(const T* r0, const T* r1, T* out, int ow) {
  for (int ox = 0; ox < ow; ++ox) {
    const T v[4] = {r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]};
    int32_t pos;
    out[ox] = pool_detail::window_max(v, pos);
  }
}

// Writes y and, for backward, the flat index (within its input plane) of each window's FIRST maximum in
// row-major order, which is PyTorch CPU's rule. Ties are common here (ReLU then BN maps every zero of a
// channel to one value), so the rule decides where gradients go. A NaN counts as the maximum.
// Odd trailing rows or columns are dropped, as Keras and PyTorch do.
template <typename T> MRIAE_CPU_CLONES void maxpool2_forward(const T* x, T* y, int32_t* argmax, const NchwDims& xd) {
  const int oh = xd.h / 2, ow = xd.w / 2, w = xd.w;
  const int64_t planes = int64_t(xd.n) * xd.c, plane = xd.plane();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const T* in = x + p * plane;
    T* out = y + p * int64_t(oh) * ow;
    int32_t* idx = argmax + p * int64_t(oh) * ow;
    for (int oy = 0; oy < oh; ++oy) {
      const T* r0 = in + int64_t(2 * oy) * w;
      const T* r1 = r0 + w;
      const int32_t base = 2 * oy * w;
      // With the shape in locals rather than read through xd inside the parallel region: only so does GCC
      // vectorise this loop (omp simd does not help).
      for (int ox = 0; ox < ow; ++ox) {
        const T v[4] = {r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]};
        int32_t pos;
        const T bv = pool_detail::window_max(v, pos);
        const int32_t best = base + (pos >> 1) * w + 2 * ox + (pos & 1);
        out[int64_t(oy) * ow + ox] = bv;
        idx[int64_t(oy) * ow + ox] = best;
      }
    }
  }
}

// Accumulates dy into dx at the recorded argmax positions. xd is the INPUT's shape. With accumulate =
// false, dx is overwritten: dy at each argmax, zero everywhere else (odd trailing rows and columns too).
template <typename T>
void maxpool2_backward(const T* dy, const int32_t* argmax, T* dx, const NchwDims& xd, bool accumulate = true) {
  const int64_t ohw = int64_t(xd.h / 2) * (xd.w / 2);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < int64_t(xd.n) * xd.c; ++p) {
    T* g = dx + p * xd.plane();
    // Zeroing the plane here, just before the scatter, touches it while it is in cache.
    if (!accumulate) std::fill(g, g + xd.plane(), T(0));
    for (int64_t i = 0; i < ohw; ++i) g[argmax[p * ohw + i]] += dy[p * ohw + i];
  }
}

// y[.., 2y+a, 2x+b] = x[.., y, x]. xd is the INPUT's shape. (The shape sits in locals, not read through xd
// inside the parallel region, so that GCC vectorises the rows.)
template <typename T> MRIAE_CPU_CLONES void upsample2_forward(const T* x, T* y, const NchwDims& xd) {
  const int h = xd.h, w = xd.w, ow = 2 * w;
  const int64_t planes = int64_t(xd.n) * xd.c, plane = xd.plane();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const T* in = x + p * plane;
    T* out = y + p * plane * 4;
    for (int iy = 0; iy < h; ++iy) {
      const T* r = in + int64_t(iy) * w;
      T* o0 = out + int64_t(2 * iy) * ow;
      T* o1 = o0 + ow;
      for (int ix = 0; ix < w; ++ix) o0[2 * ix] = o0[2 * ix + 1] = o1[2 * ix] = o1[2 * ix + 1] = r[ix];
    }
  }
}

// dx += sum of dy over each 2x2 block (dx = ... with accumulate = false). xd is the INPUT's shape.
template <typename T>
MRIAE_CPU_CLONES void upsample2_backward(const T* dy, T* dx, const NchwDims& xd, bool accumulate = true) {
  const int h = xd.h, w = xd.w, ow = 2 * w;
  const int64_t planes = int64_t(xd.n) * xd.c, plane = xd.plane();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const T* g = dy + p * plane * 4;
    T* out = dx + p * plane;
    for (int iy = 0; iy < h; ++iy) {
      const T* g0 = g + int64_t(2 * iy) * ow;
      const T* g1 = g0 + ow;
      T* r = out + int64_t(iy) * w;
      if (accumulate)
        for (int ix = 0; ix < w; ++ix) r[ix] += (g0[2 * ix] + g0[2 * ix + 1]) + (g1[2 * ix] + g1[2 * ix + 1]);
      else
        for (int ix = 0; ix < w; ++ix) r[ix] = (g0[2 * ix] + g0[2 * ix + 1]) + (g1[2 * ix] + g1[2 * ix + 1]);
    }
  }
}

}  // namespace mriae::cpu
