#pragma once
// Per-channel sums over an NCHW tensor. A channel's elements are N planes of H*W, spread through the
// tensor; one block per channel would leave most of the GPU idle (the model has 32 to 128 channels), so
// each channel's planes are cut into `splits` contiguous groups, one block each (grid: x over channels,
// y over splits). Each block writes a partial sum; a second kernel adds a channel's partials in order.
// Accumulation is in double, and the split count depends on the shape alone, so the summation order,
// and with it every bit of the result, is the same on every run and every GPU.
#include <cub/block/block_reduce.cuh>

#include <algorithm>
#include <cstdint>

#include "kernels/common/nchw_dims.h"

namespace mriae::cuda {

constexpr int kChannelThreads = 256;
constexpr int64_t kChannelElementsPerBlock = 16384;
using ChannelReduce = cub::BlockReduce<double, kChannelThreads>;

// Between 1 and N: a split holds whole planes, so threads stride through a plane and reads coalesce.
inline int channel_splits(const NchwDims& d) {
  const int64_t per_channel = int64_t(d.n) * d.plane();
  const int64_t want = (per_channel + kChannelElementsPerBlock - 1) / kChannelElementsPerBlock;
  return int(std::max<int64_t>(1, std::min<int64_t>({want, int64_t(d.n), 65535})));
}

inline dim3 channel_split_grid(const NchwDims& d) { return dim3(unsigned(d.c), unsigned(channel_splits(d))); }

// This block's partial sum of f(flat element offset) over its channel (blockIdx.x) and group of planes
// (blockIdx.y); valid in thread 0 only. The caller must __syncthreads() before reusing `tmp`.
template <typename F>
__device__ double channel_partial_sum(ChannelReduce::TempStorage& tmp, int n, int channels, int64_t hw, F f) {
  const int c = blockIdx.x, splits = gridDim.y, s = blockIdx.y;
  const int first = int(int64_t(n) * s / splits), last = int(int64_t(n) * (s + 1) / splits);
  double sum = 0;
  for (int i = first; i < last; ++i) {
    const int64_t base = (int64_t(i) * channels + c) * hw;
    for (int64_t j = threadIdx.x; j < hw; j += blockDim.x) sum += f(base + j);
  }
  return ChannelReduce(tmp).Sum(sum);
}

// A channel's total from its `splits` partials, added in order.
__device__ inline double channel_total(const double* partial, int c, int splits) {
  double t = 0;
  for (int s = 0; s < splits; ++s) t += partial[int64_t(c) * splits + s];
  return t;
}

// Runs f(plane, channel, index within plane) for every element; launched with a 2-D grid (x over a
// plane, y over the planes), both grid-stride.
template <typename F> __device__ void for_each_channel_element(int64_t planes, int channels, int64_t hw, F f) {
  for (int64_t p = blockIdx.y; p < planes; p += gridDim.y) {
    const int c = int(p % channels);
    for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < hw; j += int64_t(blockDim.x) * gridDim.x)
      f(p, c, j);
  }
}

}  // namespace mriae::cuda
