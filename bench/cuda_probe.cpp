// Prints what a CUDA build of mriae meets at run time, for the GPU suite's probe: the cuDNN it was compiled
// against (header) and the one the loader found (cudnnGetVersion, and the file it came from), the CUDA
// runtime and driver versions, and every GPU with its compute capability. Needs no GPU: cuDNN's and the
// runtime's versions are known without one.
//
// Exit status: 0 when cuDNN loaded with the major version of its header (GPUs or not), 1 otherwise.
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <dlfcn.h>

#include <cstdio>

namespace {

void print_version(const char* what, size_t v) {
  std::printf("%s %zu.%zu.%zu\n", what, v / 10000, (v % 10000) / 100, v % 100);
}

// The file a function was loaded from, as the dynamic loader resolved it (RUNPATH, LD_LIBRARY_PATH, ...).
const char* library_of(const void* function) {
  Dl_info info{};
  return dladdr(function, &info) != 0 && info.dli_fname != nullptr ? info.dli_fname : "unknown";
}

}  // namespace

int main() {
  int status = 0;
  std::printf("cudnn header: %d.%d.%d\n", CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL);
  const size_t cudnn = cudnnGetVersion();
  print_version("cudnn runtime (cudnnGetVersion):", cudnn);
  std::printf("cudnn library: %s\n", library_of(reinterpret_cast<const void*>(&cudnnGetVersion)));
  if (cudnn / 10000 != CUDNN_MAJOR) {
    std::printf("ERROR: cuDNN %zu at run time, built for %d\n", cudnn / 10000, CUDNN_MAJOR);
    status = 1;
  } else if ((cudnn % 10000) / 100 < CUDNN_MINOR) {
    std::printf("WARNING: cuDNN at run time is older than the headers it was built with\n");
  }
  const size_t cudnn_cudart = cudnnGetCudartVersion();
  std::printf("cudnn built with CUDA: %zu.%zu\n", cudnn_cudart / 1000, (cudnn_cudart % 1000) / 10);

  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  // Within one major version cuDNN runs on an older runtime (minor version compatibility), but a failure
  // to load kernels on the GPU would point here first.
  if (cudnn_cudart / 1000 != size_t(runtime) / 1000)
    std::printf("WARNING: cuDNN was built for CUDA %zu, the runtime is CUDA %d\n", cudnn_cudart / 1000, runtime / 1000);
  else if (cudnn_cudart > size_t(runtime))
    std::printf("note: cuDNN was built with a newer CUDA minor version than this runtime's\n");
  const cudaError_t driver_error = cudaDriverGetVersion(&driver);
  std::printf("cuda runtime: %d.%d (%s)\n", runtime / 1000, (runtime % 1000) / 10,
              library_of(reinterpret_cast<const void*>(&cudaRuntimeGetVersion)));
  if (driver_error != cudaSuccess || driver == 0)
    std::printf("cuda driver: none (%s)\n", driver_error != cudaSuccess ? cudaGetErrorString(driver_error) : "no driver");
  else
    std::printf("cuda driver: supports CUDA %d.%d\n", driver / 1000, (driver % 1000) / 10);

  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    std::printf("gpus: none (cudaGetDeviceCount: %s)\n", cudaGetErrorString(e));
    return status;
  }
  std::printf("gpus: %d\n", count);
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, d) != cudaSuccess) {
      std::printf("gpu %d: properties not readable\n", d);
      status = 1;
      continue;
    }
    std::printf("gpu %d: %s, compute capability %d.%d, %d SMs, %.1f GiB, L2 %d MiB\n", d, p.name, p.major, p.minor,
                p.multiProcessorCount, double(p.totalGlobalMem) / double(1ull << 30), p.l2CacheSize >> 20);
  }
  return status;
}
