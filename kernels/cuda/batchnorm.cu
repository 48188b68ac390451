#include "kernels/cuda/batchnorm.h"

#include <algorithm>

#include "kernels/common/op_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"

namespace mriae::cuda {

namespace {

// The reductions run one block per channel (the model has 32 to 128 channels); the element-wise
// passes run on a full 2-D grid, so only the reductions are limited to one SM per channel.
dim3 elementwise_grid(const cpu::Dims& d) {
  const int64_t planes = int64_t(d.n) * d.c;
  return dim3(grid_for(d.plane(), kThreads, 1024), unsigned(std::min<int64_t>(planes, 65535)));
}

__global__ void __launch_bounds__(kChannelThreads)
    bn_stats_kernel(const float* x, float* mean, float* invstd, float* var, int n, int channels, int64_t hw,
                    float eps) {
  __shared__ ChannelReduce::TempStorage tmp;
  __shared__ double mu_shared;
  const int c = blockIdx.x;
  const double m = double(n) * double(hw);
  const double sum = channel_sum(tmp, n, channels, c, hw, [&](int64_t o) { return double(x[o]); });
  if (threadIdx.x == 0) mu_shared = sum / m;
  __syncthreads();  // publishes the mean, and frees `tmp` for the second reduction
  const double mu = mu_shared;
  // Squared deviations from the mean rather than E[x^2] - mean^2, which cancels catastrophically.
  const double ss = channel_sum(tmp, n, channels, c, hw, [&](int64_t o) {
    const double dev = double(x[o]) - mu;
    return dev * dev;
  });
  if (threadIdx.x == 0) {
    const float v = float(ss / m);
    mean[c] = float(mu);
    invstd[c] = hd::bn_invstd(v, eps);
    var[c] = v;
  }
}

// kFromVar: inference mode computes invstd from the (moving) variance; training mode reads the batch's.
template <bool kFromVar>
__global__ void bn_apply_kernel(const float* x, const float* gamma, const float* beta, const float* mean,
                                const float* invstd_or_var, float eps, float* y, int64_t planes, int channels,
                                int64_t hw) {
  for_each_channel_element(planes, channels, hw, [&](int64_t p, int c, int64_t j) {
    const float is = kFromVar ? hd::bn_invstd(invstd_or_var[c], eps) : invstd_or_var[c];
    y[p * hw + j] = hd::bn_forward(x[p * hw + j], mean[c], is, gamma[c], beta[c]);
  });
}

// Per channel: sum(dy) and sum(dy * xhat), accumulated into dbeta and dgamma; and, when dx is wanted,
// their means into coef[c] and coef[channels + c] for bn_backward_dx_kernel.
__global__ void __launch_bounds__(kChannelThreads)
    bn_backward_stats_kernel(const float* x, const float* dy, const float* mean, const float* invstd, float* dgamma,
                             float* dbeta, float* coef, int n, int channels, int64_t hw) {
  __shared__ ChannelReduce::TempStorage tmp;
  const int c = blockIdx.x;
  const float mu = mean[c], is = invstd[c];
  const double sdy = channel_sum(tmp, n, channels, c, hw, [&](int64_t o) { return double(dy[o]); });
  __syncthreads();  // frees `tmp` for the second reduction
  const double sdyx = channel_sum(tmp, n, channels, c, hw, [&](int64_t o) {
    const float xhat = (x[o] - mu) * is;  // in float, as the CPU kernel computes it
    return double(dy[o]) * double(xhat);
  });
  if (threadIdx.x == 0) {
    const double m = double(n) * double(hw);
    if (dgamma) dgamma[c] += float(sdyx);
    if (dbeta) dbeta[c] += float(sdy);
    if (coef) {
      coef[c] = float(sdy / m);
      coef[channels + c] = float(sdyx / m);
    }
  }
}

__global__ void bn_backward_dx_kernel(const float* x, const float* dy, const float* gamma, const float* mean,
                                      const float* invstd, const float* coef, float* dx, int64_t planes,
                                      int channels, int64_t hw) {
  for_each_channel_element(planes, channels, hw, [&](int64_t p, int c, int64_t j) {
    const int64_t o = p * hw + j;
    const float is = invstd[c];
    const float xhat = (x[o] - mean[c]) * is;
    dx[o] += hd::bn_backward(dy[o], xhat, coef[c], coef[channels + c], gamma[c] * is);
  });
}

}  // namespace

void batchnorm_forward_train(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                             float* invstd, float* var, const cpu::Dims& d, float eps, cudaStream_t stream) {
  if (d.c <= 0) return;
  if (d.count() == 0) return;  // no batch statistics exist; the CPU kernel would divide by zero too
  bn_stats_kernel<<<d.c, kChannelThreads, 0, stream>>>(x, mean, invstd, var, d.n, d.c, d.plane(), eps);
  MRIAE_CUDA_CHECK_LAUNCH(bn_stats_kernel);
  bn_apply_kernel<false><<<elementwise_grid(d), kThreads, 0, stream>>>(x, gamma, beta, mean, invstd, eps, y,
                                                                        int64_t(d.n) * d.c, d.c, d.plane());
  MRIAE_CUDA_CHECK_LAUNCH(bn_apply_kernel<false>);
}

void batchnorm_forward_eval(const float* x, const float* gamma, const float* beta, const float* mean,
                            const float* var, float* y, const cpu::Dims& d, float eps, cudaStream_t stream) {
  if (d.count() <= 0) return;
  bn_apply_kernel<true><<<elementwise_grid(d), kThreads, 0, stream>>>(x, gamma, beta, mean, var, eps, y,
                                                                       int64_t(d.n) * d.c, d.c, d.plane());
  MRIAE_CUDA_CHECK_LAUNCH(bn_apply_kernel<true>);
}

void batchnorm_backward_train(const float* x, const float* dy, const float* gamma, const float* mean,
                              const float* invstd, float* dx, float* dgamma, float* dbeta, float* scratch,
                              const cpu::Dims& d, cudaStream_t stream) {
  if (d.count() <= 0 || (!dx && !dgamma && !dbeta)) return;
  float* coef = dx ? scratch : nullptr;
  bn_backward_stats_kernel<<<d.c, kChannelThreads, 0, stream>>>(x, dy, mean, invstd, dgamma, dbeta, coef, d.n, d.c,
                                                                 d.plane());
  MRIAE_CUDA_CHECK_LAUNCH(bn_backward_stats_kernel);
  if (!dx) return;
  bn_backward_dx_kernel<<<elementwise_grid(d), kThreads, 0, stream>>>(x, dy, gamma, mean, invstd, coef, dx,
                                                                       int64_t(d.n) * d.c, d.c, d.plane());
  MRIAE_CUDA_CHECK_LAUNCH(bn_backward_dx_kernel);
}

}  // namespace mriae::cuda
