#pragma once
// Mean squared error on the GPU; same contract as kernels/cpu/loss.h, with the loss kept on the device
// so a training step needs no host round trip until someone reads it.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace mriae::cuda {

// Bytes of device scratch that mse_forward needs (a fixed number of per-block partial sums).
size_t mse_forward_scratch_bytes();

// loss[0] = mean((y - t)^2) over n elements, accumulated in double in a fixed order, so the bits do not
// depend on the GPU model. scratch holds mse_forward_scratch_bytes() bytes, 8-byte aligned.
void mse_forward(const float* y, const float* t, int64_t n, float* loss, void* scratch, cudaStream_t stream);

// dy += dloss[0] * 2 (y - t) / n, or dy = ... with accumulate = false, with dloss a device scalar (the
// upstream gradient of the loss).
void mse_backward(const float* y, const float* t, const float* dloss, float* dy, int64_t n, cudaStream_t stream,
                  bool accumulate = true);

}  // namespace mriae::cuda
