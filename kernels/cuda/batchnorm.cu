#include "kernels/cuda/batchnorm.h"

#include <algorithm>

#include "kernels/common/op_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/grad_store.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"

namespace mriae::cuda {

namespace {

// xbias: a convolution's bias folded into every read of x (null: none), as in kernels/cpu/batchnorm.h.
__device__ inline float biased(const float* x, const float* xbias, int64_t o, int c) {
  return xbias ? x[o] + xbias[c] : x[o];
}

// The element-wise passes run on a full 2-D grid: x over a plane, y over the N*C planes.
dim3 elementwise_grid(const NchwDims& d) {
  const int64_t planes = int64_t(d.n) * d.c;
  return dim3(grid_for(d.plane(), kThreads, 1024), unsigned(std::min<int64_t>(planes, 65535)));
}

// Pass 1 of the statistics: partial sums of x. With kReluInput every pass reads relu(x) through
// hd::bn_input, as the CPU kernels do, so the fused op never writes relu(x) out and keeps their bits.
template <bool kReluInput>
__global__ void __launch_bounds__(kChannelThreads)
    bn_sum_kernel(const float* x, const float* xbias, double* partial_sum, int n, int channels, int64_t hw) {
  __shared__ ChannelReduce::TempStorage tmp;
  const int c = blockIdx.x;
  const double s = channel_partial_sum(
      tmp, n, channels, hw, [&](int64_t o) { return double(hd::bn_input<kReluInput>(biased(x, xbias, o, c))); });
  if (threadIdx.x == 0) partial_sum[int64_t(blockIdx.x) * gridDim.y + blockIdx.y] = s;
}

// Pass 2: partial sums of squared deviations from the mean, rather than E[x^2] - mean^2, which cancels
// catastrophically when the mean is large against the spread.
template <bool kReluInput>
__global__ void __launch_bounds__(kChannelThreads)
    bn_sqdev_kernel(const float* x, const float* xbias, const double* partial_sum, double* partial_sq, int n,
                    int channels, int64_t hw) {
  __shared__ ChannelReduce::TempStorage tmp;
  const int c = blockIdx.x;
  // Every thread adds the same partials in the same order, so all agree on the mean without a broadcast.
  const double mu = channel_total(partial_sum, blockIdx.x, gridDim.y) / (double(n) * double(hw));
  const double s = channel_partial_sum(tmp, n, channels, hw, [&](int64_t o) {
    const double dev = double(hd::bn_input<kReluInput>(biased(x, xbias, o, c))) - mu;
    return dev * dev;
  });
  if (threadIdx.x == 0) partial_sq[int64_t(blockIdx.x) * gridDim.y + blockIdx.y] = s;
}

__global__ void bn_stats_finish_kernel(const double* partial_sum, const double* partial_sq, float* mean,
                                       float* invstd, float* var, int channels, int splits, double m, float eps) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < channels; c += int64_t(blockDim.x) * gridDim.x) {
    const double mu = channel_total(partial_sum, int(c), splits) / m;
    const float v = float(channel_total(partial_sq, int(c), splits) / m);
    mean[c] = float(mu);
    invstd[c] = hd::bn_invstd(v, eps);
    var[c] = v;
  }
}

// kFromVar: inference mode computes invstd from the (moving) variance; training mode reads the batch's.
template <bool kFromVar, bool kReluInput>
__global__ void bn_apply_kernel(const float* x, const float* xbias, const float* gamma, const float* beta,
                                const float* mean, const float* invstd_or_var, float eps, float* y, int64_t planes,
                                int channels, int64_t hw) {
  for_each_channel_element(planes, channels, hw, [&](int64_t p, int c, int64_t j) {
    const float is = kFromVar ? hd::bn_invstd(invstd_or_var[c], eps) : invstd_or_var[c];
    y[p * hw + j] =
        hd::bn_forward(hd::bn_input<kReluInput>(biased(x, xbias, p * hw + j, c)), mean[c], is, gamma[c], beta[c]);
  });
}

// Backward pass 1: partial sums of dy and of dy * xhat.
template <bool kReluInput>
__global__ void __launch_bounds__(kChannelThreads)
    bn_backward_sums_kernel(const float* x, const float* xbias, const float* dy, const float* mean,
                            const float* invstd, double* partial_dy, double* partial_dyx, int n, int channels,
                            int64_t hw) {
  __shared__ ChannelReduce::TempStorage tmp;
  const int c = blockIdx.x;
  const float mu = mean[c], is = invstd[c];
  const double sdy = channel_partial_sum(tmp, n, channels, hw, [&](int64_t o) { return double(dy[o]); });
  __syncthreads();  // frees `tmp` for the second reduction
  const double sdyx = channel_partial_sum(tmp, n, channels, hw, [&](int64_t o) {
    // In float, as the CPU kernel computes it.
    const float xhat = (hd::bn_input<kReluInput>(biased(x, xbias, o, c)) - mu) * is;
    return double(dy[o]) * double(xhat);
  });
  if (threadIdx.x == 0) {
    const int64_t i = int64_t(c) * gridDim.y + blockIdx.y;
    partial_dy[i] = sdy;
    partial_dyx[i] = sdyx;
  }
}

// Backward pass 2, per channel: accumulates dbeta and dgamma and, when dx is wanted, leaves the means of
// dy and dy * xhat in coef[c] and coef[channels + c] for bn_backward_dx_kernel.
__global__ void bn_backward_finish_kernel(const double* partial_dy, const double* partial_dyx, float* dgamma,
                                          float* dbeta, float* coef, int channels, int splits, double m) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < channels; c += int64_t(blockDim.x) * gridDim.x) {
    const double sdy = channel_total(partial_dy, int(c), splits), sdyx = channel_total(partial_dyx, int(c), splits);
    if (dgamma) dgamma[c] += float(sdyx);
    if (dbeta) dbeta[c] += float(sdy);
    if (coef) {
      coef[c] = float(sdy / m);
      coef[channels + c] = float(sdyx / m);
    }
  }
}

// With kReluInput, the ReLU's backward on the way out: dx is the gradient with respect to x, not relu(x).
template <bool kReluInput>
__global__ void bn_backward_dx_kernel(const float* x, const float* xbias, const float* dy, const float* gamma,
                                      const float* mean, const float* invstd, const float* coef, float* dx,
                                      int64_t planes, int channels, int64_t hw, bool accumulate) {
  for_each_channel_element(planes, channels, hw, [&](int64_t p, int c, int64_t j) {
    const int64_t o = p * hw + j;
    const float is = invstd[c];
    const float xo = biased(x, xbias, o, c);
    const float xhat = (hd::bn_input<kReluInput>(xo) - mean[c]) * is;
    const float g = hd::bn_backward(dy[o], xhat, coef[c], coef[channels + c], gamma[c] * is);
    const float gx = kReluInput ? hd::relu_grad(xo, g) : g;
    store_grad(dx[o], gx, accumulate);
  });
}

size_t partials_bytes(const NchwDims& d) { return sizeof(double) * size_t(d.c) * size_t(channel_splits(d)); }

}  // namespace

size_t batchnorm_forward_scratch_bytes(const NchwDims& d) { return 2 * partials_bytes(d); }

template <bool kReluInput>
void batchnorm_forward_train(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                             float* invstd, float* var, void* scratch, const NchwDims& d, float eps,
                             cudaStream_t stream, const float* xbias) {
  // With no elements there are no batch statistics; the CPU kernel divides 0 by 0 there too.
  if (d.c <= 0 || d.count() == 0) return;
  auto* partial_sum = static_cast<double*>(scratch);
  double* partial_sq = partial_sum + int64_t(d.c) * channel_splits(d);
  const dim3 split_grid = channel_split_grid(d);
  bn_sum_kernel<kReluInput><<<split_grid, kChannelThreads, 0, stream>>>(x, xbias, partial_sum, d.n, d.c, d.plane());
  MRIAE_CUDA_CHECK_LAUNCH(bn_sum_kernel<kReluInput>);
  bn_sqdev_kernel<kReluInput>
      <<<split_grid, kChannelThreads, 0, stream>>>(x, xbias, partial_sum, partial_sq, d.n, d.c, d.plane());
  MRIAE_CUDA_CHECK_LAUNCH(bn_sqdev_kernel<kReluInput>);
  bn_stats_finish_kernel<<<grid_for(d.c), kThreads, 0, stream>>>(partial_sum, partial_sq, mean, invstd, var, d.c,
                                                                  channel_splits(d), double(d.n) * double(d.plane()),
                                                                  eps);
  MRIAE_CUDA_CHECK_LAUNCH(bn_stats_finish_kernel);
  bn_apply_kernel<false, kReluInput><<<elementwise_grid(d), kThreads, 0, stream>>>(
      x, xbias, gamma, beta, mean, invstd, eps, y, int64_t(d.n) * d.c, d.c, d.plane());
  MRIAE_CUDA_CHECK_LAUNCH((bn_apply_kernel<false, kReluInput>));
}

template <bool kReluInput>
void batchnorm_forward_eval(const float* x, const float* gamma, const float* beta, const float* mean,
                            const float* var, float* y, const NchwDims& d, float eps, cudaStream_t stream,
                            const float* xbias) {
  if (d.count() <= 0) return;
  bn_apply_kernel<true, kReluInput><<<elementwise_grid(d), kThreads, 0, stream>>>(
      x, xbias, gamma, beta, mean, var, eps, y, int64_t(d.n) * d.c, d.c, d.plane());
  MRIAE_CUDA_CHECK_LAUNCH((bn_apply_kernel<true, kReluInput>));
}

size_t batchnorm_backward_scratch_bytes(const NchwDims& d) {
  return 2 * partials_bytes(d) + 2 * sizeof(float) * size_t(d.c);
}

template <bool kReluInput>
void batchnorm_backward_train(const float* x, const float* dy, const float* gamma, const float* mean,
                              const float* invstd, float* dx, float* dgamma, float* dbeta, void* scratch,
                              const NchwDims& d, cudaStream_t stream, bool accumulate_dx, const float* xbias) {
  if (d.count() <= 0 || (!dx && !dgamma && !dbeta)) return;
  const int64_t np = int64_t(d.c) * channel_splits(d);
  auto* partial_dy = static_cast<double*>(scratch);
  double* partial_dyx = partial_dy + np;
  float* coef = dx ? reinterpret_cast<float*>(partial_dyx + np) : nullptr;
  bn_backward_sums_kernel<kReluInput><<<channel_split_grid(d), kChannelThreads, 0, stream>>>(
      x, xbias, dy, mean, invstd, partial_dy, partial_dyx, d.n, d.c, d.plane());
  MRIAE_CUDA_CHECK_LAUNCH(bn_backward_sums_kernel<kReluInput>);
  bn_backward_finish_kernel<<<grid_for(d.c), kThreads, 0, stream>>>(partial_dy, partial_dyx, dgamma, dbeta, coef,
                                                                     d.c, channel_splits(d),
                                                                     double(d.n) * double(d.plane()));
  MRIAE_CUDA_CHECK_LAUNCH(bn_backward_finish_kernel);
  if (!dx) return;
  bn_backward_dx_kernel<kReluInput><<<elementwise_grid(d), kThreads, 0, stream>>>(
      x, xbias, dy, gamma, mean, invstd, coef, dx, int64_t(d.n) * d.c, d.c, d.plane(), accumulate_dx);
  MRIAE_CUDA_CHECK_LAUNCH(bn_backward_dx_kernel<kReluInput>);
}

// The header declares these templates only: every caller links to one of the two instantiations here.
#define MRIAE_BN_INSTANTIATE(kReluInput)                                                                         \
  template void batchnorm_forward_train<kReluInput>(const float*, const float*, const float*, float*, float*,  \
                                                    float*, float*, void*, const NchwDims&, float, cudaStream_t, \
                                                    const float*);                                               \
  template void batchnorm_forward_eval<kReluInput>(const float*, const float*, const float*, const float*,      \
                                                   const float*, float*, const NchwDims&, float, cudaStream_t,   \
                                                   const float*);                                                \
  template void batchnorm_backward_train<kReluInput>(const float*, const float*, const float*, const float*,    \
                                                     const float*, float*, float*, float*, void*, const NchwDims&, \
                                                     cudaStream_t, bool, const float*);
MRIAE_BN_INSTANTIATE(false)
MRIAE_BN_INSTANTIATE(true)
#undef MRIAE_BN_INSTANTIATE

}  // namespace mriae::cuda
