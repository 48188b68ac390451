#pragma once
// Host memory for slices and staged batches: page-locked (pinned) when a GPU will read it, since only
// pinned memory can be the source of an asynchronous host-to-device copy, else ordinary aligned memory.
#include <cstddef>

namespace mriae::io {

enum class HostMemory {
  Auto,      // pinned when this is a CUDA build and a GPU is present at run time, else pageable
  Pinned,    // cudaHostAlloc; an error without a GPU
  Pageable,  // 64-byte aligned ordinary memory
};

class HostBuffer {
 public:
  HostBuffer() = default;
  // Throws std::bad_alloc (pageable) or std::runtime_error naming the CUDA call (pinned) on failure.
  HostBuffer(size_t bytes, HostMemory kind);
  ~HostBuffer();
  HostBuffer(HostBuffer&& other) noexcept;
  HostBuffer& operator=(HostBuffer&& other) noexcept;
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  float* floats() const { return static_cast<float*>(data_); }
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  bool pinned() const { return pinned_; }

 private:
  void release() noexcept;

  void* data_ = nullptr;
  size_t bytes_ = 0;
  bool pinned_ = false;
};

}  // namespace mriae::io
