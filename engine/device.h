#pragma once
#include <string>

#include "engine/dtype.h"

namespace mriae {

enum class Device { CPU, CUDA };

const char* device_name(Device d);
// Parses "cpu" or "cuda"; throws std::invalid_argument naming the bad value.
Device parse_device(const std::string& name);

// True when this build has the CUDA backend and the runtime reports at least one usable GPU.
bool cuda_available();
// "auto" picks CUDA when available, else the CPU; "cuda" without a GPU is an error that says so.
Device resolve_device(const std::string& request);
// The same for a model of `dtype`: float64 runs on the CPU only, so "auto" then picks the CPU and "cuda" is
// an error that says so.
Device resolve_device(const std::string& request, DType dtype);

// Numerics of the CUDA backend; without one (or without a GPU) these calls do nothing.
struct GpuOptions {
  bool deterministic = false;  // bit-identical runs: only cuDNN algorithms marked deterministic
  bool tf32 = false;           // TF32 tensor cores in the convolutions; off: strict FP32
};
void configure_gpu(const GpuOptions& options);
// The cudaStream_t every GPU op runs on (as void*, so callers need no CUDA header), or nullptr.
void* gpu_compute_stream();

}  // namespace mriae
