#include "engine/allocator.h"

#include <sstream>

namespace mriae {

CachingAllocator::CachingAllocator(std::string name, RawAlloc alloc, RawFree free, FreeBytesQuery free_bytes)
    : name_(std::move(name)), alloc_(std::move(alloc)), free_(std::move(free)), free_bytes_(std::move(free_bytes)) {}

CachingAllocator::~CachingAllocator() { empty_cache(); }

size_t CachingAllocator::round_size(size_t bytes) {
  // 512-byte granules keep every block 64-byte aligned for vector loads and make sizes match exactly.
  const size_t g = 512;
  return bytes == 0 ? g : (bytes + g - 1) / g * g;
}

void* CachingAllocator::allocate(size_t bytes) {
  const size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cached_.find(size);
  if (it != cached_.end()) {
    void* p = it->second;
    cached_.erase(it);
    stats_.bytes_cached -= size;
    stats_.bytes_in_use += size;
    return p;
  }
  void* p = alloc_(size);
  if (!p && !cached_.empty()) {
    empty_cache_locked();
    p = alloc_(size);
  }
  if (!p) {
    std::ostringstream msg;
    msg << "out of " << name_ << " memory: asked for " << size << " bytes (" << (size >> 20) << " MiB) with "
        << (stats_.bytes_in_use >> 20) << " MiB in use";
    if (free_bytes_) msg << " and " << (free_bytes_() >> 20) << " MiB free";
    msg << "; try a smaller batch size";
    throw OutOfMemory(msg.str());
  }
  ++stats_.system_allocs;
  stats_.bytes_in_use += size;
  return p;
}

void CachingAllocator::release(void* p, size_t bytes) {
  if (!p) return;
  const size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  cached_.emplace(size, p);
  stats_.bytes_in_use -= size;
  stats_.bytes_cached += size;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  empty_cache_locked();
}

void CachingAllocator::empty_cache_locked() {
  for (auto& [size, p] : cached_) free_(p);
  cached_.clear();
  stats_.bytes_cached = 0;
}

CachingAllocator::Stats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace mriae
