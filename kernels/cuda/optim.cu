#include "kernels/cuda/optim.h"

#include "kernels/common/op_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"

namespace mriae::cuda {

namespace {

__global__ void rmsprop_kernel(float* p, float* acc, const float* g, int64_t n, float lr, float rho, float eps) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    hd::rmsprop(p[i], acc[i], g[i], lr, rho, eps);
}

__global__ void bn_moving_keras_kernel(float* hidden_mean, float* hidden_var, float* moving_mean, float* moving_var,
                                       const float* batch_mean, const float* batch_biased_var, int c, float bessel,
                                       float momentum, float denom) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < c; i += int64_t(blockDim.x) * gridDim.x) {
    hd::ema_zero_debias(hidden_mean[i], moving_mean[i], batch_mean[i], momentum, denom);
    hd::ema_zero_debias(hidden_var[i], moving_var[i], batch_biased_var[i] * bessel, momentum, denom);
  }
}

__global__ void bn_moving_plain_kernel(float* moving_mean, float* moving_var, const float* batch_mean,
                                       const float* batch_biased_var, int c, float bessel, float momentum) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < c; i += int64_t(blockDim.x) * gridDim.x) {
    hd::ema_plain(moving_mean[i], batch_mean[i], momentum);
    hd::ema_plain(moving_var[i], batch_biased_var[i] * bessel, momentum);
  }
}

// The scalars are computed on the host with the CPU kernel's expressions (powf there and on the
// device may differ in the last bit), so both backends use identical factors.
float bessel_factor(int64_t count) { return count > 1 ? float(double(count) / double(count - 1)) : 1.0f; }

}  // namespace

void rmsprop_update(float* p, float* acc, const float* g, int64_t n, float lr, float rho, float eps,
                    cudaStream_t stream) {
  if (n <= 0) return;
  rmsprop_kernel<<<grid_for(n), kThreads, 0, stream>>>(p, acc, g, n, lr, rho, eps);
  MRIAE_CUDA_CHECK_LAUNCH(rmsprop_kernel);
}

void bn_moving_update_keras(float* hidden_mean, float* hidden_var, float* moving_mean, float* moving_var,
                            const float* batch_mean, const float* batch_biased_var, int c, int64_t count,
                            int64_t step, float momentum, cudaStream_t stream) {
  if (c <= 0) return;
  const float denom = 1.0f - hd::pow_(momentum, float(step));
  bn_moving_keras_kernel<<<grid_for(c), kThreads, 0, stream>>>(hidden_mean, hidden_var, moving_mean, moving_var,
                                                                batch_mean, batch_biased_var, c,
                                                                bessel_factor(count), momentum, denom);
  MRIAE_CUDA_CHECK_LAUNCH(bn_moving_keras_kernel);
}

void bn_moving_update_plain(float* moving_mean, float* moving_var, const float* batch_mean,
                            const float* batch_biased_var, int c, int64_t count, float momentum,
                            cudaStream_t stream) {
  if (c <= 0) return;
  bn_moving_plain_kernel<<<grid_for(c), kThreads, 0, stream>>>(moving_mean, moving_var, batch_mean,
                                                                batch_biased_var, c, bessel_factor(count),
                                                                momentum);
  MRIAE_CUDA_CHECK_LAUNCH(bn_moving_plain_kernel);
}

}  // namespace mriae::cuda
