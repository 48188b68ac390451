#pragma once
// The device's peaks as measured in the same run as the kernels, so "% of peak" compares like with like
// (same GPU, clocks, driver): DRAM bandwidth from a large device-to-device copy, arithmetic from a large
// cuBLAS SGEMM, once in strict FP32 and once with TF32 tensor cores allowed. These are what vendor
// libraries achieve, not the datasheet's figures, which no real kernel reaches.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>

#include "bench/bench_check.h"
#include "bench/cuda_timer.h"
#include "engine/tensor.h"
#include "kernels/cuda/check.h"

namespace mriae::bench {

struct DevicePeaks {
  size_t copy_bytes = 0;
  int gemm_n = 0;
  double copy_gbps = 0;          // (read + write) bytes / s, in 1e9
  double sgemm_fp32_tflops = 0;  // 2 n^3 / s, in 1e12
  double sgemm_tf32_tflops = 0;
};

namespace detail {

// A cuBLAS handle of our own, so its math mode can be switched without touching the engine's.
class CublasHandle {
 public:
  explicit CublasHandle(cudaStream_t stream) {
    MRIAE_CUBLAS_CHECK(cublasCreate(&h_));
    try {
      MRIAE_CUBLAS_CHECK(cublasSetStream(h_, stream));
    } catch (...) {
      destroy(h_);
      throw;
    }
  }
  ~CublasHandle() { destroy(h_); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return h_; }

 private:
  // Never throws: it runs in the destructor and while another error propagates.
  static void destroy(cublasHandle_t h) noexcept {
    const cublasStatus_t s = cublasDestroy(h);
    if (s != CUBLAS_STATUS_SUCCESS) std::fprintf(stderr, "cublasDestroy failed: %s\n", cublasGetStatusString(s));
  }

  cublasHandle_t h_ = nullptr;
};

}  // namespace detail

// copy_bytes per buffer (two are allocated), n x n x n SGEMM (three n x n matrices).
inline DevicePeaks measure_peaks(CudaTimer& timer, cudaStream_t stream, size_t copy_bytes, int gemm_n) {
  constexpr int kWarmup = 2, kRepeats = 10;
  DevicePeaks p;
  p.copy_bytes = copy_bytes;
  p.gemm_n = gemm_n;
  {
    const int64_t n = int64_t(copy_bytes / sizeof(float));
    const Tensor src = Tensor::zeros({n}, Device::CUDA), dst = Tensor::empty({n}, Device::CUDA);
    const double us = timer.median_us(
        [&] {
          MRIAE_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), copy_bytes, cudaMemcpyDeviceToDevice, stream));
        },
        kWarmup, kRepeats);
    p.copy_gbps = 2.0 * double(copy_bytes) / (us * 1e-6) / 1e9;  // each byte is read once and written once
  }
  {
    const int64_t nn = int64_t(gemm_n) * gemm_n;
    // Random operands: constant ones would toggle fewer bits and could let the clocks run higher.
    const Tensor a = Tensor::from_vector({nn}, random_values(nn, 1), Device::CUDA),
                 b = Tensor::from_vector({nn}, random_values(nn, 2), Device::CUDA),
                 c = Tensor::empty({nn}, Device::CUDA);
    detail::CublasHandle h(stream);
    const float one = 1.0f, zero = 0.0f;
    auto sgemm = [&] {
      MRIAE_CUBLAS_CHECK(cublasSgemm(h.get(), CUBLAS_OP_N, CUBLAS_OP_N, gemm_n, gemm_n, gemm_n, &one, a.data(), gemm_n,
                                     b.data(), gemm_n, &zero, c.data(), gemm_n));
    };
    const double flops = 2.0 * double(gemm_n) * double(gemm_n) * double(gemm_n);
    // CUBLAS_DEFAULT_MATH computes in at least the precision asked for: FP32 multiplies, no TF32.
    MRIAE_CUBLAS_CHECK(cublasSetMathMode(h.get(), CUBLAS_DEFAULT_MATH));
    p.sgemm_fp32_tflops = flops / (timer.median_us(sgemm, kWarmup, kRepeats) * 1e-6) / 1e12;
    MRIAE_CUBLAS_CHECK(cublasSetMathMode(h.get(), CUBLAS_TF32_TENSOR_OP_MATH));
    p.sgemm_tf32_tflops = flops / (timer.median_us(sgemm, kWarmup, kRepeats) * 1e-6) / 1e12;
    MRIAE_CUDA_CHECK(cudaStreamSynchronize(stream));  // before the operands go back to the allocator
  }
  return p;
}

}  // namespace mriae::bench
