#pragma once
// 2x2 max pooling with stride 2 and nearest-neighbour upsampling by 2, on NCHW.
#include <algorithm>
#include <cstdint>

#include "kernels/common/hd.h"
#include "kernels/cpu/clones.h"
#include "kernels/cpu/shape.h"

namespace mriae::cpu {

// Writes y and, for backward, the flat index (within its input plane) of each window's FIRST maximum in
// row-major order, which is PyTorch CPU's rule. Ties are common here (ReLU then BN maps every zero of a
// channel to one value), so the rule decides where gradients go. A NaN counts as the maximum.
// Odd trailing rows or columns are dropped, as Keras and PyTorch do.
template <typename T> MRIAE_CPU_CLONES void maxpool2_forward(const T* x, T* y, int32_t* argmax, const Dims& xd) {
  const int oh = xd.h / 2, ow = xd.w / 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < int64_t(xd.n) * xd.c; ++p) {
    const T* in = x + p * xd.plane();
    T* out = y + p * int64_t(oh) * ow;
    int32_t* idx = argmax + p * int64_t(oh) * ow;
    for (int oy = 0; oy < oh; ++oy) {
      const T* r0 = in + int64_t(2 * oy) * xd.w;
      const T* r1 = r0 + xd.w;
      const int32_t base = 2 * oy * xd.w;
      // Branch-free selects, so the loop vectorises; the same rule as a scan that stops at the first NaN.
#pragma omp simd
      for (int ox = 0; ox < ow; ++ox) {
        T bv = r0[2 * ox];
        int32_t best = base + 2 * ox;
        const T v[3] = {r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]};
        const int32_t at[3] = {base + 2 * ox + 1, base + xd.w + 2 * ox, base + xd.w + 2 * ox + 1};
        for (int k = 0; k < 3; ++k) {
          const bool take = !(bv != bv) && (v[k] > bv || v[k] != v[k]);
          bv = take ? v[k] : bv;
          best = take ? at[k] : best;
        }
        out[int64_t(oy) * ow + ox] = bv;
        idx[int64_t(oy) * ow + ox] = best;
      }
    }
  }
}

// Accumulates dy into dx at the recorded argmax positions. xd is the INPUT's shape. With accumulate =
// false, dx is overwritten: dy at each argmax, zero everywhere else (odd trailing rows and columns too).
template <typename T>
void maxpool2_backward(const T* dy, const int32_t* argmax, T* dx, const Dims& xd, bool accumulate = true) {
  const int64_t ohw = int64_t(xd.h / 2) * (xd.w / 2);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < int64_t(xd.n) * xd.c; ++p) {
    T* g = dx + p * xd.plane();
    // Zeroing the plane here, just before the scatter, touches it while it is in cache.
    if (!accumulate) std::fill(g, g + xd.plane(), T(0));
    for (int64_t i = 0; i < ohw; ++i) g[argmax[p * ohw + i]] += dy[p * ohw + i];
  }
}

// y[.., 2y+a, 2x+b] = x[.., y, x]. xd is the INPUT's shape.
template <typename T> void upsample2_forward(const T* x, T* y, const Dims& xd) {
  const int ow = xd.w * 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < int64_t(xd.n) * xd.c; ++p) {
    const T* in = x + p * xd.plane();
    T* out = y + p * xd.plane() * 4;
    for (int iy = 0; iy < xd.h; ++iy)
      for (int ix = 0; ix < xd.w; ++ix) {
        const T v = in[iy * xd.w + ix];
        T* o = out + int64_t(2 * iy) * ow + 2 * ix;
        o[0] = o[1] = o[ow] = o[ow + 1] = v;
      }
  }
}

// dx += sum of dy over each 2x2 block (dx = ... with accumulate = false). xd is the INPUT's shape.
template <typename T> void upsample2_backward(const T* dy, T* dx, const Dims& xd, bool accumulate = true) {
  const int ow = xd.w * 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < int64_t(xd.n) * xd.c; ++p) {
    const T* g = dy + p * xd.plane() * 4;
    T* out = dx + p * xd.plane();
    for (int iy = 0; iy < xd.h; ++iy)
      for (int ix = 0; ix < xd.w; ++ix) {
        const T* o = g + int64_t(2 * iy) * ow + 2 * ix;
        const T s = (o[0] + o[1]) + (o[ow] + o[ow + 1]);
        out[iy * xd.w + ix] = accumulate ? out[iy * xd.w + ix] + s : s;
      }
  }
}

}  // namespace mriae::cpu
