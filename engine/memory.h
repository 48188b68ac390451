#pragma once
// Raw memory on each device, through the device context's caching allocators.
#include <cstddef>
#include <memory>
#include <mutex>

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

// Copies bytes between any two devices. GPU work is queued on the compute stream; a copy with a host
// side returns only when it is done, so the host may read or free its buffer at once.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
// Zeroes bytes; on the GPU queued on the compute stream (ordered before every later op).
void zero_bytes(void* dst, Device device, size_t bytes);

#ifdef MRIAE_WITH_CUDA
class CudaContext;
#endif

// The device context: the one piece of process-wide state. It owns the allocators and, with the CUDA
// backend, the CudaContext (streams, library handles, convolution plans), all created on first use.
class Context {
 public:
  static Context& get();
  CachingAllocator& allocator(Device d);
#ifdef MRIAE_WITH_CUDA
  // Throws when no GPU is visible.
  CudaContext& cuda();
#endif

 private:
  Context();
  CachingAllocator host_;
#ifdef MRIAE_WITH_CUDA
  void init_cuda();
  std::once_flag cuda_once_;
  CudaContext* cuda_context_ = nullptr;  // deliberately never deleted: see memory.cpp
  std::unique_ptr<CachingAllocator> cuda_;
#endif
};

}  // namespace mriae
