#pragma once
// Turns a failed CUDA runtime call into an exception naming the call, the file and the line.
// Only for translation units of CUDA builds; the engine keeps its own copy private to memory.cpp.
#ifdef MRIAE_WITH_CUDA
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace mriae::io {

inline void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string(call) + " failed: " + cudaGetErrorString(status) + " at " + file + ":" +
                             std::to_string(line));
}

// For destructors, which must not throw: the failure is reported on stderr instead.
void report_cuda(cudaError_t status, const char* call, const char* file, int line) noexcept;

}  // namespace mriae::io

#define MRIAE_IO_CUDA_CHECK(call) ::mriae::io::check_cuda((call), #call, __FILE__, __LINE__)
#define MRIAE_IO_CUDA_REPORT(call) ::mriae::io::report_cuda((call), #call, __FILE__, __LINE__)
#endif
