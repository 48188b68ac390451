// A short training run on a small real batch: four 64x64 crops of Colin27 (mricron-data's ch2.nii.gz),
// the input the parity state file carries. The autoencoder must learn to reproduce them.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>

#include "engine/rmsprop.h"
#include "model/autoencoder.h"
#include "model/training_step.h"
#include "tests/parity/state_file.h"

using namespace mriae;

TEST_CASE("a short training run on real slices halves the loss") {
  const auto state = parity::StateFile::load(std::string(MRIAE_SOURCE_DIR) + "/tests/parity/state_v1.bin");
  const Tensor& x = state.at("input");
  Autoencoder model({});
  RMSprop opt(model.parameters(), {});
  float first = 0, last = 0;
  const int steps = 12;
  for (int s = 0; s < steps; ++s) {
    last = train_step(model, opt, x);
    REQUIRE(std::isfinite(last));
    if (s == 0) first = last;
  }
  // The loss of the trained weights on the same batch, in training mode as during the steps.
  Var after = mse_loss(nullptr, model.forward(nullptr, Var(x), true), x);
  MESSAGE("loss " << first << " -> " << last << " after " << steps << " steps, " << after.value().item() << " after the last update");
  CHECK(after.value().item() < 0.5f * first);
}
