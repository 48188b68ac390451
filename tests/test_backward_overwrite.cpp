// The CPU backward kernels' two ways of delivering an input gradient: accumulating onto what is there, and
// overwriting (used for a gradient buffer's first writer, which then needs no zero fill). Overwriting a
// buffer full of NaN sentinels must give exactly what accumulating onto zeros gives, so every element is
// written and nothing stale is read. Also: the banded convolutions' independence of the thread count, the
// maxpool forward against a plain scan, and the autograd's first-writer protocol.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "engine/ops.h"
#include "engine/random.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/pooling.h"

using namespace mriae;

namespace {

std::vector<float> random_floats(size_t n, uint64_t seed, double lo = -1, double hi = 1) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = float(rng.uniform(lo, hi));
  return v;
}

// Runs `backward(dx, accumulate)` onto zeros (accumulating) and onto NaN sentinels (overwriting) and checks
// that both give the same bits, and that the result is not all zero (the comparison means something).
template <typename F> void check_overwrite(size_t n, F backward) {
  std::vector<float> acc(n, 0.0f), over(n, std::numeric_limits<float>::quiet_NaN());
  backward(acc.data(), true);
  backward(over.data(), false);
  size_t differ = 0, nonzero = 0;
  for (size_t i = 0; i < n; ++i) {
    differ += !(acc[i] == over[i]);  // a NaN left behind differs too
    nonzero += acc[i] != 0.0f;
  }
  CHECK(differ == 0);
  CHECK(nonzero > 0);
}

}  // namespace

TEST_CASE("overwriting backward kernels equal accumulating onto zeros, every element written") {
  const NchwDims d{3, 5, 7, 9};  // odd sizes: maxpool drops a row and a column, which must still be written
  const size_t n = size_t(d.count());
  const auto x = random_floats(n, 1), dy = random_floats(n, 2);

  SUBCASE("relu") { check_overwrite(n, [&](float* dx, bool a) { cpu::relu_backward(x.data(), dy.data(), dx, int64_t(n), a); }); }
  SUBCASE("sigmoid") {
    check_overwrite(n, [&](float* dx, bool a) { cpu::sigmoid_backward(x.data(), dy.data(), dx, int64_t(n), a); });
  }
  SUBCASE("mse") {
    check_overwrite(n, [&](float* dx, bool a) { cpu::mse_backward(x.data(), dy.data(), 0.5f, dx, int64_t(n), a); });
  }
  SUBCASE("maxpool") {
    const size_t m = size_t(d.n) * d.c * (d.h / 2) * (d.w / 2);
    std::vector<float> y(m);
    std::vector<int32_t> arg(m);
    cpu::maxpool2_forward(x.data(), y.data(), arg.data(), d);
    const auto g = random_floats(m, 3);
    check_overwrite(n, [&](float* dx, bool a) { cpu::maxpool2_backward(g.data(), arg.data(), dx, d, a); });
  }
  SUBCASE("upsample") {
    const auto g = random_floats(4 * n, 4);
    check_overwrite(n, [&](float* dx, bool a) { cpu::upsample2_backward(g.data(), dx, d, a); });
  }
  SUBCASE("batchnorm, with and without the fused ReLU") {
    const auto gamma = random_floats(size_t(d.c), 5, 0.5, 1.5);
    std::vector<float> y(n), mean(size_t(d.c)), invstd(size_t(d.c)), var(size_t(d.c));
    const std::vector<float> beta(size_t(d.c), 0.1f);
    cpu::batchnorm_forward_train(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), invstd.data(), var.data(), d,
                                 1e-3f);
    check_overwrite(n, [&](float* dx, bool a) {
      cpu::batchnorm_backward_train(x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(), dx,
                                    static_cast<float*>(nullptr), static_cast<float*>(nullptr), d, a);
    });
    cpu::batchnorm_forward_train<float, true>(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), invstd.data(),
                                              var.data(), d, 1e-3f);
    check_overwrite(n, [&](float* dx, bool a) {
      cpu::batchnorm_backward_train<float, true>(x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(), dx,
                                                 static_cast<float*>(nullptr), static_cast<float*>(nullptr), d, a);
    });
  }
  SUBCASE("convolution input gradient, channel-blocked and row kernels") {
    // dx of a layer with C input channels and K outputs is a convolution of K channels to C: 17 -> 20 takes
    // the blocked kernel (with a partial block), 17 -> 3 the row kernel, and 1 -> 32 (conv11's) the row
    // kernel for a single input channel.
    for (auto [c, k] : {std::pair{20, 17}, std::pair{3, 17}, std::pair{32, 1}}) {
      CAPTURE(c);
      CAPTURE(k);
      const NchwDims xd{2, c, 11, 13};
      const auto xs = random_floats(size_t(xd.count()), 6), w = random_floats(size_t(k) * c * 9, 7);
      const auto g = random_floats(size_t(xd.n) * k * xd.plane(), 8);
      std::vector<float> scratch(size_t(cpu::conv3x3_scratch_elems(xd, k)));
      check_overwrite(size_t(xd.count()), [&](float* dx, bool a) {
        cpu::conv3x3_backward(xs.data(), w.data(), g.data(), dx, static_cast<float*>(nullptr),
                              static_cast<float*>(nullptr), xd, k, scratch.data(), a);
      });
    }
  }
}

TEST_CASE("the banded convolution kernels give the same bits on 1 and 2 threads") {
  // 19 rows: forward bands of 8, 8 and 3 rows and weight-gradient bands of 16 and 3, per image.
  const NchwDims xd{3, 20, 19, 13};
  const int k = 17;
  const auto x = random_floats(size_t(xd.count()), 9), w = random_floats(size_t(k) * xd.c * 9, 10);
  const auto g = random_floats(size_t(xd.n) * k * xd.plane(), 11);
  auto run = [&](int threads) {
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<float> scratch(size_t(cpu::conv3x3_scratch_elems(xd, k))), y(g.size()), dx(x.size()), dw(w.size());
    cpu::conv3x3_forward(x.data(), w.data(), static_cast<const float*>(nullptr), y.data(), xd, k, scratch.data());
    cpu::conv3x3_backward(x.data(), w.data(), g.data(), dx.data(), dw.data(), static_cast<float*>(nullptr), xd, k,
                          scratch.data(), /*accumulate_dx=*/false);
    omp_set_num_threads(before);
    return std::vector<std::vector<float>>{y, dx, dw};
  };
  const auto one = run(1), two = run(2);
  CHECK(one[0] == two[0]);
  CHECK(one[1] == two[1]);
  CHECK(one[2] == two[2]);
}

TEST_CASE("maxpool forward picks the first maximum of each window, NaN counting as the maximum") {
  const NchwDims d{2, 3, 9, 11};
  Rng rng(12);
  // Few distinct values, so windows tie often; one element in six NaN, so some windows hold two.
  std::vector<float> x(size_t(d.count()));
  for (float& v : x) {
    const uint64_t r = rng.next_u64() % 6;
    v = r == 0 ? std::numeric_limits<float>::quiet_NaN() : float(r % 3);
  }
  const int oh = d.h / 2, ow = d.w / 2;
  std::vector<float> y(size_t(d.n) * d.c * oh * ow);
  std::vector<int32_t> arg(y.size());
  cpu::maxpool2_forward(x.data(), y.data(), arg.data(), d);
  size_t wrong = 0, nan_windows = 0;
  for (int64_t p = 0; p < int64_t(d.n) * d.c; ++p)
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) {
        // The plain rule: scan the window in row-major order; a NaN ends the scan as the winner, otherwise
        // only a strictly greater value takes over.
        const float* in = x.data() + p * d.plane();
        int32_t best = 2 * i * d.w + 2 * j;
        for (int t = 1; t < 4 && !std::isnan(in[best]); ++t) {
          const int32_t at = (2 * i + t / 2) * d.w + 2 * j + t % 2;
          if (std::isnan(in[at]) || in[at] > in[best]) best = at;
        }
        const size_t o = size_t(p * oh * ow + i * ow + j);
        const float want = in[best];
        nan_windows += std::isnan(want);
        wrong += arg[o] != best || !(y[o] == want || (std::isnan(y[o]) && std::isnan(want)));
      }
  CHECK(wrong == 0);
  CHECK(nan_windows > 0);
}

TEST_CASE("a gradient's first writer overwrites and later ones accumulate") {
  const Tensor xv = Tensor::from_vector({1, 1, 4, 4}, random_floats(16, 13, -1, 1));
  Var x(xv, true);
  const Var::GradTarget first = x.grad_target();
  CHECK_FALSE(first.accumulate);
  const Var::GradTarget second = x.grad_target();
  CHECK(second.accumulate);
  CHECK(second.data() == first.data());

  // Two consumers of one variable, each with its own tape: the second backward adds to the first's gradient.
  auto grad_of = [&](bool through_relu, Var& v) {
    Tape tape;
    Var y = through_relu ? relu(&tape, v) : sigmoid(&tape, v);
    Var loss = mse_loss(&tape, y, Tensor::zeros(y.shape()));
    tape.backward(loss);
  };
  Var a(xv, true), b(xv, true), both(xv, true);
  grad_of(true, a);
  grad_of(false, b);
  grad_of(true, both);
  grad_of(false, both);
  const auto ga = a.grad().to_vector(), gb = b.grad().to_vector(), g = both.grad().to_vector();
  for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == ga[i] + gb[i]);
}
