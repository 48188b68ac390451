#pragma once
// Validation for the kernel benchmarks: a GPU result against its CPU twin's, measured as
// tests/gpu_util.h measures it (normalised MSE, and max abs error relative to max(1, max |want|)), with
// the same limits as tests/test_cuda_ops.cpp, but reported rather than asserted: a benchmark row shows
// the error it was validated with, and a failure makes the program's exit status non-zero.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/random.h"

namespace mriae::bench {

struct Tolerance {
  double max_nmse = 0;     // sum (got - want)^2 / sum want^2
  double max_abs_rel = 0;  // max |got - want| / max(1, max |want|)
};

// The limits of tests/test_cuda_ops.cpp, by kind of kernel.
constexpr Tolerance kExact{0, 0};                   // data movement: ReLU, pooling, upsampling
constexpr double kUlpRel = 2e-7;                    // about one float ulp
constexpr Tolerance kOneUlp{1e-14, kUlpRel};        // arithmetic without FMA: RMSprop, moving stats, MSE grad
constexpr Tolerance kReduction{1e-10, 1e-5};        // double sums in another order: batchnorm output and backward
constexpr Tolerance kStatistics{1e-12, kUlpRel};    // batchnorm mean and variance, MSE loss
constexpr Tolerance kTranscendental{1e-12, 1e-6};   // sigmoid, batchnorm invstd and inference output
constexpr Tolerance kConvStrict{1e-8, 1e-4};        // cuDNN in FP32: Winograd and FFT round differently
constexpr Tolerance kConvTf32{1e-5, 1e-2};          // cuDNN with TF32's 10-bit mantissa

struct Comparison {
  std::string what;
  Tolerance limit;
  double nmse = 0, max_abs = 0, scale = 0;
  int64_t nan_mismatch = 0, size_mismatch = 0;

  bool ok() const {
    return size_mismatch == 0 && nan_mismatch == 0 && nmse <= limit.max_nmse &&
           max_abs <= limit.max_abs_rel * std::max(1.0, scale);
  }
  std::string detail() const {
    char buf[256];
    if (size_mismatch) {
      std::snprintf(buf, sizeof buf, "%s: sizes differ", what.c_str());
    } else {
      std::snprintf(buf, sizeof buf, "%s: nmse %.2g (limit %.2g), max abs %.2g (limit %.2g), NaN mismatches %lld",
                    what.c_str(), nmse, limit.max_nmse, max_abs, limit.max_abs_rel * std::max(1.0, scale),
                    static_cast<long long>(nan_mismatch));
    }
    return buf;
  }
};

// NaN in both agrees (maxpool propagates it); NaN in one only is a mismatch.
inline Comparison compare(const std::string& what, const float* got, const float* want, int64_t n, Tolerance limit) {
  Comparison c{what, limit};
  double num = 0, den = 0, max_abs = 0, scale = 0;
  int64_t nan_mismatch = 0;
#pragma omp parallel for schedule(static) reduction(+ : num, den, nan_mismatch) reduction(max : max_abs, scale)
  for (int64_t i = 0; i < n; ++i) {
    const bool gn = std::isnan(got[i]), wn = std::isnan(want[i]);
    const double d = double(got[i]) - double(want[i]);
    if (gn || wn || !std::isfinite(d)) {
      nan_mismatch += (gn != wn) || (!gn && !std::isfinite(d));
      continue;
    }
    num += d * d;
    den += double(want[i]) * double(want[i]);
    max_abs = std::max(max_abs, std::fabs(d));
    scale = std::max(scale, std::fabs(double(want[i])));
  }
  c.nmse = den > 0 ? num / den : num;
  c.max_abs = max_abs;
  c.scale = scale;
  c.nan_mismatch = nan_mismatch;
  return c;
}

inline Comparison compare(const std::string& what, const std::vector<float>& got, const std::vector<float>& want,
                          Tolerance limit) {
  if (got.size() != want.size()) {
    Comparison c{what, limit};
    c.size_mismatch = 1;
    return c;
  }
  return compare(what, got.data(), want.data(), int64_t(got.size()), limit);
}

// Integer outputs (maxpool's argmax) must match exactly; reported as a count of differing elements.
inline Comparison compare_exact_ints(const std::string& what, const std::vector<int32_t>& got,
                                     const std::vector<int32_t>& want) {
  Comparison c{what, kExact};
  if (got.size() != want.size()) {
    c.size_mismatch = 1;
    return c;
  }
  int64_t differ = 0;
#pragma omp parallel for schedule(static) reduction(+ : differ)
  for (int64_t i = 0; i < int64_t(got.size()); ++i) differ += got[size_t(i)] != want[size_t(i)];
  // Counted as NaN mismatches: any one fails the check, and detail() names the count.
  c.nan_mismatch = differ;
  return c;
}

// Every comparison behind one benchmark row.
class Validation {
 public:
  void add(Comparison c) { items_.push_back(std::move(c)); }
  bool ok() const {
    return std::all_of(items_.begin(), items_.end(), [](const Comparison& c) { return c.ok(); });
  }
  // For the table: "exact", or the largest nmse and max abs error among the comparisons; "FAIL: ..."
  // naming the first failed one.
  std::string summary() const {
    for (const Comparison& c : items_)
      if (!c.ok()) return "FAIL: " + c.detail();
    if (items_.empty()) return "not validated";
    double nmse = 0, max_abs = 0;
    for (const Comparison& c : items_) nmse = std::max(nmse, c.nmse), max_abs = std::max(max_abs, c.max_abs);
    if (nmse == 0 && max_abs == 0) return "exact";
    char buf[96];
    std::snprintf(buf, sizeof buf, "nmse %.1e, max abs %.1e", nmse, max_abs);
    return buf;
  }
  std::vector<std::string> failures() const {
    std::vector<std::string> out;
    for (const Comparison& c : items_)
      if (!c.ok()) out.push_back(c.detail());
    return out;
  }

 private:
  std::vector<Comparison> items_;
};

// n values uniform in [lo, hi), filled in parallel: chunk i draws from its own generator seeded from
// (seed, i), so the values depend on the seed alone, not on the thread count. The model's largest
// activation has 127 million elements at batch 128; one generator would take seconds per buffer.
inline std::vector<float> random_values(int64_t n, uint64_t seed, double lo = -1, double hi = 1) {
  constexpr int64_t kChunk = int64_t(1) << 20;
  std::vector<float> v(static_cast<size_t>(n));
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    Rng rng(seed * 0x9E3779B97F4A7C15ull + uint64_t(c));
    const int64_t end = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < end; ++i) v[size_t(i)] = float(rng.uniform(lo, hi));
  }
  return v;
}

}  // namespace mriae::bench
