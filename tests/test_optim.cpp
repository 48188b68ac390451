// RMSprop and the batchnorm moving statistics against their closed forms.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/lr_schedule.h"
#include "engine/rmsprop.h"
#include "kernels/cpu/optim.h"

using namespace mriae;

TEST_CASE("RMSprop follows the Keras 2.2 update for two steps") {
  ParameterSet ps;
  ps.declare("p", {3});
  ps.allocate(Device::CPU);
  Tensor(ps.flat_values()).copy_from(Tensor::from_vector({3}, {1.0f, -2.0f, 0.5f}));
  RMSprop opt(ps, {});
  const double g1[3] = {0.3, -1e-3, 0.0}, g2[3] = {-0.2, 4.0, 1e-9};
  double p[3] = {1.0, -2.0, 0.5}, a[3] = {0, 0, 0};
  for (auto* g : {g1, g2}) {
    Tensor(ps.flat_grads()).copy_from(Tensor::from_vector({3}, {float(g[0]), float(g[1]), float(g[2])}));
    opt.step();
    for (int i = 0; i < 3; ++i) {
      a[i] = 0.9 * a[i] + 0.1 * double(float(g[i])) * double(float(g[i]));
      p[i] -= 1e-3 * double(float(g[i])) / (std::sqrt(a[i]) + 1e-7);
    }
  }
  for (int i = 0; i < 3; ++i) CHECK(ps.flat_values().item(i) == doctest::Approx(p[i]).epsilon(1e-6));
  CHECK(opt.steps() == 2);
}

TEST_CASE("RMSprop's first step moves every parameter by about lr*sqrt(10) against its gradient") {
  // a = 0.1 g^2, so lr*g/sqrt(a) = lr*sqrt(10)*sign(g): the sign amplification the parity test has to handle.
  float p = 0, a = 0;
  hd::rmsprop(p, a, 1e-3f, 1e-3f, 0.9f, 1e-7f);
  CHECK(p == doctest::Approx(-1e-3 * std::sqrt(10.0)).epsilon(1e-3));
}

TEST_CASE("RMSprop rejects impossible options") {
  ParameterSet ps;
  ps.declare("p", {1});
  ps.allocate(Device::CPU);
  CHECK_THROWS_AS(RMSprop(ps, {-1e-3f, 0.9f, 1e-7f}), std::invalid_argument);
  CHECK_THROWS_AS(RMSprop(ps, {1e-3f, 1.0f, 1e-7f}), std::invalid_argument);
}

TEST_CASE("Keras moving statistics are zero-debiased and Bessel-corrected") {
  float hm = 0, hv = 0, mm = 0, mv = 1;
  const int64_t n = 5;  // elements per channel: Bessel factor 5/4
  const float mean1 = 2.0f, var1 = 0.8f, mean2 = -1.0f, var2 = 0.4f;
  cpu::bn_moving_update_keras(&hm, &hv, &mm, &mv, &mean1, &var1, 1, n, 1, 0.99f);
  // Step 1: the debiasing makes the published value the batch value itself.
  CHECK(mm == doctest::Approx(2.0).epsilon(1e-6));
  CHECK(mv == doctest::Approx(0.8 * 5 / 4).epsilon(1e-6));
  cpu::bn_moving_update_keras(&hm, &hv, &mm, &mv, &mean2, &var2, 1, n, 2, 0.99f);
  const double denom = 1 - 0.99 * 0.99;
  CHECK(mm == doctest::Approx((0.99 * 0.01 * 2.0 + 0.01 * -1.0) / denom).epsilon(1e-5));
  CHECK(mv == doctest::Approx((0.99 * 0.01 * 1.0 + 0.01 * 0.5) / denom).epsilon(1e-5));
}

TEST_CASE("plain moving statistics are PyTorch's EMA") {
  float mm = 0, mv = 1;
  const float mean = 3.0f, var = 2.0f;
  cpu::bn_moving_update_plain(&mm, &mv, &mean, &var, 1, 3, 0.9f);
  CHECK(mm == doctest::Approx(0.3).epsilon(1e-6));
  CHECK(mv == doctest::Approx(0.9 + 0.1 * 3.0).epsilon(1e-6));
}

TEST_CASE("learning-rate schedules: constant, and cosine from lr to its floor along half a cosine") {
  LrSchedule c;
  c.lr = 2e-3;
  c.total_steps = 100;
  CHECK(c.at(0) == 2e-3);
  CHECK(c.at(99) == 2e-3);

  LrSchedule s;
  s.kind = "cosine";
  s.lr = 1e-3;
  s.floor = 0.1;
  s.total_steps = 8;
  // lr * (floor + (1 - floor) * (1 + cos(pi t / T)) / 2), worked by hand: cos(pi/4) = 0.70710678...
  CHECK(s.at(0) == doctest::Approx(1e-3).epsilon(1e-15));
  CHECK(s.at(2) == doctest::Approx(1e-3 * (0.1 + 0.9 * 0.5 * (1 + 0.7071067811865476))).epsilon(1e-14));
  CHECK(s.at(4) == doctest::Approx(0.55e-3).epsilon(1e-14));
  CHECK(s.at(8) == doctest::Approx(1e-4).epsilon(1e-14));
  for (int64_t t = 1; t <= 8; ++t) CHECK(s.at(t) < s.at(t - 1));

  s.kind = "linear";
  CHECK_THROWS_WITH(s.validate(), doctest::Contains("--lr-schedule"));
  s.kind = "cosine";
  s.floor = 1.5;
  CHECK_THROWS_WITH(s.validate(), doctest::Contains("--lr-floor"));
}
