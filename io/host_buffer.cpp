#include "io/host_buffer.h"

#include <cstdlib>
#include <new>
#include <stdexcept>
#include <utility>

#include "engine/device.h"
#include "io/cuda_status.h"

namespace mriae::io {

HostBuffer::HostBuffer(size_t bytes, HostMemory kind) : bytes_(bytes) {
  if (bytes == 0) return;
  bool pin = kind == HostMemory::Pinned || (kind == HostMemory::Auto && cuda_available());
  if (pin) {
#ifdef MRIAE_WITH_CUDA
    MRIAE_IO_CUDA_CHECK(cudaHostAlloc(&data_, bytes, cudaHostAllocDefault));
    pinned_ = true;
    return;
#else
    throw std::runtime_error("pinned host memory was asked for, but this build has no CUDA backend");
#endif
  }
  // aligned_alloc wants a multiple of the alignment.
  const size_t rounded = (bytes + 63) / 64 * 64;
  data_ = std::aligned_alloc(64, rounded);
  if (!data_) throw std::bad_alloc();
}

HostBuffer::~HostBuffer() { release(); }

HostBuffer::HostBuffer(HostBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      pinned_(std::exchange(other.pinned_, false)) {}

HostBuffer& HostBuffer::operator=(HostBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    pinned_ = std::exchange(other.pinned_, false);
  }
  return *this;
}

void HostBuffer::release() noexcept {
  if (!data_) return;
  if (pinned_) {
#ifdef MRIAE_WITH_CUDA
    MRIAE_IO_CUDA_REPORT(cudaFreeHost(data_));
#endif
  } else {
    std::free(data_);
  }
  data_ = nullptr;
}

}  // namespace mriae::io
