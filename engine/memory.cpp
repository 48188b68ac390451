#include "engine/memory.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#ifdef __linux__
#include <sys/mman.h>
#endif

#ifdef MRIAE_WITH_CUDA
#include <cuda_runtime_api.h>

#include "engine/cuda_context.h"
#include "kernels/cuda/check.h"
#endif

namespace mriae {

namespace {

// Host blocks of 2 MiB and more are 2 MiB-aligned and offered to the kernel as transparent huge pages
// (Linux's default THP mode is madvise-only). A convolution tile reads rows from every input channel's plane
// and writes to every output channel's: with 4 KiB pages that is hundreds of pages per tile, more than the
// TLB holds. The advice is only a hint: without THP the memory is ordinary pages.
void* host_alloc(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  if (bytes < kHuge) return std::aligned_alloc(64, bytes);
  void* p = std::aligned_alloc(kHuge, (bytes + kHuge - 1) / kHuge * kHuge);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (p) madvise(p, bytes, MADV_HUGEPAGE);
#endif
  return p;
}

}  // namespace

Context::Context() : host_("host", host_alloc, [](void* p) { std::free(p); }) {}

Context& Context::get() {
  static Context ctx;
  return ctx;
}

#ifdef MRIAE_WITH_CUDA
void Context::init_cuda() {
  // std::call_once retries if this throws (no GPU), so a later call reports the same clear error.
  std::call_once(cuda_once_, [this] {
    auto* context = new CudaContext();
    // The CudaContext is never deleted. Statics are destroyed after the CUDA runtime has begun its own
    // teardown at exit, and destroying cuDNN or cuBLAS handles then can crash; the driver reclaims
    // everything when the process ends.
    cuda_context_ = context;
    cuda_ = std::make_unique<CachingAllocator>(
        "GPU",
        [](size_t bytes) -> void* {
          void* p = nullptr;
          const cudaError_t e = cudaMalloc(&p, bytes);
          if (e == cudaErrorMemoryAllocation) {
            cudaGetLastError();  // clear the out-of-memory error so later calls see a clean state
            return nullptr;      // the allocator frees its cache and retries, then says "try a smaller batch"
          }
          // Anything else (a sticky fault left by an earlier kernel, no device, ...) is not out of memory:
          // reporting it as such would send the user after the wrong cause.
          MRIAE_CUDA_CHECK(e);
          return p;
        },
        // cudaFree waits for the device to be idle, so no queued kernel still uses the block. Its status
        // is not checked: at exit the runtime may already be gone, and there is nothing to do about it.
        [](void* p) { cudaFree(p); },
        []() -> size_t {
          size_t free_b = 0, total = 0;
          return cudaMemGetInfo(&free_b, &total) == cudaSuccess ? free_b : 0;
        });
  });
}

CudaContext& Context::cuda() {
  init_cuda();
  return *cuda_context_;
}
#endif

CachingAllocator& Context::allocator(Device d) {
  if (d == Device::CPU) return host_;
#ifdef MRIAE_WITH_CUDA
  init_cuda();
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
  const cudaStream_t stream = Context::get().cuda().compute_stream();
  MRIAE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream));
  // The host side is pageable memory the caller may read or free as soon as we return.
  if (dst_device == Device::CPU || src_device == Device::CPU) MRIAE_CUDA_CHECK(cudaStreamSynchronize(stream));
#else
  throw std::runtime_error("copy to or from a CUDA tensor in a build without the CUDA backend");
#endif
}

void zero_bytes(void* dst, Device device, size_t bytes) {
  if (bytes == 0) return;
  if (device == Device::CPU) {
    std::memset(dst, 0, bytes);
    return;
  }
#ifdef MRIAE_WITH_CUDA
  MRIAE_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, Context::get().cuda().compute_stream()));
#else
  throw std::runtime_error("zeroing a CUDA tensor in a build without the CUDA backend");
#endif
}

}  // namespace mriae
