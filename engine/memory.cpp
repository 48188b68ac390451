#include "engine/memory.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#ifdef MRIAE_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace mriae {

namespace {

#ifdef MRIAE_WITH_CUDA
void check_cuda(cudaError_t e, const char* what, const char* file, int line) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(e) + " at " + file + ":" +
                             std::to_string(line));
}
#define MRIAE_CUDA_CHECK(call) check_cuda((call), #call, __FILE__, __LINE__)
#endif

}  // namespace

Context::Context()
    : host_(
          "host", [](size_t bytes) { return std::aligned_alloc(64, bytes); }, [](void* p) { std::free(p); }) {}

Context& Context::get() {
  static Context ctx;
  return ctx;
}

CachingAllocator& Context::allocator(Device d) {
  if (d == Device::CPU) return host_;
#ifdef MRIAE_WITH_CUDA
  if (!cuda_) {
    if (!cuda_available()) throw std::runtime_error("a CUDA tensor was asked for, but no CUDA GPU is visible");
    cuda_ = std::make_unique<CachingAllocator>(
        "GPU",
        [](size_t bytes) -> void* {
          void* p = nullptr;
          if (cudaMalloc(&p, bytes) != cudaSuccess) {
            cudaGetLastError();  // clear the sticky out-of-memory error so later calls see a clean state
            return nullptr;
          }
          return p;
        },
        [](void* p) { cudaFree(p); },
        []() -> size_t {
          size_t free_b = 0, total = 0;
          return cudaMemGetInfo(&free_b, &total) == cudaSuccess ? free_b : 0;
        });
  }
  return *cuda_;
#else
  throw std::runtime_error("a CUDA tensor was asked for, but this build has no CUDA backend (MRIAE_CUDA=OFF)");
#endif
}

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  data_ = Context::get().allocator(device).allocate(bytes);
}

Storage::~Storage() { Context::get().allocator(device_).release(data_, bytes_); }

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device == Device::CPU && src_device == Device::CPU) {
    std::memcpy(dst, src, bytes);
    return;
  }
#ifdef MRIAE_WITH_CUDA
  MRIAE_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
#else
  throw std::runtime_error("copy to or from a CUDA tensor in a build without the CUDA backend");
#endif
}

void zero_bytes(void* dst, Device device, size_t bytes) {
  if (device == Device::CPU) {
    std::memset(dst, 0, bytes);
    return;
  }
#ifdef MRIAE_WITH_CUDA
  MRIAE_CUDA_CHECK(cudaMemset(dst, 0, bytes));
#else
  throw std::runtime_error("zeroing a CUDA tensor in a build without the CUDA backend");
#endif
}

}  // namespace mriae
