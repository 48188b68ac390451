#pragma once
// What the batch loader draws slices from. An interface rather than the concrete slice stack so that
// tests and later data sources (augmentation, streaming) can feed the same loader.
#include <cstdint>

namespace mriae::io {

class SliceSource {
 public:
  virtual ~SliceSource() = default;
  virtual int64_t count() const = 0;
  virtual int64_t height() const = 0;
  virtual int64_t width() const = 0;
  // Writes slice i (height x width floats, row-major) to dst. Called on the loader's background thread,
  // concurrently with nothing else that writes the source; it may throw.
  virtual void copy_slice(int64_t i, float* dst) const = 0;
};

}  // namespace mriae::io
