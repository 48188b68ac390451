#pragma once
// 3x3 convolution, stride 1, 'same' zero padding, with bias: im2col followed by one GEMM per image.
// Backward passes accumulate into their outputs (autograd adds the gradients of shared inputs).
#include <algorithm>
#include <cstring>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/shape.h"

namespace mriae::cpu {

inline int64_t conv3x3_scratch_elems(const Dims& x) { return int64_t(x.c) * 9 * x.plane(); }

// col[(c*9 + ky*3 + kx), y*W + x] = img[c, y+ky-1, x+kx-1], zero outside the image.
template <typename T> void im2col3x3(const T* img, int c, int h, int w, T* col) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < c * 9; ++r) {
    const int ch = r / 9, ky = (r % 9) / 3, kx = r % 3;
    const T* src = img + int64_t(ch) * h * w;
    T* dst = col + int64_t(r) * h * w;
    for (int y = 0; y < h; ++y) {
      const int sy = y + ky - 1;
      T* out = dst + int64_t(y) * w;
      if (sy < 0 || sy >= h) {
        std::fill(out, out + w, T(0));
        continue;
      }
      const T* in = src + int64_t(sy) * w;
      if (kx == 0) {
        out[0] = T(0);
        std::memcpy(out + 1, in, sizeof(T) * (w - 1));
      } else if (kx == 1) {
        std::memcpy(out, in, sizeof(T) * w);
      } else {
        std::memcpy(out, in + 1, sizeof(T) * (w - 1));
        out[w - 1] = T(0);
      }
    }
  }
}

// Adjoint of im2col3x3: img += scatter(col).
template <typename T> void col2im3x3_add(const T* col, int c, int h, int w, T* img) {
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ++ch) {
    T* dst = img + int64_t(ch) * h * w;
    for (int k = 0; k < 9; ++k) {
      const int ky = k / 3, kx = k % 3;
      const T* src = col + (int64_t(ch) * 9 + k) * h * w;
      for (int y = 0; y < h; ++y) {
        const int sy = y + ky - 1;
        if (sy < 0 || sy >= h) continue;
        const T* in = src + int64_t(y) * w;
        T* out = dst + int64_t(sy) * w;
        const int x0 = kx == 0 ? 1 : 0, x1 = kx == 2 ? w - 1 : w;
        for (int x = x0; x < x1; ++x) out[x + kx - 1] += in[x];
      }
    }
  }
}

// y[n,k] = sum_c w[k,c] (*) x[n,c] + b[k]; w is [K, C, 3, 3]; scratch holds conv3x3_scratch_elems(x).
template <typename T> void conv3x3_forward(const T* x, const T* w, const T* b, T* y, const Dims& xd, int k, T* scratch) {
  const int64_t hw = xd.plane();
  const int c9 = xd.c * 9;
  for (int n = 0; n < xd.n; ++n) {
    T* yn = y + int64_t(n) * k * hw;
    for (int o = 0; o < k; ++o) std::fill(yn + o * hw, yn + (o + 1) * hw, b ? b[o] : T(0));
    im2col3x3(x + int64_t(n) * xd.c * hw, xd.c, xd.h, xd.w, scratch);
    gemm(false, false, k, int(hw), c9, T(1), w, c9, scratch, int(hw), T(1), yn, int(hw));
  }
}

// Accumulates dx (may be null), dw and db (may be null) from dy.
template <typename T>
void conv3x3_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* db, const Dims& xd, int k, T* scratch) {
  const int64_t hw = xd.plane();
  const int c9 = xd.c * 9;
  for (int n = 0; n < xd.n; ++n) {
    const T* dyn = dy + int64_t(n) * k * hw;
    if (db) {
      for (int o = 0; o < k; ++o) {
        double s = 0;  // double accumulation keeps the CPU path a trustworthy oracle
        for (int64_t i = 0; i < hw; ++i) s += dyn[o * hw + i];
        db[o] += T(s);
      }
    }
    if (dw) {
      im2col3x3(x + int64_t(n) * xd.c * hw, xd.c, xd.h, xd.w, scratch);
      gemm(false, true, k, c9, int(hw), T(1), dyn, int(hw), scratch, int(hw), T(1), dw, c9);
    }
    if (dx) {
      gemm(true, false, c9, int(hw), k, T(1), w, c9, dyn, int(hw), T(0), scratch, int(hw));
      col2im3x3_add(scratch, xd.c, xd.h, xd.w, dx + int64_t(n) * xd.c * hw);
    }
  }
}

}  // namespace mriae::cpu
