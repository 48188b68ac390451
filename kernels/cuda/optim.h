#pragma once
// Parameter-state updates on the GPU; same contract as kernels/cpu/optim.h.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace mriae::cuda {

// One launch over the flat parameter, accumulator and gradient buffers.
void rmsprop_update(float* p, float* acc, const float* g, int64_t n, float lr, float rho, float eps,
                    cudaStream_t stream);

// Keras 2.2 moving statistics for step `step` (1-based) of this layer; see cpu::bn_moving_update_keras.
void bn_moving_update_keras(float* hidden_mean, float* hidden_var, float* moving_mean, float* moving_var,
                            const float* batch_mean, const float* batch_biased_var, int c, int64_t count,
                            int64_t step, float momentum, cudaStream_t stream);

// PyTorch's rule; see cpu::bn_moving_update_plain.
void bn_moving_update_plain(float* moving_mean, float* moving_var, const float* batch_mean,
                            const float* batch_biased_var, int c, int64_t count, float momentum,
                            cudaStream_t stream);

}  // namespace mriae::cuda
