#pragma once
// Per-channel sums over an NCHW tensor, for kernels launched with one block per channel. A channel's
// elements are N planes of H*W, `planes_stride` planes apart; threads stride through each plane so
// reads coalesce. Accumulation is in double and the block reduction (CUB) has a fixed order.
#include <cub/block/block_reduce.cuh>

#include <cstdint>

namespace mriae::cuda {

constexpr int kChannelThreads = 512;
using ChannelReduce = cub::BlockReduce<double, kChannelThreads>;

// Sum over channel `c` of f(flat element offset); the total is valid in thread 0 only. The caller
// must __syncthreads() before reusing `tmp`.
template <typename F>
__device__ double channel_sum(ChannelReduce::TempStorage& tmp, int n, int channels, int c, int64_t hw, F f) {
  double s = 0;
  for (int i = 0; i < n; ++i) {
    const int64_t base = (int64_t(i) * channels + c) * hw;
    for (int64_t j = threadIdx.x; j < hw; j += blockDim.x) s += f(base + j);
  }
  return ChannelReduce(tmp).Sum(s);
}

// Runs f(plane, channel, index within plane) for every element; launched with a 2-D grid
// (x over a plane, y over the planes), both grid-stride.
template <typename F> __device__ void for_each_channel_element(int64_t planes, int channels, int64_t hw, F f) {
  for (int64_t p = blockIdx.y; p < planes; p += gridDim.y) {
    const int c = int(p % channels);
    for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < hw; j += int64_t(blockDim.x) * gridDim.x)
      f(p, c, j);
  }
}

}  // namespace mriae::cuda
