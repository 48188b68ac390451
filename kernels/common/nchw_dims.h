#pragma once
// The shape of an NCHW activation as both backends' kernels see it: kernels/cpu and kernels/cuda are
// siblings, so the shape they share lives here rather than in either.
#include <cstdint>

namespace mriae {

struct NchwDims {
  int n = 0, c = 0, h = 0, w = 0;
  int64_t plane() const { return int64_t(h) * w; }
  int64_t count() const { return int64_t(n) * c * h * w; }
};

}  // namespace mriae
