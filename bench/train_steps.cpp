// Runs N training steps of the autoencoder on random data and reports the loss and time of each: the
// workload for compute-sanitizer in bench/gpu_suite.sh, and a whole-step benchmark.
//
//   train_steps [--device cpu|cuda|auto] [--dtype float32|float64] [--steps N] [--batch N] [--size S]
//               [--seed N] [--eval-steps N] [--deterministic] [--tf32] [--quiet] [--json]
//
// --eval-steps N then times N inference passes on the same batch (forward with the moving statistics and
// the loss, as validation runs in training): an epoch's validation part.
// --json prints one line for bench/run_cpu.sh and bench/run_gpu.sh: the median step time over steps 2..N
// and images/s, and the same for the inference passes 2..N when asked for.
// Without --json it ends with a checksum line: the bits of every step's loss and of the trained parameters
// (FNV-1a), for gpu_suite.sh to compare two --deterministic runs bit for bit.
// Exit status 77 when --device cuda is asked for and no GPU can be used.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/random.h"
#include "engine/rmsprop.h"
#include "model/autoencoder.h"
#include "model/training_step.h"
#ifdef MRIAE_WITH_CUDA
#include "engine/cuda_context.h"
#endif

namespace {

struct Args {
  std::string device = "auto";
  std::string dtype = "float32";
  int steps = 5, batch = 4, size = 176, eval_steps = 0;
  uint64_t seed = 13;
  bool deterministic = false, tf32 = false, quiet = false, json = false;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "train_steps: %s\nusage: train_steps [--device cpu|cuda|auto] [--dtype float32|float64] [--steps N] [--batch N] [--size S] "
               "[--seed N] [--eval-steps N] [--deterministic] [--tf32] [--quiet] [--json]\n",
               why);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + k).c_str());
      return argv[++i];
    };
    auto positive = [&]() {
      const std::string v = value();
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (*end != '\0' || n <= 0 || n > 1000000) usage((k + " needs a positive integer, got '" + v + "'").c_str());
      return int(n);
    };
    if (k == "--device") a.device = value();
    else if (k == "--dtype") a.dtype = value();
    else if (k == "--steps") a.steps = positive();
    else if (k == "--batch") a.batch = positive();
    else if (k == "--size") a.size = positive();
    else if (k == "--seed") a.seed = uint64_t(positive());
    else if (k == "--eval-steps") a.eval_steps = positive();
    else if (k == "--deterministic") a.deterministic = true;
    else if (k == "--tf32") a.tf32 = true;
    else if (k == "--quiet") a.quiet = true;
    else if (k == "--json") a.json = a.quiet = true;
    else usage(("unknown argument '" + k + "'").c_str());
  }
  if (a.size % 4 != 0) usage("--size must be a multiple of 4");
  return a;
}

// Median milliseconds of the calls after the first (which pays for allocations and algorithm choice).
double median_after_first(std::vector<double> ms) {
  if (ms.size() > 1) ms.erase(ms.begin());
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// FNV-1a over the bits of each float: equal only when every value is equal bit for bit.
struct Fnv1a {
  uint64_t h = 1469598103934665603ull;
  // The bytes of a value in the model's own precision (a float32 model's loss is hashed as a float).
  template <typename T>
  void add(T v) {
    unsigned char bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));
    for (unsigned char b : bytes) h = (h ^ b) * 1099511628211ull;
  }
};

}  // namespace

int main(int argc, char** argv) {
  using namespace mriae;
  const Args a = parse(argc, argv);
  if (a.device == "cuda" && !cuda_available()) {
#ifdef MRIAE_WITH_CUDA
    std::fprintf(stderr, "train_steps: --device cuda, but no CUDA GPU is visible to this process: skipped\n");
#else
    std::fprintf(stderr, "train_steps: --device cuda, but this build has no CUDA backend: skipped\n");
#endif
    return 77;
  }
  try {
    const DType dtype = parse_dtype(a.dtype);
    const Device device = resolve_device(a.device, dtype);
    if (!a.json) std::printf("device: %s", device_name(device));
#ifdef MRIAE_WITH_CUDA
    if (device == Device::CUDA) {
      CudaOptions o;
      o.deterministic = a.deterministic;
      o.tf32 = a.tf32;
      Context::get().cuda().set_options(o);
      if (!a.json) std::printf(" -- %s", Context::get().cuda().describe().c_str());
    }
#endif
    if (!a.json)
      std::printf("\nbatch %d, %dx%d, %d steps%s%s\n", a.batch, a.size, a.size, a.steps,
                  a.deterministic ? ", deterministic" : "", a.tf32 ? ", TF32 allowed" : "");

    AutoencoderConfig config;
    config.seed = a.seed;
    config.device = device;
    config.dtype = dtype;
    Autoencoder model(config);
    RMSprop opt(model.parameters(), RMSpropOptions{});

    // Images in [0, 1), like the normalised MRI slices; the autoencoder's target is its input.
    Rng rng(a.seed + 1);
    std::vector<float> host(size_t(a.batch) * size_t(a.size) * size_t(a.size));
    for (float& v : host) v = float(rng.uniform());
    const Tensor batch = model.input(Tensor::from_vector({a.batch, 1, a.size, a.size}, host, device));

    std::vector<double> ms;
    size_t allocs_after_first = 0;
    double last_loss = 0;
    Fnv1a loss_bits;
    for (int step = 1; step <= a.steps; ++step) {
      const auto t0 = std::chrono::steady_clock::now();
      const double l = train_step(model, opt, batch);  // waits for the step's GPU work (the loss is read back)
      last_loss = l;
      if (dtype == DType::Float64) loss_bits.add(l);
      else loss_bits.add(float(l));
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      if (step == 1 && device == Device::CUDA)
        allocs_after_first = Context::get().allocator(device).stats().system_allocs;
      if (!a.quiet) std::printf("step %d loss %.7g time %.2f ms\n", step, double(l), ms.back());
      if (!std::isfinite(l)) {
        std::fprintf(stderr, "train_steps: loss is not finite at step %d\n", step);
        return 1;
      }
    }
    // Inference passes as validation runs them in training: forward with the moving statistics, and the
    // loss read back (which waits for the GPU).
    std::vector<double> eval_ms;
    for (int step = 1; step <= a.eval_steps; ++step) {
      const auto t0 = std::chrono::steady_clock::now();
      const float l = mse_loss(nullptr, model.forward(nullptr, Var(batch), false), batch).value().item();
      eval_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      if (!a.quiet) std::printf("eval %d loss %.7g time %.2f ms\n", step, double(l), eval_ms.back());
    }

    const char* precision = dtype == DType::Float64 ? "fp64" : device == Device::CUDA && a.tf32 ? "tf32" : "fp32";
    if (a.json) {
      const double median_s = median_after_first(ms) / 1000.0;
      std::printf("{\"engine\": \"mriae-%s\", \"precision\": \"%s\", \"threads\": %d, \"batch\": %d, "
                  "\"size\": %d, \"steps\": %zu, \"median_step_s\": %.5f, \"images_per_s\": %.3f, "
                  "\"last_loss\": %.6f",
                  device_name(device), precision, omp_get_max_threads(), a.batch, a.size,
                  ms.size() > 1 ? ms.size() - 1 : ms.size(), median_s, a.batch / median_s, double(last_loss));
      if (!eval_ms.empty()) {
        const double eval_s = median_after_first(eval_ms) / 1000.0;
        std::printf(", \"eval_steps\": %zu, \"eval_median_s\": %.5f, \"eval_images_per_s\": %.3f",
                    eval_ms.size() > 1 ? eval_ms.size() - 1 : eval_ms.size(), eval_s, a.batch / eval_s);
      }
      std::printf("}\n");
    } else if (ms.size() > 1) {
      double sum = 0;
      for (size_t i = 1; i < ms.size(); ++i) sum += ms[i];
      const double mean = sum / double(ms.size() - 1);
      std::printf("mean step time (steps 2-%d): %.2f ms, %.1f images/s\n", a.steps, mean, 1000.0 * a.batch / mean);
      if (eval_ms.size() > 1) {
        const double eval = median_after_first(eval_ms);
        std::printf("median inference pass (passes 2-%d): %.2f ms, %.1f images/s\n", a.eval_steps, eval,
                    1000.0 * a.batch / eval);
      }
    }
    if (!a.json) {
      Fnv1a param_bits;
      const Tensor flat = model.parameters().flat_values();
      if (dtype == DType::Float64)
        for (const double v : flat.to_vector<double>()) param_bits.add(v);
      else
        for (const float v : flat.to_vector()) param_bits.add(v);
      std::printf("checksum: losses %016llx parameters %016llx (FNV-1a of the values' bits; last loss %a)\n",
                  static_cast<unsigned long long>(loss_bits.h), static_cast<unsigned long long>(param_bits.h),
                  double(last_loss));
    }
    if (device == Device::CUDA) {
      const auto s = Context::get().allocator(device).stats();
      std::printf("GPU memory: %zu MiB in use, %zu MiB cached; system allocations after step 1: %zu\n",
                  s.bytes_in_use >> 20, s.bytes_cached >> 20, s.system_allocs - allocs_after_first);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_steps: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
