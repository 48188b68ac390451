#pragma once
// Launch geometry shared by the kernels. Every element-wise kernel loops grid-stride, so any grid is
// correct and the cap only bounds the number of blocks.
#include <algorithm>
#include <cstdint>

#include "kernels/common/nchw_dims.h"

namespace mriae::cuda {

constexpr int kThreads = 256;

// Blocks for n > 0 items at `threads` per block (callers return early when n == 0: an empty grid is
// a launch error).
inline unsigned grid_for(int64_t n, int threads = kThreads, int64_t cap = 32768) {
  return unsigned(std::min<int64_t>((n + threads - 1) / threads, cap));
}

}  // namespace mriae::cuda
