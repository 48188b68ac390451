// The machine's float32 multiply-add peak, measured: independent chains of vector FMAs on every thread, with
// no loads, in the widest instruction set the processor has (AVX-512 or AVX2+FMA, picked at run time as the
// kernels' clones are). The CPU benchmarks quote their GFLOP/s as a share of this figure, measured in the same
// run, rather than of a datasheet clock that a shared or turbo-boosting machine does not hold.
// Usage: cpu_peak [--json]; OMP_NUM_THREADS sets the threads.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

constexpr long kIters = 20'000'000;

#if defined(__x86_64__) && defined(__GNUC__)
// 12 independent accumulators: more than latency x pipes (4 cycles x 2 FMA pipes on Zen 3 and Skylake) so
// the pipes never wait on a result. Returns a value so the chains are not optimised away.
__attribute__((target("avx2,fma"))) float chains_avx2(long iters) {
  __m256 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(1.0f + 1e-7f * float(i));
  const __m256 m = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_ps(a[i], m, c);
  __m256 s = a[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, a[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}

__attribute__((target("avx512f"))) float chains_avx512(long iters) {
  __m512 a[16];
  for (int i = 0; i < 16; ++i) a[i] = _mm512_set1_ps(1.0f + 1e-7f * float(i));
  const __m512 m = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < 16; ++i) a[i] = _mm512_fmadd_ps(a[i], m, c);
  __m512 s = a[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, a[i]);
  float out[16];
  _mm512_storeu_ps(out, s);
  return out[0];
}
#endif

struct Isa {
  const char* name;
  double flops_per_iter;  // per thread per loop iteration
  float (*run)(long);
};

Isa best_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return {"avx512f", 16.0 * 16 * 2, chains_avx512};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {"avx2+fma", 12.0 * 8 * 2, chains_avx2};
#endif
  return {"none", 0, nullptr};
}

double measure(const Isa& isa, int threads, long iters) {
  std::vector<float> sink(threads);
  const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
  sink[omp_get_thread_num()] = isa.run(iters);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  volatile float keep = sink[0];
  (void)keep;
  return isa.flops_per_iter * double(iters) * threads / s * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  const bool json = argc > 1 && std::strcmp(argv[1], "--json") == 0;
  const Isa isa = best_isa();
  if (!isa.run) {
    std::fprintf(stderr, "cpu_peak: no AVX2+FMA or AVX-512 on this processor: no vector FMA peak to measure\n");
    return 1;
  }
  const int threads = omp_get_max_threads();
  measure(isa, threads, kIters / 10);  // warm-up: clocks up
  // Best of five: the peak is what the machine can do, so noise from other work only lowers a sample.
  double one = 0, all = 0;
  for (int r = 0; r < 5; ++r) {
    one = std::max(one, measure(isa, 1, kIters));
    all = std::max(all, measure(isa, threads, kIters));
  }
  if (json)
    std::printf("{\"isa\": \"%s\", \"threads\": %d, \"gflops_1_thread\": %.1f, \"gflops\": %.1f}\n", isa.name, threads,
                one, all);
  else
    std::printf("float32 FMA peak (%s): %.1f GFLOP/s on 1 thread, %.1f GFLOP/s on %d threads\n", isa.name, one, all,
                threads);
  return 0;
}
