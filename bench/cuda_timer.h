#pragma once
// Times GPU work as llm.c's dev/cuda does: warm-up calls, then many repeats, each timed on its own with
// CUDA events on the stream the work runs on, and the median reported. Before each repeat, outside the
// timed region, a write larger than the L2 cache evicts the inputs, so a kernel reads them from DRAM as it
// does in a training step (where the model's activations are far larger than L2). The flush also keeps the
// GPU busy while the host queues the repeat, so the start event does not fire before the work has been
// launched: the host's launch latency stays out of the measurement (unless the host needs longer to queue
// the work than the GPU needs to write 2x L2, tens of microseconds).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <vector>

#include "kernels/cuda/check.h"

namespace mriae::bench {

class CudaTimer {
 public:
  CudaTimer(cudaStream_t stream, int device) : stream_(stream) {
    cudaDeviceProp prop{};
    MRIAE_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    l2_bytes_ = size_t(prop.l2CacheSize);
    // Twice L2, so no line of the previous repeat survives; 64 MiB where the device reports no L2 size.
    flush_bytes_ = l2_bytes_ ? 2 * l2_bytes_ : size_t(64) << 20;
    MRIAE_CUDA_CHECK(cudaMalloc(&flush_, flush_bytes_));
    try {
      MRIAE_CUDA_CHECK(cudaEventCreate(&start_));
      MRIAE_CUDA_CHECK(cudaEventCreate(&stop_));
    } catch (...) {
      release();
      throw;
    }
  }
  ~CudaTimer() { release(); }
  CudaTimer(const CudaTimer&) = delete;
  CudaTimer& operator=(const CudaTimer&) = delete;

  size_t l2_bytes() const { return l2_bytes_; }
  size_t flush_bytes() const { return flush_bytes_; }

  // Median microseconds of one call of f, which must queue its work on the timer's stream. The first
  // warm-up call also pays for one-time set-up (cuDNN's algorithm search, workspace allocation).
  double median_us(const std::function<void()>& f, int warmup, int repeats) {
    for (int i = 0; i < warmup; ++i) f();
    MRIAE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::vector<double> us;
    us.reserve(size_t(std::max(repeats, 1)));
    for (int r = 0; r < std::max(repeats, 1); ++r) {
      // The value alternates so no repeat's flush could be skipped as a no-op write.
      MRIAE_CUDA_CHECK(cudaMemsetAsync(flush_, (r & 1) ? 0x55 : 0xaa, flush_bytes_, stream_));
      MRIAE_CUDA_CHECK(cudaEventRecord(start_, stream_));
      f();
      MRIAE_CUDA_CHECK(cudaEventRecord(stop_, stream_));
      MRIAE_CUDA_CHECK(cudaEventSynchronize(stop_));
      float ms = 0;
      MRIAE_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
      us.push_back(double(ms) * 1000.0);
    }
    // Surfaces an asynchronous fault of f's kernels here rather than in a later, unrelated call.
    MRIAE_CUDA_CHECK(cudaGetLastError());
    std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
    return us[us.size() / 2];
  }

 private:
  // Never throws: it runs in the destructor.
  void release() noexcept {
    auto report = [](cudaError_t e, const char* call) {
      if (e != cudaSuccess) std::fprintf(stderr, "CudaTimer: %s failed: %s\n", call, cudaGetErrorString(e));
    };
    if (stop_) report(cudaEventDestroy(stop_), "cudaEventDestroy");
    if (start_) report(cudaEventDestroy(start_), "cudaEventDestroy");
    if (flush_) report(cudaFree(flush_), "cudaFree");
    stop_ = start_ = nullptr;
    flush_ = nullptr;
  }

  cudaStream_t stream_;
  size_t l2_bytes_ = 0, flush_bytes_ = 0;
  void* flush_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

}  // namespace mriae::bench
