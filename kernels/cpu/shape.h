#pragma once
#include <cstdint>

namespace mriae::cpu {

// Dimensions of an NCHW activation as the kernels see them.
struct Dims {
  int n = 0, c = 0, h = 0, w = 0;
  int64_t plane() const { return int64_t(h) * w; }
  int64_t count() const { return int64_t(n) * c * h * w; }
};

}  // namespace mriae::cpu
