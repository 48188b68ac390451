#include "io/slice_stack.h"

#include <cstring>
#include <stdexcept>
#include <string>

namespace mriae::io {

SliceStack::SliceStack(int64_t count, int64_t height, int64_t width, HostMemory memory)
    : count_(count), height_(height), width_(width) {
  if (count < 0 || height <= 0 || width <= 0)
    throw std::invalid_argument("slice stack of " + std::to_string(count) + " slices of " + std::to_string(height) +
                                " x " + std::to_string(width));
  const size_t bytes = size_t(count) * size_t(height) * size_t(width) * sizeof(float);
  buffer_ = HostBuffer(bytes, memory);
  if (bytes) std::memset(buffer_.data(), 0, bytes);
}

void SliceStack::copy_slice(int64_t i, float* dst) const {
  if (i < 0 || i >= count_)
    throw std::out_of_range("slice " + std::to_string(i) + " of a stack of " + std::to_string(count_));
  std::memcpy(dst, slice(i), size_t(slice_numel()) * sizeof(float));
}

}  // namespace mriae::io
