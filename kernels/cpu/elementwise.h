#pragma once
// ReLU and sigmoid. Backward passes accumulate into dx, or overwrite it with accumulate = false.
#include <cstdint>

#include "kernels/common/op_math.h"

namespace mriae::cpu {

template <typename T> void relu_forward(const T* x, T* y, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = hd::relu(x[i]);
}
template <typename T> void relu_backward(const T* x, const T* dy, T* dx, int64_t n, bool accumulate = true) {
  if (accumulate) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) dx[i] += hd::relu_grad(x[i], dy[i]);
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) dx[i] = hd::relu_grad(x[i], dy[i]);
  }
}

template <typename T> void sigmoid_forward(const T* x, T* y, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = hd::sigmoid(x[i]);
}
template <typename T> void sigmoid_backward(const T* y, const T* dy, T* dx, int64_t n, bool accumulate = true) {
  if (accumulate) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) dx[i] += hd::sigmoid_grad(y[i], dy[i]);
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) dx[i] = hd::sigmoid_grad(y[i], dy[i]);
  }
}

}  // namespace mriae::cpu
