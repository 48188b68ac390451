#pragma once
// A constant fill, ReLU and sigmoid on the GPU; same contract as kernels/cpu/elementwise.h: backward accumulates into dx, or
// overwrites every element of it with accumulate = false.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace mriae::cuda {

// Any float value, which cudaMemsetAsync (a byte pattern) cannot write; queued, no host copy or wait.
void fill(float* x, float value, int64_t n, cudaStream_t stream);
void relu_forward(const float* x, float* y, int64_t n, cudaStream_t stream);
void relu_backward(const float* x, const float* dy, float* dx, int64_t n, cudaStream_t stream,
                   bool accumulate = true);
void sigmoid_forward(const float* x, float* y, int64_t n, cudaStream_t stream);
// y is the forward's output.
void sigmoid_backward(const float* y, const float* dy, float* dx, int64_t n, cudaStream_t stream,
                      bool accumulate = true);

}  // namespace mriae::cuda
