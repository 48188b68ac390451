#pragma once
// Status checks for CUDA, cuDNN and cuBLAS. A failure throws cuda::Error naming the call, the
// library's message, the file and the line, so a failure deep inside a training step says where it was.
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace mriae::cuda {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const char* library, const char* call, const std::string& detail, const char* file,
                              int line) {
  throw Error(std::string(library) + " call `" + call + "` failed: " + detail + " at " + file + ":" +
              std::to_string(line));
}

inline void check_cuda(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess) fail("CUDA", call, std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e), file, line);
}

// cuDNN and cuBLAS statuses: the macros below pass each library's status-to-text function, so this
// header needs neither library and the .cu files stay light.
template <typename Status, typename ToString>
inline void check_status(Status s, Status ok, ToString to_string, const char* library, const char* call,
                         const char* file, int line) {
  if (s != ok) fail(library, call, std::string(to_string(s)) + " (status " + std::to_string(int(s)) + ")", file, line);
}

}  // namespace mriae::cuda

#define MRIAE_CUDA_CHECK(call) ::mriae::cuda::check_cuda((call), #call, __FILE__, __LINE__)

// After every kernel launch. It catches a bad launch configuration at once; a fault inside the kernel
// surfaces at the next synchronising call (run with CUDA_LAUNCH_BLOCKING=1 to pin it to its launch).
#define MRIAE_CUDA_CHECK_LAUNCH(kernel) \
  ::mriae::cuda::check_cuda(cudaGetLastError(), "launch of " #kernel, __FILE__, __LINE__)

// Usable only where <cudnn.h> is included (kernels/cuda/conv_cudnn.cpp).
#define MRIAE_CUDNN_CHECK(call) \
  ::mriae::cuda::check_status((call), CUDNN_STATUS_SUCCESS, cudnnGetErrorString, "cuDNN", #call, __FILE__, __LINE__)

// Usable only where <cublas_v2.h> is included.
#define MRIAE_CUBLAS_CHECK(call)                                                                                \
  ::mriae::cuda::check_status((call), CUBLAS_STATUS_SUCCESS, cublasGetStatusString, "cuBLAS", #call, __FILE__, \
                              __LINE__)
