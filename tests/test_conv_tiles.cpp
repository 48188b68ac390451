// The float32 convolution's register tiles: the AVX-512-sized generic tiles ("wide") and the narrow ones (AVX2
// intrinsics where the processor has AVX2 and FMA, generic code elsewhere; for one output channel, AVX-512
// intrinsics against AVX2 ones) are chosen by the processor, and
// MRIAE_CPU_TILES forces either, so one machine runs both. They must give the same bits (their sums run in one
// order, one multiply-add per term) wherever both vector clones use fused multiply-adds, and both must agree
// with a float64 direct convolution, on shapes whose channel counts, widths and heights leave every tail of
// the register blocks and of the bands of rows.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/random.h"
#include "kernels/cpu/conv2d.h"

using namespace mriae;

namespace {

struct ConvResult {
  std::vector<float> y, dx, dw, db;
};

ConvResult run_conv(const char* tiles, const NchwDims& d, int k, const std::vector<float>& x,
                    const std::vector<float>& w, const std::vector<float>& b, const std::vector<float>& dy) {
  REQUIRE(setenv("MRIAE_CPU_TILES", tiles, 1) == 0);
  ConvResult r;
  r.y.assign(size_t(d.n) * k * d.plane(), 0.0f);
  r.dx.assign(x.size(), 0.0f);
  r.dw.assign(w.size(), 0.0f);
  r.db.assign(b.size(), 0.0f);
  std::vector<float> scratch(size_t(cpu::conv3x3_scratch_elems(d, k)));
  cpu::conv3x3_forward(x.data(), w.data(), b.data(), r.y.data(), d, k, scratch.data());
  cpu::conv3x3_backward(x.data(), w.data(), dy.data(), r.dx.data(), r.dw.data(), r.db.data(), d, k, scratch.data());
  unsetenv("MRIAE_CPU_TILES");
  return r;
}

// y of the direct definition, in double.
std::vector<double> direct_forward(const NchwDims& d, int k, const std::vector<float>& x, const std::vector<float>& w,
                                   const std::vector<float>& b) {
  std::vector<double> y(size_t(d.n) * k * d.plane());
  for (int n = 0; n < d.n; ++n)
    for (int o = 0; o < k; ++o)
      for (int i = 0; i < d.h; ++i)
        for (int j = 0; j < d.w; ++j) {
          double s = b[size_t(o)];
          for (int c = 0; c < d.c; ++c)
            for (int u = 0; u < 3; ++u)
              for (int v = 0; v < 3; ++v) {
                const int si = i + u - 1, sj = j + v - 1;
                if (si < 0 || si >= d.h || sj < 0 || sj >= d.w) continue;
                s += double(w[size_t(((o * d.c + c) * 3 + u) * 3 + v)]) *
                     x[size_t(((n * d.c + c) * d.h + si) * d.w + sj)];
              }
          y[size_t(((n * k + o) * d.h + i) * d.w + j)] = s;
        }
  return y;
}

// dw of the direct definition, in double.
std::vector<double> direct_weight_grad(const NchwDims& d, int k, const std::vector<float>& x,
                                       const std::vector<float>& dy) {
  std::vector<double> dw(size_t(k) * d.c * 9);
  for (int o = 0; o < k; ++o)
    for (int c = 0; c < d.c; ++c)
      for (int u = 0; u < 3; ++u)
        for (int v = 0; v < 3; ++v) {
          double s = 0;
          for (int n = 0; n < d.n; ++n)
            for (int i = 0; i < d.h; ++i)
              for (int j = 0; j < d.w; ++j) {
                const int si = i + u - 1, sj = j + v - 1;
                if (si < 0 || si >= d.h || sj < 0 || sj >= d.w) continue;
                s += double(dy[size_t(((n * k + o) * d.h + i) * d.w + j)]) *
                     x[size_t(((n * d.c + c) * d.h + si) * d.w + sj)];
              }
          dw[size_t(((o * d.c + c) * 3 + u) * 3 + v)] = s;
        }
  return dw;
}

template <typename A, typename B> double relative_error(const std::vector<A>& got, const std::vector<B>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    num += (double(got[i]) - double(want[i])) * (double(got[i]) - double(want[i]));
    den += double(want[i]) * double(want[i]);
  }
  return std::sqrt(num / den);
}

size_t differing(const std::vector<float>& a, const std::vector<float>& b) {
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];  // the same bits for every finite value
  return n;
}

}  // namespace

TEST_CASE("the wide and the narrow convolution tiles give the same float32 bits, and the direct convolution's values") {
  struct Case {
    NchwDims d;
    int k;
  };
  // 33 and 48 output channels: a partial block of 32 and of 16 lanes; widths 7, 13 and 25: partial tiles of 3,
  // 6 and 11 pixels; 19 rows: several bands with a short last one; 17 and 40 input channels: odd channel
  // pairs and a partial chunk of channels. One output channel (the model's last layer): the AVX-512 tiles of
  // 4 rows by 32 columns against the AVX2 ones of 4 rows by 16 (the generic row kernel where the processor has
  // neither), here with 9 and 19 rows (bands of 8 and a short one: tiles of 4 rows and single rows) and 21 and
  // 37 columns (partial tiles of 32 and 16).
  for (Case cs : {Case{{2, 17, 19, 13}, 33}, Case{{1, 40, 9, 25}, 48}, Case{{3, 16, 5, 7}, 16},
                  Case{{1, 32, 12, 24}, 64}, Case{{2, 20, 9, 21}, 1}, Case{{1, 3, 19, 37}, 1}}) {
    const NchwDims d = cs.d;
    const int k = cs.k;
    CAPTURE(d.c);
    CAPTURE(k);
    CAPTURE(d.w);
    Rng rng(uint64_t(7 + k));
    auto floats = [&](size_t n) {
      std::vector<float> v(n);
      for (float& e : v) e = float(rng.uniform(-1, 1));
      return v;
    };
    const auto x = floats(size_t(d.count())), w = floats(size_t(k) * d.c * 9), b = floats(size_t(k)),
               dy = floats(size_t(d.n) * k * d.plane());
    const ConvResult wide = run_conv("wide", d, k, x, w, b, dy), narrow = run_conv("narrow", d, k, x, w, b, dy);
    CHECK(differing(wide.y, narrow.y) == 0);
    CHECK(differing(wide.dx, narrow.dx) == 0);
    CHECK(differing(wide.dw, narrow.dw) == 0);
    CHECK(differing(wide.db, narrow.db) == 0);
    // float32 sums of up to 9 * 40 products of values in [-1, 1] against the same in double.
    CHECK(relative_error(narrow.y, direct_forward(d, k, x, w, b)) < 1e-6);
    CHECK(relative_error(narrow.dw, direct_weight_grad(d, k, x, dy)) < 1e-6);
    // dx is the forward convolution of dy with the flipped kernel, which the forward check covers; here it
    // is checked against the adjoint identity <conv(x), dy> = <x, dx> (bias aside).
    double lhs = 0, rhs = 0;
    const auto y0 = direct_forward(d, k, x, w, std::vector<float>(size_t(k), 0.0f));
    for (size_t i = 0; i < y0.size(); ++i) lhs += y0[i] * dy[i];
    for (size_t i = 0; i < x.size(); ++i) rhs += double(x[i]) * narrow.dx[i];
    CHECK(std::abs(lhs - rhs) < 1e-5 * std::abs(lhs) + 1e-4);
  }
}
