#pragma once
// Mean squared error over every element.
#include <cstdint>

#include "kernels/common/op_math.h"

namespace mriae::cpu {

// Summed in a fixed number of chunks, combined in order: the same bits whatever the thread count or
// scheduling (an OpenMP reduction combines partial sums in arrival order), so a resumed run reports the
// same losses as an uninterrupted one.
template <typename T> T mse_forward(const T* y, const T* t, int64_t n) {
  constexpr int kChunks = 64;
  double part[kChunks];
#pragma omp parallel for schedule(static)
  for (int c = 0; c < kChunks; ++c) {
    double s = 0;
    const int64_t lo = n * c / kChunks, hi = n * (c + 1) / kChunks;
#pragma omp simd reduction(+ : s)
    for (int64_t i = lo; i < hi; ++i) s += double(y[i] - t[i]) * double(y[i] - t[i]);
    part[c] = s;
  }
  double s = 0;
  for (double p : part) s += p;
  return T(s / double(n));
}

// dy += dloss * 2 (y - t) / n, or dy = ... with accumulate = false
template <typename T> void mse_backward(const T* y, const T* t, T dloss, T* dy, int64_t n, bool accumulate = true) {
  const T scale = dloss * T(2) / T(n);
  if (accumulate) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) dy[i] += hd::mse_grad(y[i], t[i], scale);
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) dy[i] = hd::mse_grad(y[i], t[i], scale);
  }
}

}  // namespace mriae::cpu
