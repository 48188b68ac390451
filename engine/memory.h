#pragma once
// Raw memory on each device, through the device context's caching allocators.
#include <cstddef>
#include <memory>

#include "engine/allocator.h"
#include "engine/device.h"

namespace mriae {

// A block of device or host memory, returned to its allocator's cache when the last owner lets go.
class Storage {
 public:
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
};

// Copies bytes between any two devices; synchronous with respect to the host.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
void zero_bytes(void* dst, Device device, size_t bytes);

// The device context: the one piece of process-wide state. It owns the allocators (and, with the CUDA
// backend, the streams and library handles).
class Context {
 public:
  static Context& get();
  CachingAllocator& allocator(Device d);

 private:
  Context();
  CachingAllocator host_;
  std::unique_ptr<CachingAllocator> cuda_;
};

}  // namespace mriae
