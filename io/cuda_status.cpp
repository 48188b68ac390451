#include "io/cuda_status.h"

#ifdef MRIAE_WITH_CUDA
#include <iostream>

namespace mriae::io {

void report_cuda(cudaError_t status, const char* call, const char* file, int line) noexcept {
  if (status != cudaSuccess)
    std::cerr << "mriae: " << call << " failed: " << cudaGetErrorString(status) << " at " << file << ":" << line
              << "\n";
}

}  // namespace mriae::io
#endif
