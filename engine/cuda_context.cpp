#include "engine/cuda_context.h"

#include <cublas_v2.h>

#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "engine/collectives.h"
#include "kernels/cuda/check.h"

namespace mriae {

namespace {

// For the destructor, which must not throw.
void report(cudaError_t e, const char* call) noexcept {
  if (e != cudaSuccess) std::fprintf(stderr, "mriae: %s failed: %s\n", call, cudaGetErrorString(e));
}
void report(cublasStatus_t s, const char* call) noexcept {
  if (s != CUBLAS_STATUS_SUCCESS) std::fprintf(stderr, "mriae: %s failed: %s\n", call, cublasGetStatusString(s));
}

cublasMath_t cublas_math(const CudaOptions& o) { return o.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH; }

}  // namespace

CudaContext::CudaContext() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError();  // leave no sticky error behind for the CPU path that may run next
    throw std::runtime_error(std::string("a CUDA tensor was asked for, but no CUDA GPU is visible to this process") +
                             (e != cudaSuccess ? std::string(" (") + cudaGetErrorString(e) + ")" : std::string()));
  }
  try {
    // One GPU per rank: local rank k takes the node's visible GPU k (NCCL refuses two ranks on one GPU, so
    // more ranks than GPUs on a node is an error there, named by ncclCommInitRank). A launcher that gives each
    // rank its own CUDA_VISIBLE_DEVICES leaves one visible, device 0. The current device is per host thread;
    // every thread that uses the GPU must set this one.
    device_ = launcher_local_rank() % count;
    MRIAE_CUDA_CHECK(cudaSetDevice(device_));
    // Non-blocking: no implicit synchronisation with the legacy default stream, which nothing here uses.
    MRIAE_CUDA_CHECK(cudaStreamCreateWithFlags(&compute_, cudaStreamNonBlocking));
    MRIAE_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_, cudaStreamNonBlocking));
    MRIAE_CUDA_CHECK(cudaEventCreateWithFlags(&copy_done_, cudaEventDisableTiming));
  } catch (...) {
    if (copy_done_) report(cudaEventDestroy(copy_done_), "cudaEventDestroy");
    if (copy_) report(cudaStreamDestroy(copy_), "cudaStreamDestroy");
    if (compute_) report(cudaStreamDestroy(compute_), "cudaStreamDestroy");
    throw;
  }
}

CudaContext::~CudaContext() {
  report(cudaStreamSynchronize(compute_), "cudaStreamSynchronize");
  conv_.reset();
  workspace_.reset();
  cuda::cudnn_destroy(cudnn_);
  if (cublas_) report(cublasDestroy(cublas_), "cublasDestroy");
  report(cudaEventDestroy(copy_done_), "cudaEventDestroy");
  report(cudaStreamDestroy(copy_), "cudaStreamDestroy");
  report(cudaStreamDestroy(compute_), "cudaStreamDestroy");
}

cudnnContext* CudaContext::cudnn() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!cudnn_) cudnn_ = cuda::cudnn_create(compute_);
  return cudnn_;
}

cublasContext* CudaContext::cublas() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!cublas_) {
    cublasHandle_t h = nullptr;
    MRIAE_CUBLAS_CHECK(cublasCreate(&h));
    try {
      MRIAE_CUBLAS_CHECK(cublasSetStream(h, compute_));
      MRIAE_CUBLAS_CHECK(cublasSetMathMode(h, cublas_math(options_)));
    } catch (...) {
      report(cublasDestroy(h), "cublasDestroy");
      throw;
    }
    cublas_ = h;
  }
  return cublas_;
}

cuda::Conv3x3& CudaContext::conv() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!conv_) {
    if (!cudnn_) cudnn_ = cuda::cudnn_create(compute_);
    conv_ = std::make_unique<cuda::Conv3x3>(
        cudnn_, [this](size_t bytes) { return conv_workspace(bytes); }, conv_options());
  }
  return *conv_;
}

cuda::ConvOptions CudaContext::conv_options() const {
  cuda::ConvOptions o;
  o.deterministic = options_.deterministic;
  o.tf32 = options_.tf32;
  o.max_workspace_bytes = options_.max_conv_workspace_bytes;
  return o;
}

void CudaContext::set_options(const CudaOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  options_ = options;
  if (conv_) conv_->set_options(conv_options());
  if (cublas_) MRIAE_CUBLAS_CHECK(cublasSetMathMode(cublas_, cublas_math(options_)));
}

void* CudaContext::conv_workspace(size_t bytes) {
  if (!workspace_ || workspace_->bytes() < bytes) {
    // Released first, so the allocator may hand its memory back to the system if the larger block does
    // not fit. Stream order makes the swap safe: earlier users of the old block are queued ahead.
    workspace_.reset();
    workspace_ = std::make_unique<Storage>(bytes, Device::CUDA);
  }
  return workspace_->data();
}

void CudaContext::synchronize() { MRIAE_CUDA_CHECK(cudaStreamSynchronize(compute_)); }

void CudaContext::join_copy_stream() {
  MRIAE_CUDA_CHECK(cudaEventRecord(copy_done_, copy_));
  MRIAE_CUDA_CHECK(cudaStreamWaitEvent(compute_, copy_done_, 0));
}

std::string CudaContext::describe() {
  cudaDeviceProp prop{};
  MRIAE_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
  int driver = 0, runtime = 0;
  MRIAE_CUDA_CHECK(cudaDriverGetVersion(&driver));
  MRIAE_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  std::ostringstream o;
  o << prop.name << " (compute capability " << prop.major << '.' << prop.minor << ", " << prop.multiProcessorCount
    << " SMs, " << (prop.totalGlobalMem >> 20) << " MiB), driver CUDA " << driver / 1000 << '.' << (driver % 1000) / 10
    << ", runtime " << runtime / 1000 << '.' << (runtime % 1000) / 10 << ", cuDNN " << cuda::cudnn_version();
  return o.str();
}

}  // namespace mriae
