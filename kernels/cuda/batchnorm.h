#pragma once
// Batch normalisation on the GPU; same contract as kernels/cpu/batchnorm.h. Channel statistics are
// reduced in double, one block per channel, in a fixed order: the results are deterministic.
#include <cuda_runtime_api.h>

#include "kernels/cpu/shape.h"

namespace mriae::cuda {

// Training mode: writes y and the per-channel batch mean, invstd and biased variance (two passes:
// the mean, then the squared deviations from it).
void batchnorm_forward_train(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                             float* invstd, float* var, const cpu::Dims& d, float eps, cudaStream_t stream);

// Inference mode, with the given (moving) mean and variance.
void batchnorm_forward_eval(const float* x, const float* gamma, const float* beta, const float* mean,
                            const float* var, float* y, const cpu::Dims& d, float eps, cudaStream_t stream);

// Elements of device scratch that batchnorm_backward_train needs.
inline int64_t batchnorm_backward_scratch_elems(const cpu::Dims& d) { return 2 * int64_t(d.c); }

// Backward of training mode. Accumulates into dx, dgamma and dbeta, each of which may be null.
// scratch holds batchnorm_backward_scratch_elems(d) floats.
void batchnorm_backward_train(const float* x, const float* dy, const float* gamma, const float* mean,
                              const float* invstd, float* dx, float* dgamma, float* dbeta, float* scratch,
                              const cpu::Dims& d, cudaStream_t stream);

}  // namespace mriae::cuda
