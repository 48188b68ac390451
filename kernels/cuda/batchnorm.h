#pragma once
// Batch normalisation on the GPU; same contract as kernels/cpu/batchnorm.h, kReluInput included (instantiated
// in batchnorm.cu for both values). Channel statistics are reduced in double in a fixed order (see
// reduce.cuh): the results are deterministic. xbias (per channel, may be null) is a convolution's bias folded
// into every read of x, as on the CPU.
#include <cuda_runtime_api.h>

#include <cstddef>

#include "kernels/common/nchw_dims.h"

namespace mriae::cuda {

// Bytes of device scratch (8-byte aligned) that batchnorm_forward_train needs.
size_t batchnorm_forward_scratch_bytes(const NchwDims& d);

// Training mode: writes y and the per-channel batch mean, invstd and biased variance (two passes:
// the mean, then the squared deviations from it).
template <bool kReluInput = false>
void batchnorm_forward_train(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                             float* invstd, float* var, void* scratch, const NchwDims& d, float eps,
                             cudaStream_t stream, const float* xbias = nullptr);

// Inference mode, with the given (moving) mean and variance.
template <bool kReluInput = false>
void batchnorm_forward_eval(const float* x, const float* gamma, const float* beta, const float* mean,
                            const float* var, float* y, const NchwDims& d, float eps, cudaStream_t stream,
                            const float* xbias = nullptr);

// Bytes of device scratch (8-byte aligned) that batchnorm_backward_train needs.
size_t batchnorm_backward_scratch_bytes(const NchwDims& d);

// Backward of training mode. Accumulates into dx, dgamma and dbeta, each of which may be null; with
// accumulate_dx = false, every element of dx is overwritten instead (dgamma and dbeta still accumulate).
template <bool kReluInput = false>
void batchnorm_backward_train(const float* x, const float* dy, const float* gamma, const float* mean,
                              const float* invstd, float* dx, float* dgamma, float* dbeta, void* scratch,
                              const NchwDims& d, cudaStream_t stream, bool accumulate_dx = true,
                              const float* xbias = nullptr);

}  // namespace mriae::cuda
