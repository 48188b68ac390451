#include "engine/device.h"

#include <stdexcept>

#ifdef MRIAE_WITH_CUDA
#include <cuda_runtime_api.h>

#include "engine/cuda_context.h"
#endif

namespace mriae {

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::CPU;
  if (name == "cuda") return Device::CUDA;
  throw std::invalid_argument("unknown device '" + name + "' (expected cpu or cuda)");
}

bool cuda_available() {
#ifdef MRIAE_WITH_CUDA
  int n = 0;
  // Any error here (no driver, no device) means: no GPU for us. The CPU path then runs.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return n > 0;
#else
  return false;
#endif
}

Device resolve_device(const std::string& request) {
  if (request == "auto") return cuda_available() ? Device::CUDA : Device::CPU;
  const Device d = parse_device(request);
  if (d == Device::CUDA && !cuda_available()) {
#ifdef MRIAE_WITH_CUDA
    throw std::runtime_error("--device cuda was asked for, but no CUDA GPU is visible to this process");
#else
    throw std::runtime_error("--device cuda was asked for, but this build has no CUDA backend (MRIAE_CUDA=OFF)");
#endif
  }
  return d;
}

Device resolve_device(const std::string& request, DType dtype) {
  if (dtype == DType::Float32) return resolve_device(request);
  if (request == "auto") return Device::CPU;
  const Device d = parse_device(request);
  if (d == Device::CUDA)
    throw std::invalid_argument(std::string("--dtype ") + dtype_name(dtype) +
                                " runs on the CPU only (the CUDA backend computes in float32): use --device cpu");
  return d;
}

void configure_gpu(const GpuOptions& options) {
#ifdef MRIAE_WITH_CUDA
  if (!cuda_available()) return;
  CudaOptions o = Context::get().cuda().options();
  o.deterministic = options.deterministic;
  o.tf32 = options.tf32;
  Context::get().cuda().set_options(o);
#else
  (void)options;
#endif
}

void* gpu_compute_stream() {
#ifdef MRIAE_WITH_CUDA
  if (cuda_available()) return Context::get().cuda().compute_stream();
#endif
  return nullptr;
}

}  // namespace mriae
