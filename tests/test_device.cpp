// What a CUDA request does on a machine (or build) without a GPU. Runs in every build.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "engine/ops.h"

using namespace mriae;

TEST_CASE("asking for CUDA without a GPU is a clear error, and the CPU path keeps working") {
  if (cuda_available()) return;  // covered by the GPU suite
  CHECK(resolve_device("auto") == Device::CPU);
  CHECK_THROWS_AS(resolve_device("cuda"), std::runtime_error);
  try {
    Tensor::zeros({2, 2}, Device::CUDA);
    FAIL("a CUDA tensor was created without a GPU");
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
#ifdef MRIAE_WITH_CUDA
    CHECK(m.find("no CUDA GPU") != std::string::npos);
#else
    CHECK(m.find("no CUDA backend") != std::string::npos);
#endif
  }
  // A second request fails the same way (the failed start is not cached as a half-made context).
  CHECK_THROWS_AS(Tensor::zeros({2}, Device::CUDA), std::runtime_error);
  Var x(Tensor::full({1, 1, 2, 2}, -1.0f));
  CHECK(relu(nullptr, x).value().item(0) == 0.0f);
}
