// The status checks of kernels/cuda/check.h. They need no GPU, so they run in every CUDA build.
#include <doctest/doctest.h>

#include <cublas_v2.h>

#include <string>

#include "kernels/cuda/check.h"

TEST_CASE("a failed CUDA or cuBLAS status throws naming the call, the error, the file and the line") {
  CHECK_NOTHROW(MRIAE_CUDA_CHECK(cudaSuccess));
  const int line = __LINE__ + 2;
  try {
    MRIAE_CUDA_CHECK(cudaErrorInvalidValue);
    FAIL("no exception");
  } catch (const mriae::cuda::Error& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("cudaErrorInvalidValue") != std::string::npos);
    CHECK(m.find("test_cuda_check.cpp:" + std::to_string(line)) != std::string::npos);
  }
  try {
    MRIAE_CUBLAS_CHECK(CUBLAS_STATUS_NOT_INITIALIZED);
    FAIL("no exception");
  } catch (const mriae::cuda::Error& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("cuBLAS call `CUBLAS_STATUS_NOT_INITIALIZED`") != std::string::npos);
    CHECK(m.find("status 1") != std::string::npos);
  }
}
