#pragma once
// The GPU half of the device context (engine/memory.h's Context owns it): one CUDA device, a compute
// stream and a copy stream, the cuDNN and cuBLAS handles bound to the compute stream, the convolution
// plans and their workspace. Only in builds with MRIAE_WITH_CUDA.
//
// Stream discipline: every op, copy and memset runs on the compute stream. The caching allocator hands
// a freed block out again while kernels that used it may still be queued; that is safe only because the
// next user is queued behind them on the same stream. Work put on the copy stream must be joined
// (join_copy_stream) before the compute stream touches its buffers, and its buffers kept alive until then.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

#include "engine/memory.h"
#include "kernels/cuda/conv_cudnn.h"

struct cublasContext;  // cuBLAS's handle is cublasContext* (cublasHandle_t)

namespace mriae {

struct CudaOptions {
  bool deterministic = false;  // bit-identical results from run to run (cuDNN algorithms marked deterministic)
  bool tf32 = false;           // TF32 tensor cores in convolutions and cuBLAS; off: strict FP32
  size_t max_conv_workspace_bytes = size_t(1) << 30;
};

class CudaContext {
 public:
  // Selects device 0 (CUDA_VISIBLE_DEVICES chooses which GPU that is) and creates the streams. Throws
  // when no GPU is visible.
  CudaContext();
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  int device() const { return device_; }
  cudaStream_t compute_stream() const { return compute_; }
  cudaStream_t copy_stream() const { return copy_; }
  // Created on first use, bound to the compute stream.
  cudnnContext* cudnn();
  cublasContext* cublas();
  cuda::Conv3x3& conv();

  // Applies to the convolutions (dropping their cached algorithm choices) and to cuBLAS's math mode.
  void set_options(const CudaOptions& options);
  const CudaOptions& options() const { return options_; }

  // Blocks the host until the compute stream's work is done; surfaces any asynchronous kernel error.
  void synchronize();
  // Queues, on the compute stream, a wait for everything queued so far on the copy stream.
  void join_copy_stream();

  // One line: GPU name, compute capability, memory, driver, runtime and cuDNN versions.
  std::string describe();

 private:
  void* conv_workspace(size_t bytes);
  cuda::ConvOptions conv_options() const;

  int device_ = 0;
  cudaStream_t compute_ = nullptr, copy_ = nullptr;
  cudaEvent_t copy_done_ = nullptr;
  std::mutex mu_;  // guards the lazy creation below
  cudnnContext* cudnn_ = nullptr;
  cublasContext* cublas_ = nullptr;
  std::unique_ptr<cuda::Conv3x3> conv_;
  std::unique_ptr<Storage> workspace_;
  CudaOptions options_;
};

}  // namespace mriae
