#pragma once
// 2x2 max pooling (stride 2) and nearest upsampling by 2 on NCHW; same contract as kernels/cpu/pooling.h:
// argmax holds each window's FIRST maximum in row-major order (a NaN counts as the maximum), odd
// trailing rows and columns are dropped, and backward passes accumulate into dx or, with accumulate = false,
// overwrite every element of it (maxpool: dy at each window's argmax, 0 elsewhere, the dropped odd row and
// column included). xd is the INPUT's shape.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/common/nchw_dims.h"

namespace mriae::cuda {

void maxpool2_forward(const float* x, float* y, int32_t* argmax, const NchwDims& xd, cudaStream_t stream);
void maxpool2_backward(const float* dy, const int32_t* argmax, float* dx, const NchwDims& xd, cudaStream_t stream,
                       bool accumulate = true);
void upsample2_forward(const float* x, float* y, const NchwDims& xd, cudaStream_t stream);
void upsample2_backward(const float* dy, float* dx, const NchwDims& xd, cudaStream_t stream,
                        bool accumulate = true);

}  // namespace mriae::cuda
