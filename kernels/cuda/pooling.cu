#include "kernels/cuda/pooling.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/cuda/grad_store.cuh"
#include "kernels/cuda/launch.h"

namespace mriae::cuda {

namespace {

// Each kernel runs over a plane's rows and columns with a 2-D grid of 32x8 tiles (x along a row, so a warp's
// loads and stores are coalesced) and over the N*C planes with grid z, looping when there are more planes
// than a grid holds. An element's row and column then come from the grid without any division: a linear
// index split by i / hw and r / w costs a software-emulated 64-bit division (and a 32-bit one) per element.
constexpr int kTileX = 32, kTileY = 8;
constexpr int64_t kMaxGridYZ = 65535;

struct PlaneGrid {
  dim3 grid, block;
};

// The launch over `rows` x `cols` positions of each of `planes` planes, or an error naming the op when a
// plane is too large for the kernels' 32-bit in-plane indices (the int32 argmax of maxpool needs that too)
// or for grid y. `elems` is the largest plane the kernel indexes (input or output).
PlaneGrid plane_grid(const char* op, int64_t planes, int rows, int cols, int64_t elems) {
  const int64_t tiles_y = (int64_t(rows) + kTileY - 1) / kTileY;
  if (elems > INT32_MAX || tiles_y > kMaxGridYZ)
    throw Error(std::string(op) + ": a plane of " + std::to_string(elems) + " elements (" + std::to_string(rows) +
                " rows) is more than the CUDA kernel's 32-bit plane indices and grid allow");
  return {dim3(unsigned((cols + kTileX - 1) / kTileX), unsigned(tiles_y), unsigned(std::min(planes, kMaxGridYZ))),
          dim3(kTileX, kTileY)};
}

// The comparison is the CPU kernel's, term for term, so ties and NaNs pick the same input element on both
// backends. Thread (ox, oy) of every plane: one output element.
__global__ void maxpool2_forward_kernel(const float* x, float* y, int32_t* argmax, int64_t planes, int h, int w) {
  const int ow = w >> 1, oh = h >> 1;
  const int ox = int(blockIdx.x) * kTileX + int(threadIdx.x), oy = int(blockIdx.y) * kTileY + int(threadIdx.y);
  if (ox >= ow || oy >= oh) return;
  const int r = oy * ow + ox;
  const int32_t first = (2 * oy) * w + 2 * ox;
  const int32_t window[4] = {first, first + 1, first + w, first + w + 1};
  for (int64_t p = blockIdx.z; p < planes; p += gridDim.z) {
    const float* in = x + p * h * w;
    int32_t best = window[0];
    float bv = in[best];
#pragma unroll
    for (int k = 1; k < 4; ++k) {
      const int32_t j = window[k];
      const float v = in[j];
      if (!(bv != bv) && (v > bv || v != v)) {
        bv = v;
        best = j;
      }
    }
    y[p * oh * ow + r] = bv;
    argmax[p * oh * ow + r] = best;
  }
}

// Accumulating: one thread per output element. The 2x2 windows do not overlap, so no two threads add to the
// same dx element: no atomics, and the result is deterministic.
__global__ void maxpool2_backward_kernel(const float* dy, const int32_t* argmax, float* dx, int64_t planes, int h,
                                         int w) {
  const int ow = w >> 1, oh = h >> 1;
  const int ox = int(blockIdx.x) * kTileX + int(threadIdx.x), oy = int(blockIdx.y) * kTileY + int(threadIdx.y);
  if (ox >= ow || oy >= oh) return;
  const int r = oy * ow + ox;
  for (int64_t p = blockIdx.z; p < planes; p += gridDim.z) {
    const int64_t o = p * oh * ow + r;
    dx[p * h * w + argmax[o]] += dy[o];
  }
}

// Overwriting: one thread per INPUT element, which reads its window's argmax and writes dy there or 0: a
// gather, so every element of dx is written once with coalesced stores, and no zero fill of the whole
// buffer precedes a scatter. Neighbouring threads share a window, so dy and argmax still come from DRAM
// about once. Elements of the odd trailing row or column belong to no window and get 0.
__global__ void maxpool2_backward_overwrite_kernel(const float* dy, const int32_t* argmax, float* dx, int64_t planes,
                                                   int h, int w) {
  const int ow = w >> 1, oh = h >> 1;
  const int ix = int(blockIdx.x) * kTileX + int(threadIdx.x), iy = int(blockIdx.y) * kTileY + int(threadIdx.y);
  if (ix >= w || iy >= h) return;
  const int r = iy * w + ix, oy = iy >> 1, ox = ix >> 1;
  const bool in_window = oy < oh && ox < ow;
  for (int64_t p = blockIdx.z; p < planes; p += gridDim.z) {
    float g = 0.0f;
    if (in_window) {
      const int64_t o = p * oh * ow + oy * ow + ox;
      // 0 + dy rather than dy: the CPU fills with zeros and adds, which turns a -0 gradient into +0.
      if (argmax[o] == r) g = 0.0f + dy[o];
    }
    dx[p * h * w + r] = g;
  }
}

// One thread per output element: each reads its source pixel.
__global__ void upsample2_forward_kernel(const float* x, float* y, int64_t planes, int h, int w) {
  const int ow = 2 * w;
  const int ox = int(blockIdx.x) * kTileX + int(threadIdx.x), oy = int(blockIdx.y) * kTileY + int(threadIdx.y);
  if (ox >= ow || oy >= 2 * h) return;
  const int r = oy * ow + ox, src = (oy >> 1) * w + (ox >> 1);
  for (int64_t p = blockIdx.z; p < planes; p += gridDim.z) y[p * 4 * h * w + r] = x[p * h * w + src];
}

// One thread per input element: it sums its 2x2 block in the CPU kernel's order.
__global__ void upsample2_backward_kernel(const float* dy, float* dx, int64_t planes, int h, int w, bool accumulate) {
  const int ow = 2 * w;
  const int ix = int(blockIdx.x) * kTileX + int(threadIdx.x), iy = int(blockIdx.y) * kTileY + int(threadIdx.y);
  if (ix >= w || iy >= h) return;
  const int r = iy * w + ix, first = (2 * iy) * ow + 2 * ix;
  for (int64_t p = blockIdx.z; p < planes; p += gridDim.z) {
    const float* o = dy + p * 4 * h * w + first;
    const float g = (o[0] + o[1]) + (o[ow] + o[ow + 1]);
    store_grad(dx[p * h * w + r], g, accumulate);
  }
}

}  // namespace

void maxpool2_forward(const float* x, float* y, int32_t* argmax, const NchwDims& xd, cudaStream_t stream) {
  const int64_t planes = int64_t(xd.n) * xd.c;
  if (planes <= 0 || xd.h / 2 <= 0 || xd.w / 2 <= 0) return;
  const PlaneGrid g = plane_grid("maxpool2 forward", planes, xd.h / 2, xd.w / 2, xd.plane());
  maxpool2_forward_kernel<<<g.grid, g.block, 0, stream>>>(x, y, argmax, planes, xd.h, xd.w);
  MRIAE_CUDA_CHECK_LAUNCH(maxpool2_forward_kernel);
}

void maxpool2_backward(const float* dy, const int32_t* argmax, float* dx, const NchwDims& xd, cudaStream_t stream,
                       bool accumulate) {
  const int64_t planes = int64_t(xd.n) * xd.c;
  if (!accumulate) {
    if (planes <= 0 || xd.h <= 0 || xd.w <= 0) return;
    const PlaneGrid g = plane_grid("maxpool2 backward", planes, xd.h, xd.w, xd.plane());
    maxpool2_backward_overwrite_kernel<<<g.grid, g.block, 0, stream>>>(dy, argmax, dx, planes, xd.h, xd.w);
    MRIAE_CUDA_CHECK_LAUNCH(maxpool2_backward_overwrite_kernel);
    return;
  }
  if (planes <= 0 || xd.h / 2 <= 0 || xd.w / 2 <= 0) return;
  const PlaneGrid g = plane_grid("maxpool2 backward", planes, xd.h / 2, xd.w / 2, xd.plane());
  maxpool2_backward_kernel<<<g.grid, g.block, 0, stream>>>(dy, argmax, dx, planes, xd.h, xd.w);
  MRIAE_CUDA_CHECK_LAUNCH(maxpool2_backward_kernel);
}

void upsample2_forward(const float* x, float* y, const NchwDims& xd, cudaStream_t stream) {
  const int64_t planes = int64_t(xd.n) * xd.c;
  if (planes <= 0 || xd.h <= 0 || xd.w <= 0) return;
  const PlaneGrid g = plane_grid("upsample2 forward", planes, 2 * xd.h, 2 * xd.w, 4 * xd.plane());
  upsample2_forward_kernel<<<g.grid, g.block, 0, stream>>>(x, y, planes, xd.h, xd.w);
  MRIAE_CUDA_CHECK_LAUNCH(upsample2_forward_kernel);
}

void upsample2_backward(const float* dy, float* dx, const NchwDims& xd, cudaStream_t stream, bool accumulate) {
  const int64_t planes = int64_t(xd.n) * xd.c;
  if (planes <= 0 || xd.h <= 0 || xd.w <= 0) return;
  const PlaneGrid g = plane_grid("upsample2 backward", planes, xd.h, xd.w, 4 * xd.plane());
  upsample2_backward_kernel<<<g.grid, g.block, 0, stream>>>(dy, dx, planes, xd.h, xd.w, accumulate);
  MRIAE_CUDA_CHECK_LAUNCH(upsample2_backward_kernel);
}

}  // namespace mriae::cuda
