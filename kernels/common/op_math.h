#pragma once
// Per-element math of every op, shared by kernels/cpu and kernels/cuda.
#include "kernels/common/hd.h"

namespace mriae::hd {

template <typename T> MRIAE_HD inline T relu(T x) { return x > T(0) ? x : T(0); }
// The gradient at exactly 0 is 0, as in PyTorch and TensorFlow.
template <typename T> MRIAE_HD inline T relu_grad(T x, T dy) { return x > T(0) ? dy : T(0); }

// 1/(1+e^-x) saturates to 0 or 1 for large |x| without producing NaN.
template <typename T> MRIAE_HD inline T sigmoid(T x) { return T(1) / (T(1) + exp_(-x)); }
// Written in terms of the output, which the forward pass keeps.
template <typename T> MRIAE_HD inline T sigmoid_grad(T y, T dy) { return dy * y * (T(1) - y); }

// What the batchnorm kernels normalise: x itself, or relu(x) in the fused ReLU-then-batchnorm variants of
// both backends. relu is written as a product with 0 or 1, which GCC vectorises inside the CPU's
// double-precision sums where it leaves a select scalar; it is the same value as relu for every finite x (a
// negative x gives -0, which adds and subtracts as +0), so the fused kernels give the bits of the two ops.
template <bool kReluInput, typename T> MRIAE_HD inline T bn_input(T x) {
  return kReluInput ? x * (x > T(0) ? T(1) : T(0)) : x;
}
template <typename T> MRIAE_HD inline T bn_invstd(T biased_var, T eps) { return T(1) / sqrt_(biased_var + eps); }
template <typename T> MRIAE_HD inline T bn_forward(T x, T mean, T invstd, T gamma, T beta) {
  return (x - mean) * invstd * gamma + beta;
}
// dL/dx of training-mode batchnorm for one element, given the channel's mean of dy and of dy*xhat.
template <typename T>
MRIAE_HD inline T bn_backward(T dy, T xhat, T mean_dy, T mean_dy_xhat, T gamma_invstd) {
  return gamma_invstd * (dy - mean_dy - xhat * mean_dy_xhat);
}

// Keras 2.2 moving statistics (TensorFlow's assign_moving_average with zero_debias=True): a hidden EMA
// starts at 0 and the published value divides out the bias, so the first update is the batch value itself.
template <typename T>
MRIAE_HD inline void ema_zero_debias(T& hidden, T& published, T value, T momentum, T debias_denominator) {
  hidden = momentum * hidden + (T(1) - momentum) * value;
  published = hidden / debias_denominator;
}
// PyTorch-style EMA on the published value itself.
template <typename T> MRIAE_HD inline void ema_plain(T& published, T value, T momentum) {
  published = momentum * published + (T(1) - momentum) * value;
}

// Keras 2.2 RMSprop: eps is added after the square root.
template <typename T> MRIAE_HD inline void rmsprop(T& p, T& acc, T g, T lr, T rho, T eps) {
  acc = rho * acc + (T(1) - rho) * g * g;
  p -= lr * g / (sqrt_(acc) + eps);
}

// d/dy of mean((y-t)^2), scale = 2/M times the upstream gradient.
template <typename T> MRIAE_HD inline T mse_grad(T y, T t, T scale) { return scale * (y - t); }

}  // namespace mriae::hd
