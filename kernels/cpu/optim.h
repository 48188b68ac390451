#pragma once
// Parameter-state updates: the RMSprop step and the batchnorm moving statistics.
#include <cstdint>

#include "kernels/common/op_math.h"

namespace mriae::cpu {

template <typename T> void rmsprop_update(T* p, T* acc, const T* g, int64_t n, T lr, T rho, T eps) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) hd::rmsprop(p[i], acc[i], g[i], lr, rho, eps);
}

// Keras 2.2 rule, for step t (1-based) of this layer: hidden EMAs of the batch mean and of the
// Bessel-corrected batch variance, published divided by 1 - momentum^t.
template <typename T>
void bn_moving_update_keras(T* hidden_mean, T* hidden_var, T* moving_mean, T* moving_var, const T* batch_mean,
                            const T* batch_biased_var, int c, int64_t count, int64_t step, T momentum) {
  const T bessel = count > 1 ? T(double(count) / double(count - 1)) : T(1);
  const T denom = T(1) - hd::pow_(momentum, T(step));
  for (int i = 0; i < c; ++i) {
    hd::ema_zero_debias(hidden_mean[i], moving_mean[i], batch_mean[i], momentum, denom);
    hd::ema_zero_debias(hidden_var[i], moving_var[i], batch_biased_var[i] * bessel, momentum, denom);
  }
}

// PyTorch's rule: an EMA of the published values (mean starts at 0, variance at 1).
template <typename T>
void bn_moving_update_plain(T* moving_mean, T* moving_var, const T* batch_mean, const T* batch_biased_var, int c,
                            int64_t count, T momentum) {
  const T bessel = count > 1 ? T(double(count) / double(count - 1)) : T(1);
  for (int i = 0; i < c; ++i) {
    hd::ema_plain(moving_mean[i], batch_mean[i], momentum);
    hd::ema_plain(moving_var[i], batch_biased_var[i] * bessel, momentum);
  }
}

}  // namespace mriae::cpu
