// Every CPU kernel's backward against central finite differences, in double precision. The scalar being
// differentiated is L = sum(y * r) for a fixed random r, so the upstream gradient is r. Limits: double
// central differences with h = 1e-6 are accurate to about 1e-8 relative on these smooth functions; 1e-6
// leaves room for the largest shapes while catching any wrong term (those give errors of order 1).
#include <doctest/doctest.h>

#include <algorithm>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/pooling.h"
#include "tests/gradcheck.h"

using namespace mriae;
using namespace mriae::test;

namespace {
constexpr double kLimit = 1e-6;
}

TEST_CASE("conv3x3 backward matches finite differences") {
  for (NchwDims d : {NchwDims{2, 3, 5, 6}, NchwDims{1, 1, 4, 4}, NchwDims{3, 2, 1, 3}}) {
    const int k = 4;
    Rng rng(1);
    auto x = random_vector(rng, size_t(d.count())), w = random_vector(rng, size_t(k) * d.c * 9),
         b = random_vector(rng, size_t(k));
    auto r = random_vector(rng, size_t(d.n) * k * d.plane());
    std::vector<double> y(r.size()), scratch(size_t(cpu::conv3x3_scratch_elems(d, k)));
    auto loss = [&] {
      cpu::conv3x3_forward(x.data(), w.data(), b.data(), y.data(), d, k, scratch.data());
      return dot(y, r);
    };
    std::vector<double> dx(x.size()), dw(w.size()), db(b.size());
    cpu::conv3x3_backward(x.data(), w.data(), r.data(), dx.data(), dw.data(), db.data(), d, k, scratch.data());
    CHECK(relative_l2(dx, numeric_gradient(loss, x)) < kLimit);
    CHECK(relative_l2(dw, numeric_gradient(loss, w)) < kLimit);
    CHECK(relative_l2(db, numeric_gradient(loss, b)) < kLimit);
  }
}

TEST_CASE("conv3x3 backward of wide layers matches finite differences") {
  // Shapes that take the channel-blocked kernels (>= 16 channels), with channel counts and widths that are
  // not multiples of the register blocks, so every tail path runs; the one-channel sides of the model's first
  // and last layers, which go to the row kernels; and 19 rows, several bands of rows per image. Sampled
  // positions keep it fast.
  struct Case {
    NchwDims d;
    int k;
  };
  for (Case cs : {Case{{2, 17, 5, 13}, 33}, Case{{1, 16, 4, 23}, 16}, Case{{3, 20, 3, 4}, 1}, Case{{2, 1, 6, 9}, 18},
                  Case{{2, 16, 19, 7}, 17}}) {
    const NchwDims d = cs.d;
    const int k = cs.k;
    Rng rng(11);
    auto x = random_vector(rng, size_t(d.count())), w = random_vector(rng, size_t(k) * d.c * 9),
         b = random_vector(rng, size_t(k));
    auto r = random_vector(rng, size_t(d.n) * k * d.plane());
    std::vector<double> y(r.size()), scratch(size_t(cpu::conv3x3_scratch_elems(d, k)));
    auto loss = [&] {
      cpu::conv3x3_forward(x.data(), w.data(), b.data(), y.data(), d, k, scratch.data());
      return dot(y, r);
    };
    std::vector<double> dx(x.size()), dw(w.size()), db(b.size());
    cpu::conv3x3_backward(x.data(), w.data(), r.data(), dx.data(), dw.data(), db.data(), d, k, scratch.data());
    CHECK(sampled_error(loss, x, dx, sample_positions(rng, x.size(), 150)) < kLimit);
    CHECK(sampled_error(loss, w, dw, sample_positions(rng, w.size(), 150)) < kLimit);
    CHECK(sampled_error(loss, b, db, sample_positions(rng, b.size(), 150)) < kLimit);
  }
}

TEST_CASE("conv3x3 forward matches a direct zero-padded convolution") {
  // The second and third shapes take the channel-blocked kernel, the third over several bands of rows.
  for (auto [d, k] : {std::pair<NchwDims, int>{{2, 3, 7, 5}, 2}, std::pair<NchwDims, int>{{2, 17, 6, 25}, 35},
                      std::pair<NchwDims, int>{{1, 17, 19, 14}, 33}}) {
  Rng rng(2);
  auto x = random_vector(rng, size_t(d.count())), w = random_vector(rng, size_t(k) * d.c * 9),
       b = random_vector(rng, size_t(k));
  std::vector<double> y(size_t(d.n) * k * d.plane()), scratch(size_t(cpu::conv3x3_forward_scratch_elems(d, k)));
  cpu::conv3x3_forward(x.data(), w.data(), b.data(), y.data(), d, k, scratch.data());
  double worst = 0;
  for (int n = 0; n < d.n; ++n)
    for (int o = 0; o < k; ++o)
      for (int i = 0; i < d.h; ++i)
        for (int j = 0; j < d.w; ++j) {
          double s = b[o];
          for (int c = 0; c < d.c; ++c)
            for (int u = 0; u < 3; ++u)
              for (int v = 0; v < 3; ++v) {
                const int si = i + u - 1, sj = j + v - 1;
                if (si < 0 || si >= d.h || sj < 0 || sj >= d.w) continue;
                s += w[((o * d.c + c) * 3 + u) * 3 + v] * x[((n * d.c + c) * d.h + si) * d.w + sj];
              }
          worst = std::max(worst, std::abs(s - y[((n * k + o) * d.h + i) * d.w + j]));
        }
  CHECK(worst < 1e-12);
  }
}

TEST_CASE("conv3x3 backward accumulates into existing gradients") {
  const NchwDims d{1, 2, 3, 3};
  const int k = 3;
  Rng rng(3);
  auto x = random_vector(rng, size_t(d.count())), w = random_vector(rng, size_t(k) * d.c * 9);
  auto r = random_vector(rng, size_t(k) * d.plane());
  std::vector<double> scratch(size_t(cpu::conv3x3_scratch_elems(d, k)));
  std::vector<double> dx1(x.size()), dw1(w.size()), db1(static_cast<size_t>(k));
  cpu::conv3x3_backward(x.data(), w.data(), r.data(), dx1.data(), dw1.data(), db1.data(), d, k, scratch.data());
  std::vector<double> dx2(x.size(), 0.5), dw2(w.size(), 0.5), db2(size_t(k), 0.5);
  cpu::conv3x3_backward(x.data(), w.data(), r.data(), dx2.data(), dw2.data(), db2.data(), d, k, scratch.data());
  for (size_t i = 0; i < x.size(); ++i) CHECK(dx2[i] == doctest::Approx(dx1[i] + 0.5).epsilon(1e-12));
  for (size_t i = 0; i < w.size(); ++i) CHECK(dw2[i] == doctest::Approx(dw1[i] + 0.5).epsilon(1e-12));
  for (int i = 0; i < k; ++i) CHECK(db2[i] == doctest::Approx(db1[i] + 0.5).epsilon(1e-12));
}

TEST_CASE("relu and sigmoid backward match finite differences") {
  Rng rng(4);
  const size_t n = 200;
  // ReLU's kink at 0 has no derivative: keep inputs away from it.
  auto x = random_vector(rng, n, -2, 2);
  for (double& v : x)
    if (std::abs(v) < 0.05) v += 0.1;
  auto r = random_vector(rng, n);
  std::vector<double> y(n);
  auto relu_loss = [&] {
    cpu::relu_forward(x.data(), y.data(), int64_t(n));
    return dot(y, r);
  };
  std::vector<double> dx(n);
  cpu::relu_backward(x.data(), r.data(), dx.data(), int64_t(n));
  CHECK(relative_l2(dx, numeric_gradient(relu_loss, x)) < kLimit);

  auto z = random_vector(rng, n, -6, 6);
  auto sig_loss = [&] {
    cpu::sigmoid_forward(z.data(), y.data(), int64_t(n));
    return dot(y, r);
  };
  sig_loss();
  std::vector<double> dz(n);
  cpu::sigmoid_backward(y.data(), r.data(), dz.data(), int64_t(n));
  CHECK(relative_l2(dz, numeric_gradient(sig_loss, z)) < kLimit);
}

TEST_CASE("sigmoid saturates without NaN") {
  const float in[3] = {-200.f, 0.f, 200.f};
  float out[3];
  cpu::sigmoid_forward(in, out, 3);
  CHECK(out[0] == 0.f);
  CHECK(out[1] == 0.5f);
  CHECK(out[2] == 1.f);
}

TEST_CASE("batchnorm training backward matches finite differences") {
  for (NchwDims d : {NchwDims{3, 2, 4, 5}, NchwDims{1, 3, 2, 2}}) {
    Rng rng(5);
    auto x = random_vector(rng, size_t(d.count()), -2, 3), gamma = random_vector(rng, size_t(d.c), 0.5, 1.5),
         beta = random_vector(rng, size_t(d.c));
    auto r = random_vector(rng, x.size());
    std::vector<double> y(x.size()), mean(size_t(d.c)), invstd(size_t(d.c)), var(size_t(d.c));
    auto loss = [&] {
      cpu::batchnorm_forward_train(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), invstd.data(),
                                   var.data(), d, 1e-3);
      return dot(y, r);
    };
    loss();
    std::vector<double> dx(x.size()), dg(size_t(d.c)), db(size_t(d.c));
    cpu::batchnorm_backward_train(x.data(), r.data(), gamma.data(), mean.data(), invstd.data(), dx.data(), dg.data(),
                                  db.data(), d);
    CHECK(relative_l2(dx, numeric_gradient(loss, x)) < kLimit);
    CHECK(relative_l2(dg, numeric_gradient(loss, gamma)) < kLimit);
    CHECK(relative_l2(db, numeric_gradient(loss, beta)) < kLimit);
  }
}

// The GPU's conv_relu_batchnorm folds the conv bias into the fused kernels' reads of x, and takes the bias's
// gradient as the channel sums of the dx they return (the conv's own db from its dy): both checked here.
TEST_CASE("fused ReLU-batchnorm with a folded input bias: dx and the bias's gradient match finite differences") {
  for (NchwDims d : {NchwDims{3, 2, 4, 5}, NchwDims{1, 3, 2, 2}}) {
    Rng rng(7);
    auto x = random_vector(rng, size_t(d.count()), -2, 3), gamma = random_vector(rng, size_t(d.c), 0.5, 1.5),
         beta = random_vector(rng, size_t(d.c)), bias = random_vector(rng, size_t(d.c), -1, 1);
    auto r = random_vector(rng, x.size());
    std::vector<double> y(x.size()), mean(size_t(d.c)), invstd(size_t(d.c)), var(size_t(d.c));
    auto loss = [&] {
      cpu::batchnorm_forward_train<double, true>(x.data(), gamma.data(), beta.data(), y.data(), mean.data(),
                                                 invstd.data(), var.data(), d, 1e-3, bias.data());
      return dot(y, r);
    };
    loss();
    std::vector<double> dx(x.size()), dg(size_t(d.c)), db(size_t(d.c));
    cpu::batchnorm_backward_train<double, true>(x.data(), r.data(), gamma.data(), mean.data(), invstd.data(), dx.data(),
                                                dg.data(), db.data(), d, true, bias.data());
    std::vector<double> dbias(size_t(d.c), 0.0);
    for (int64_t i = 0; i < d.count(); ++i) dbias[size_t((i / d.plane()) % d.c)] += dx[size_t(i)];
    CHECK(relative_l2(dx, numeric_gradient(loss, x)) < kLimit);
    CHECK(relative_l2(dbias, numeric_gradient(loss, bias)) < kLimit);
    CHECK(relative_l2(dg, numeric_gradient(loss, gamma)) < kLimit);
    CHECK(relative_l2(db, numeric_gradient(loss, beta)) < kLimit);
  }
}

TEST_CASE("batchnorm training forward normalises each channel") {
  const NchwDims d{4, 3, 5, 5};
  Rng rng(6);
  auto x = random_vector(rng, size_t(d.count()), 2, 9);
  std::vector<double> gamma(3, 1.0), beta(3, 0.0), y(x.size()), mean(3), invstd(3), var(3);
  cpu::batchnorm_forward_train(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), invstd.data(), var.data(), d,
                               0.0);
  for (int c = 0; c < d.c; ++c) {
    double s = 0, ss = 0, sx = 0;
    for (int n = 0; n < d.n; ++n)
      for (int i = 0; i < 25; ++i) {
        const double v = y[size_t((n * d.c + c) * 25 + i)];
        s += v, ss += v * v, sx += x[size_t((n * d.c + c) * 25 + i)];
      }
    CHECK(s / 100 == doctest::Approx(0.0).epsilon(1e-12).scale(1));
    CHECK(ss / 100 == doctest::Approx(1.0).epsilon(1e-12));
    CHECK(mean[size_t(c)] == doctest::Approx(sx / 100).epsilon(1e-12));
  }
}

TEST_CASE("maxpool backward matches finite differences on tie-free input") {
  const NchwDims d{2, 3, 6, 5};  // odd width: the last column is dropped
  Rng rng(7);
  // Distinct values 0.01 apart, shuffled: a 1e-6 step never changes which element wins.
  std::vector<double> x(size_t(d.count()));
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.01 * double(i);
  for (size_t i = x.size() - 1; i > 0; --i) std::swap(x[i], x[rng.next_u64() % (i + 1)]);
  const size_t out_n = size_t(d.n) * d.c * (d.h / 2) * (d.w / 2);
  auto r = random_vector(rng, out_n);
  std::vector<double> y(out_n);
  std::vector<int32_t> arg(out_n);
  auto loss = [&] {
    cpu::maxpool2_forward(x.data(), y.data(), arg.data(), d);
    return dot(y, r);
  };
  loss();
  std::vector<double> dx(x.size());
  cpu::maxpool2_backward(r.data(), arg.data(), dx.data(), d);
  CHECK(relative_l2(dx, numeric_gradient(loss, x)) < kLimit);
}

TEST_CASE("maxpool sends a tied window's gradient to its first maximum in row-major order") {
  const NchwDims d{1, 1, 2, 4};
  // Window 1: all equal -> (0,0). Window 2: max 5 at (0,3) and (1,2) -> (0,3), the first in row-major order.
  const float x[8] = {1, 1, 2, 5, 1, 1, 5, 0};
  float y[2];
  int32_t arg[2];
  cpu::maxpool2_forward(x, y, arg, d);
  CHECK(y[0] == 1);
  CHECK(y[1] == 5);
  const float dy[2] = {1, 1};
  float dx[8] = {};
  cpu::maxpool2_backward(dy, arg, dx, d);
  const float expect[8] = {1, 0, 0, 1, 0, 0, 0, 0};
  for (int i = 0; i < 8; ++i) CHECK(dx[i] == expect[i]);
}

TEST_CASE("upsample backward matches finite differences") {
  const NchwDims d{2, 3, 3, 4};
  Rng rng(8);
  auto x = random_vector(rng, size_t(d.count()));
  auto r = random_vector(rng, x.size() * 4);
  std::vector<double> y(r.size());
  auto loss = [&] {
    cpu::upsample2_forward(x.data(), y.data(), d);
    return dot(y, r);
  };
  loss();
  CHECK(y[0] == x[0]);
  CHECK(y[1] == x[0]);
  CHECK(y[size_t(2 * d.w)] == x[0]);
  CHECK(y[size_t(2 * d.w + 2)] == x[1]);
  std::vector<double> dx(x.size());
  cpu::upsample2_backward(r.data(), dx.data(), d);
  CHECK(relative_l2(dx, numeric_gradient(loss, x)) < kLimit);
}

TEST_CASE("mse backward matches finite differences") {
  Rng rng(9);
  const size_t n = 150;
  auto y = random_vector(rng, n), t = random_vector(rng, n);
  auto loss = [&] { return cpu::mse_forward(y.data(), t.data(), int64_t(n)); };
  double direct = 0;
  for (size_t i = 0; i < n; ++i) direct += (y[i] - t[i]) * (y[i] - t[i]);
  CHECK(loss() == doctest::Approx(direct / double(n)).epsilon(1e-14));
  std::vector<double> dy(n);
  cpu::mse_backward(y.data(), t.data(), 1.0, dy.data(), int64_t(n));
  CHECK(relative_l2(dy, numeric_gradient(loss, y)) < kLimit);
}
