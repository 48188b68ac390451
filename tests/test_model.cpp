#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "engine/allocator.h"
#include "engine/rmsprop.h"
#include "model/autoencoder.h"
#include "model/summary.h"
#include "model/training_step.h"

using namespace mriae;

TEST_CASE("the model has the tutorial's parameter counts") {
  CHECK(Autoencoder::trainable_count() == 426433);
  CHECK(Autoencoder::non_trainable_count() == 1280);
  Autoencoder m({});
  CHECK(m.parameters().numel() == 426433);
  int64_t moving = 0;
  for (auto& s : m.bn_states()) moving += s.moving_mean.numel() + s.moving_var.numel();
  CHECK(moving == 1280);
  const std::string s = model_summary(176, 176);
  CHECK(s.find("Total params: 427,713") != std::string::npos);
  CHECK(s.find("Trainable params: 426,433") != std::string::npos);
  CHECK(s.find("Non-trainable params: 1,280") != std::string::npos);
  CHECK(s.find("(None, 1, 176, 176)") != std::string::npos);
  CHECK_THROWS_AS(model_summary(173, 176), std::invalid_argument);
}

TEST_CASE("initialisation is seeded Glorot uniform with zero biases and unit gammas") {
  AutoencoderConfig other;
  other.seed = 7;
  Autoencoder a({}), b({}), c(other);
  CHECK(a.parameters().flat_values().to_vector() == b.parameters().flat_values().to_vector());
  CHECK(a.parameters().flat_values().to_vector() != c.parameters().flat_values().to_vector());
  for (auto& e : a.parameters().entries()) {
    auto v = e.var.value().to_vector();
    if (e.name.find(".weight") != std::string::npos && e.var.value().ndim() == 4) {
      const double limit = std::sqrt(6.0 / (9.0 * double(e.var.shape()[0] + e.var.shape()[1])));
      double maxabs = 0, mean = 0;
      for (float x : v) maxabs = std::max(maxabs, double(std::abs(x))), mean += x;
      CHECK(maxabs <= limit);
      CHECK(maxabs > 0.9 * limit);  // the whole range is used
      CHECK(std::abs(mean / double(v.size())) < 0.2 * limit);
    } else {
      const float expect = e.name.rfind("bn", 0) == 0 && e.name.find(".weight") != std::string::npos ? 1.0f : 0.0f;
      for (float x : v) CHECK(x == expect);
    }
  }
}

TEST_CASE("forward checks its input and keeps the output in (0, 1)") {
  Autoencoder m({});
  CHECK_THROWS_AS(m.forward(nullptr, Var(Tensor::zeros({1, 1, 10, 8})), false), std::invalid_argument);
  CHECK_THROWS_AS(m.forward(nullptr, Var(Tensor::zeros({1, 2, 8, 8})), false), std::invalid_argument);
  Var y = m.forward(nullptr, Var(Tensor::full({2, 1, 12, 8}, 0.5f)), false);
  CHECK(y.shape() == Shape{2, 1, 12, 8});
  for (float v : y.value().to_vector()) CHECK((v > 0 && v < 1));
}

TEST_CASE("a training step reuses cached memory after the first") {
  Autoencoder m({});
  RMSprop opt(m.parameters(), {});
  Tensor x = Tensor::full({2, 1, 16, 16}, 0.25f);
  x.data()[5] = 0.9f;
  auto step = [&] { train_step(m, opt, x); };
  step();
  const size_t after_first = Context::get().allocator(Device::CPU).stats().system_allocs;
  step();
  step();
  CHECK(Context::get().allocator(Device::CPU).stats().system_allocs == after_first);
}

TEST_CASE("the CPU inference pass, fused, gives the bits of the op-by-op pass that a layer observer sees") {
  // Without an observer, inference on the CPU runs each block's batchnorm inside its convolution and makes
  // each upsampled tensor in cache inside the next convolution; with one, every op runs alone so that its
  // output can be seen. Trained a few steps first, so that the moving statistics are not the initial ones.
  Autoencoder m({});
  RMSprop opt(m.parameters(), {});
  Tensor x = Tensor::empty({2, 1, 24, 20});
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = float((i * 37 % 101) / 100.0);
  for (int s = 0; s < 3; ++s) train_step(m, opt, x);
  const std::vector<float> fused = m.forward(nullptr, Var(x), false).value().to_vector();
  int seen = 0;
  const LayerObserver count = [&](const std::string&, const Var&) { ++seen; };
  const std::vector<float> apart = m.forward(nullptr, Var(x), false, &count).value().to_vector();
  CHECK(seen > 20);
  REQUIRE(fused.size() == apart.size());
  size_t differ = 0;
  for (size_t i = 0; i < fused.size(); ++i) differ += fused[i] != apart[i];
  CHECK(differ == 0);
}
