#pragma once
// Per-channel sums on the GPU, deterministic (fixed-order double accumulation; see reduce.cuh).
#include <cuda_runtime_api.h>

#include <cstddef>

#include "kernels/common/nchw_dims.h"

namespace mriae::cuda {

// Bytes of device scratch (8-byte aligned) that channel_sum_accumulate needs.
size_t channel_sum_scratch_bytes(const NchwDims& d);

// out[c] += sum over n, h, w of x[n, c, h, w]: the bias gradient of a convolution, computed as the CPU
// kernel does (conv3x3_backward's db) where cuDNN's own reduction is not known to be deterministic.
void channel_sum_accumulate(const float* x, float* out, const NchwDims& d, void* scratch, cudaStream_t stream);

}  // namespace mriae::cuda
