#include "kernels/cuda/pooling.h"

#include "kernels/cuda/check.h"
#include "kernels/cuda/grad_store.cuh"
#include "kernels/cuda/launch.h"

namespace mriae::cuda {

namespace {

// One thread per output element. The comparison is the CPU kernel's, term for term, so ties and NaNs
// pick the same input element on both backends.
__global__ void maxpool2_forward_kernel(const float* x, float* y, int32_t* argmax, int64_t planes, int h, int w) {
  const int ow = w / 2;
  const int64_t ohw = int64_t(h / 2) * ow, total = planes * ohw;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t p = i / ohw;
    const int r = int(i - p * ohw);
    const int oy = r / ow, ox = r - oy * ow;
    const float* in = x + p * h * w;
    int32_t best = (2 * oy) * w + 2 * ox;
    float bv = in[best];
    for (int k = 1; k < 4; ++k) {
      const int32_t j = (2 * oy + k / 2) * w + 2 * ox + k % 2;
      const float v = in[j];
      if (!(bv != bv) && (v > bv || v != v)) {
        bv = v;
        best = j;
      }
    }
    y[i] = bv;
    argmax[i] = best;
  }
}

// Accumulating: one thread per output element. The 2x2 windows do not overlap, so no two threads add to the
// same dx element: no atomics, and the result is deterministic.
__global__ void maxpool2_backward_kernel(const float* dy, const int32_t* argmax, float* dx, int64_t planes, int h,
                                         int w) {
  const int64_t ohw = int64_t(h / 2) * (w / 2), total = planes * ohw, hw = int64_t(h) * w;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t p = i / ohw;
    dx[p * hw + argmax[i]] += dy[i];
  }
}

// Overwriting: one thread per INPUT element, which reads its window's argmax and writes dy there or 0: a
// gather, so every element of dx is written once with coalesced stores, and no zero fill of the whole
// buffer precedes a scatter. Neighbouring threads share a window, so dy and argmax still come from DRAM
// about once. Elements of the odd trailing row or column belong to no window and get 0.
__global__ void maxpool2_backward_overwrite_kernel(const float* dy, const int32_t* argmax, float* dx, int64_t planes,
                                                   int h, int w) {
  const int ow = w / 2;
  const int64_t hw = int64_t(h) * w, ohw = int64_t(h / 2) * ow, total = planes * hw;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t p = i / hw;
    const int r = int(i - p * hw);
    const int iy = r / w, ix = r - iy * w, oy = iy / 2, ox = ix / 2;
    float g = 0.0f;
    if (oy < h / 2 && ox < ow) {
      const int64_t o = p * ohw + int64_t(oy) * ow + ox;
      // 0 + dy rather than dy: the CPU fills with zeros and adds, which turns a -0 gradient into +0.
      if (argmax[o] == r) g = 0.0f + dy[o];
    }
    dx[i] = g;
  }
}

// One thread per output element: each reads its source pixel.
__global__ void upsample2_forward_kernel(const float* x, float* y, int64_t planes, int h, int w) {
  const int ow = 2 * w;
  const int64_t ohw = int64_t(2 * h) * ow, total = planes * ohw;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t p = i / ohw;
    const int64_t r = i - p * ohw;
    const int oy = int(r / ow), ox = int(r - int64_t(oy) * ow);
    y[i] = x[p * h * w + int64_t(oy / 2) * w + ox / 2];
  }
}

// One thread per input element: it sums its 2x2 block in the CPU kernel's order.
__global__ void upsample2_backward_kernel(const float* dy, float* dx, int64_t planes, int h, int w, bool accumulate) {
  const int ow = 2 * w;
  const int64_t hw = int64_t(h) * w, total = planes * hw;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t p = i / hw;
    const int r = int(i - p * hw);
    const int iy = r / w, ix = r - iy * w;
    const float* o = dy + p * hw * 4 + int64_t(2 * iy) * ow + 2 * ix;
    const float g = (o[0] + o[1]) + (o[ow] + o[ow + 1]);
    store_grad(dx[i], g, accumulate);
  }
}

}  // namespace

void maxpool2_forward(const float* x, float* y, int32_t* argmax, const NchwDims& xd, cudaStream_t stream) {
  const int64_t total = int64_t(xd.n) * xd.c * (xd.h / 2) * (xd.w / 2);
  if (total <= 0) return;
  maxpool2_forward_kernel<<<grid_for(total), kThreads, 0, stream>>>(x, y, argmax, int64_t(xd.n) * xd.c, xd.h, xd.w);
  MRIAE_CUDA_CHECK_LAUNCH(maxpool2_forward_kernel);
}

void maxpool2_backward(const float* dy, const int32_t* argmax, float* dx, const NchwDims& xd, cudaStream_t stream,
                       bool accumulate) {
  const int64_t planes = int64_t(xd.n) * xd.c;
  if (!accumulate) {
    const int64_t total = xd.count();
    if (total <= 0) return;
    maxpool2_backward_overwrite_kernel<<<grid_for(total), kThreads, 0, stream>>>(dy, argmax, dx, planes, xd.h, xd.w);
    MRIAE_CUDA_CHECK_LAUNCH(maxpool2_backward_overwrite_kernel);
    return;
  }
  const int64_t total = planes * (xd.h / 2) * (xd.w / 2);
  if (total <= 0) return;
  maxpool2_backward_kernel<<<grid_for(total), kThreads, 0, stream>>>(dy, argmax, dx, planes, xd.h, xd.w);
  MRIAE_CUDA_CHECK_LAUNCH(maxpool2_backward_kernel);
}

void upsample2_forward(const float* x, float* y, const NchwDims& xd, cudaStream_t stream) {
  const int64_t total = xd.count() * 4;
  if (total <= 0) return;
  upsample2_forward_kernel<<<grid_for(total), kThreads, 0, stream>>>(x, y, int64_t(xd.n) * xd.c, xd.h, xd.w);
  MRIAE_CUDA_CHECK_LAUNCH(upsample2_forward_kernel);
}

void upsample2_backward(const float* dy, float* dx, const NchwDims& xd, cudaStream_t stream, bool accumulate) {
  const int64_t total = xd.count();
  if (total <= 0) return;
  upsample2_backward_kernel<<<grid_for(total), kThreads, 0, stream>>>(dy, dx, int64_t(xd.n) * xd.c, xd.h, xd.w,
                                                                       accumulate);
  MRIAE_CUDA_CHECK_LAUNCH(upsample2_backward_kernel);
}

}  // namespace mriae::cuda
