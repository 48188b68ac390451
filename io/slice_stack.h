#pragma once
// A stack of equally sized 2-D float32 slices in one contiguous host buffer, [count][height][width]
// row-major: the in-memory form of a data set, pinned when a GPU is present so the loader's copies can
// run asynchronously.
#include <cstdint>

#include "io/host_buffer.h"
#include "io/slice_source.h"

namespace mriae::io {

class SliceStack final : public SliceSource {
 public:
  SliceStack() = default;
  // Zero-filled.
  SliceStack(int64_t count, int64_t height, int64_t width, HostMemory memory = HostMemory::Auto);

  int64_t count() const override { return count_; }
  int64_t height() const override { return height_; }
  int64_t width() const override { return width_; }
  int64_t slice_numel() const { return height_ * width_; }
  bool pinned() const { return buffer_.pinned(); }

  float* slice(int64_t i) { return buffer_.floats() + i * slice_numel(); }
  const float* slice(int64_t i) const { return buffer_.floats() + i * slice_numel(); }
  void copy_slice(int64_t i, float* dst) const override;

 private:
  HostBuffer buffer_;
  int64_t count_ = 0, height_ = 0, width_ = 0;
};

}  // namespace mriae::io
