#pragma once
// Helpers for the GPU tests, in the manner of ggml's test-backend-ops: each CUDA op runs on fresh
// random inputs against its CPU twin, and the error is reported as normalised MSE plus max abs error.
// GPU buffers carry guard areas filled with a NaN sentinel on both sides: a kernel that writes out of
// bounds changes a guard, and one that reads out of bounds pulls a NaN into its output.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engine/cuda_context.h"
#include "engine/random.h"
#include "engine/tensor.h"

namespace gpu_test {

using mriae::Device;
using mriae::Shape;
using mriae::Tensor;

inline std::vector<float> random_values(int64_t n, uint64_t seed, double lo = -1, double hi = 1) {
  mriae::Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = float(rng.uniform(lo, hi));
  return v;
}

struct Error {
  double nmse = 0;     // sum (got - want)^2 / sum want^2
  double max_abs = 0;  // max |got - want|
  double scale = 0;    // max |want|
  int64_t nan_mismatch = 0;  // NaN in one and not the other (NaN in both agrees: maxpool propagates it)
};

inline Error compare(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  Error e;
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool gn = std::isnan(got[i]), wn = std::isnan(want[i]);
    if (gn || wn) {
      e.nan_mismatch += gn != wn;
      continue;
    }
    const double d = double(got[i]) - double(want[i]);
    if (!std::isfinite(d)) {
      ++e.nan_mismatch;
      continue;
    }
    num += d * d;
    den += double(want[i]) * double(want[i]);
    e.max_abs = std::max(e.max_abs, std::fabs(d));
    e.scale = std::max(e.scale, std::fabs(double(want[i])));
  }
  e.nmse = den > 0 ? num / den : num;
  return e;
}

// Limits: nmse <= max_nmse, and max abs error <= max_abs_rel * max(1, max |want|).
inline void check_close(const std::string& what, const std::vector<float>& got, const std::vector<float>& want,
                        double max_nmse, double max_abs_rel) {
  const Error e = compare(got, want);
  INFO(what << ": nmse " << e.nmse << " (limit " << max_nmse << "), max abs error " << e.max_abs << " (limit "
            << max_abs_rel * std::max(1.0, e.scale) << "), NaN mismatches " << e.nan_mismatch);
  CHECK(e.nan_mismatch == 0);
  CHECK(e.nmse <= max_nmse);
  CHECK(e.max_abs <= max_abs_rel * std::max(1.0, e.scale));
}

inline void check_finite(const std::string& what, const std::vector<float>& v) {
  int64_t bad = 0;
  for (float x : v) bad += !std::isfinite(x);
  INFO(what << ": " << bad << " non-finite values");
  CHECK(bad == 0);
}

constexpr int64_t kGuard = 64;
constexpr uint32_t kSentinelBits = 0x7fa1b2c3u;  // a NaN no kernel computes

// n floats of the guards' sentinel: the starting contents of a gradient buffer that a backward kernel must
// overwrite, so that an element it leaves unwritten shows up as a NaN.
inline std::vector<float> sentinel_values(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) std::memcpy(&x, &kSentinelBits, 4);
  return v;
}

// A device buffer of n floats between two guard areas.
class Guarded {
 public:
  explicit Guarded(const std::vector<float>& values) : n_(int64_t(values.size())) {
    std::vector<float> host(static_cast<size_t>(n_ + 2 * kGuard));
    for (int64_t i = 0; i < kGuard; ++i) {
      std::memcpy(&host[size_t(i)], &kSentinelBits, 4);
      std::memcpy(&host[size_t(n_ + kGuard + i)], &kSentinelBits, 4);
    }
    if (n_) std::memcpy(&host[size_t(kGuard)], values.data(), size_t(n_) * 4);
    buf_ = Tensor::from_vector({n_ + 2 * kGuard}, host, Device::CUDA);
  }
  static Guarded sized(int64_t n) { return Guarded(std::vector<float>(size_t(n), 0.0f)); }

  float* data() const { return buf_.data() + kGuard; }
  int32_t* ints() const { return reinterpret_cast<int32_t*>(data()); }
  Tensor tensor(const Shape& s) const { return buf_.view(kGuard, s); }
  int64_t size() const { return n_; }

  std::vector<float> values() const {
    const std::vector<float> all = buf_.to_vector();
    return std::vector<float>(all.begin() + kGuard, all.begin() + kGuard + n_);
  }
  std::vector<int32_t> int_values() const {
    const std::vector<float> v = values();
    std::vector<int32_t> out(v.size());
    if (!v.empty()) std::memcpy(out.data(), v.data(), v.size() * 4);
    return out;
  }
  bool guards_intact() const {
    const std::vector<float> all = buf_.to_vector();
    for (int64_t i = 0; i < kGuard; ++i) {
      uint32_t a = 0, b = 0;
      std::memcpy(&a, &all[size_t(i)], 4);
      std::memcpy(&b, &all[size_t(n_ + kGuard + i)], 4);
      if (a != kSentinelBits || b != kSentinelBits) return false;
    }
    return true;
  }

 private:
  int64_t n_;
  Tensor buf_;
};

#define CHECK_GUARDS(g) CHECK_MESSAGE((g).guards_intact(), "guard area of " #g " was written")

inline cudaStream_t stream() { return mriae::Context::get().cuda().compute_stream(); }

// Sets the CUDA options for one scope and restores the previous ones after it.
class ScopedCudaOptions {
 public:
  explicit ScopedCudaOptions(const mriae::CudaOptions& o) : old_(mriae::Context::get().cuda().options()) {
    mriae::Context::get().cuda().set_options(o);
  }
  ~ScopedCudaOptions() { mriae::Context::get().cuda().set_options(old_); }
  ScopedCudaOptions(const ScopedCudaOptions&) = delete;
  ScopedCudaOptions& operator=(const ScopedCudaOptions&) = delete;

 private:
  mriae::CudaOptions old_;
};

}  // namespace gpu_test
