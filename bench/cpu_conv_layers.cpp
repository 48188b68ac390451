// Micro-benchmark of the CPU convolution on every conv shape of the model: forward, input gradient and
// weight gradient timed separately (median of repeats), in GFLOP/s.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "engine/random.h"
#include "engine/tensor.h"
#include "kernels/cpu/conv2d.h"
#include "model/autoencoder.h"

using namespace mriae;

namespace {

// With MRIAE_BENCH_CPU_TIME=1 the clock is the process's CPU time divided by the thread count: on a busy
// machine that hides the time the process waited for a core (a kernel comparison, not a wall-clock figure).
double now_seconds() {
  static const bool cpu_time = std::getenv("MRIAE_BENCH_CPU_TIME") != nullptr;
  if (!cpu_time) return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec)) / omp_get_max_threads();
}

double median_seconds(int reps, const std::function<void()>& f) {
  std::vector<double> t;
  f();  // warm-up: first touch of the buffers
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_seconds();
    f();
    t.push_back(now_seconds() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int batch = argc > 1 ? std::atoi(argv[1]) : 8, size = argc > 2 ? std::atoi(argv[2]) : 176;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 5;
  std::printf("batch %d, %dx%d, %d threads\n%-8s %-22s %10s %10s %10s\n", batch, size, size, omp_get_max_threads(),
              "layer", "shape (C->K @ HxW)", "fwd GF/s", "dx GF/s", "dw GF/s");
  int h = size;
  Rng rng(3);
  double total = 0;
  for (auto& l : Autoencoder::layers()) {
    if (l.kind == LayerSpec::MaxPool) h /= 2;
    if (l.kind == LayerSpec::Upsample) h *= 2;
    if (l.kind != LayerSpec::Conv) continue;
    const NchwDims d{batch, l.in_channels, h, h};
    const int k = l.channels;
    // Buffers from the engine's allocator (huge pages for the large ones), as in a training step.
    auto buffer = [](int64_t n) { return Tensor::empty({n}); };
    Tensor x = buffer(d.count()), w = buffer(int64_t(k) * d.c * 9), b = buffer(k), y = buffer(int64_t(batch) * k * h * h),
           dx = buffer(d.count()), dw = buffer(w.numel()), scratch = buffer(cpu::conv3x3_scratch_elems(d, k));
    for (float* v = x.data(); v != x.data() + x.numel(); ++v) *v = float(rng.uniform());
    for (float* v = w.data(); v != w.data() + w.numel(); ++v) *v = float(rng.uniform(-0.1, 0.1));
    for (float* v = y.data(); v != y.data() + y.numel(); ++v) *v = float(rng.uniform(-1, 1));
    const double flops = 2.0 * batch * k * d.c * 9 * h * h;
    const double tf = median_seconds(reps, [&] { cpu::conv3x3_forward(x.data(), w.data(), b.data(), y.data(), d, k, scratch.data()); });
    // The input gradient into a fresh buffer (overwritten), as the engine's training step does.
    const double tx = median_seconds(reps, [&] {
      cpu::conv3x3_backward(x.data(), w.data(), y.data(), dx.data(), static_cast<float*>(nullptr),
                            static_cast<float*>(nullptr), d, k, scratch.data(), /*accumulate_dx=*/false);
    });
    const double tw = median_seconds(reps, [&] {
      cpu::conv3x3_backward(x.data(), w.data(), y.data(), static_cast<float*>(nullptr), dw.data(), b.data(), d, k,
                            scratch.data());
    });
    total += tf + (l.index == 1 ? 0 : tx) + tw;
    const std::string shape = std::to_string(d.c) + "->" + std::to_string(k) + " @ " + std::to_string(h) + "x" + std::to_string(h);
    std::printf("conv%-4d %-22s %10.1f %10.1f %10.1f\n", l.index, shape.c_str(), flops / tf / 1e9, flops / tx / 1e9,
                flops / tw / 1e9);
  }
  std::printf("total conv time per training step: %.3f s\n", total);
  return 0;
}
