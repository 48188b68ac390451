#pragma once
// A caching allocator: freed blocks are kept by size and handed out again, so a training loop whose
// shapes repeat allocates from the system only during its first step. Thread-safe (the loader
// thread allocates too).
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

namespace mriae {

class OutOfMemory : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class CachingAllocator {
 public:
  using RawAlloc = std::function<void*(size_t)>;  // nullptr when the memory is not there; throws on any other failure
  using RawFree = std::function<void(void*)>;
  using FreeBytesQuery = std::function<size_t()>;  // for the out-of-memory message; 0 if unknown

  CachingAllocator(std::string name, RawAlloc alloc, RawFree free, FreeBytesQuery free_bytes = {});
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Throws OutOfMemory naming the request and what is free, after returning cached blocks to the system.
  void* allocate(size_t bytes);
  void release(void* p, size_t bytes);
  // Returns every cached block to the system.
  void empty_cache();

  struct Stats {
    size_t system_allocs = 0;  // calls that reached RawAlloc
    size_t bytes_in_use = 0;
    size_t bytes_cached = 0;
  };
  Stats stats() const;

  static size_t round_size(size_t bytes);

 private:
  void empty_cache_locked();

  std::string name_;
  RawAlloc alloc_;
  RawFree free_;
  FreeBytesQuery free_bytes_;
  mutable std::mutex mu_;
  std::multimap<size_t, void*> cached_;
  Stats stats_;
};

}  // namespace mriae
