#pragma once
// Mean squared error over every element.
#include <cstdint>

#include "kernels/common/op_math.h"

namespace mriae::cpu {

template <typename T> T mse_forward(const T* y, const T* t, int64_t n) {
  double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
  for (int64_t i = 0; i < n; ++i) s += double(y[i] - t[i]) * double(y[i] - t[i]);
  return T(s / double(n));
}

// dy += dloss * 2 (y - t) / n
template <typename T> void mse_backward(const T* y, const T* t, T dloss, T* dy, int64_t n) {
  const T scale = dloss * T(2) / T(n);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) dy[i] += hd::mse_grad(y[i], t[i], scale);
}

}  // namespace mriae::cpu
