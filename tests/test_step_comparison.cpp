// The step-by-step comparison that holds the GPU to the CPU (tests/test_cuda_training.cpp) must tell
// rounding from a real difference, and this is shown here, on the CPU, where CI runs it: two CPU runs whose
// inputs differ by one ulp pass it; a batchnorm eps of 1e-5 instead of 1e-3 fails it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tests/parity/state_file.h"
#include "tests/parity/step_comparison.h"

using namespace mriae;
using namespace mriae::parity;

namespace {

// The state file's problem: real MRI crops and starting values whose every gradient path is non-trivial,
// on which the limits were measured (tests/parity/README.md).
struct Problem {
  Tensor input;
  std::vector<Tensor> init;
};

Problem load_problem(const ParameterSet& layout) {
  const StateFile state = StateFile::load(std::string(MRIAE_SOURCE_DIR) + "/tests/parity/state_v1.bin");
  Problem p{state.at("input"), {}};
  for (const auto& e : layout.entries()) p.init.push_back(state.at("init/" + e.name));
  return p;
}

Tensor one_ulp_up(const Tensor& x) {
  std::vector<float> v = x.to_vector();
  for (float& f : v) f = std::nextafter(f, INFINITY);
  return Tensor::from_vector(x.shape(), v);
}

}  // namespace

TEST_CASE("the step comparison passes two CPU runs whose inputs differ by one ulp") {
  Backend ref(Device::CPU), ours(Device::CPU);
  const Problem p = load_problem(ref.model().parameters());
  ref.set_params(p.init);
  const Tensor nudged = one_ulp_up(p.input);
  REQUIRE(nudged.to_vector() != p.input.to_vector());
  const Report r = compare_backends(ref, p.input, ours, nudged);
  for (const std::string& f : r.failures()) FAIL_CHECK(f);
  CHECK(r.failures().empty());
}

TEST_CASE("the step comparison fails a run whose batchnorm eps is 1e-5 instead of 1e-3") {
  Backend ref(Device::CPU), ours(Device::CPU, BatchNormOptions{1e-5f, kBnMomentum, MovingStatsRule::Keras});
  const Problem p = load_problem(ref.model().parameters());
  ref.set_params(p.init);
  const Report r = compare_backends(ref, p.input, ours, p.input);
  const std::vector<std::string> failed = r.failed_classes();
  std::string list;
  for (const auto& c : failed) list += " [" + c + "]";
  INFO("failed classes:" << list);
  // The sharp classes catch it: the forward pass, which no kink crossing or sign-like step can explain.
  CHECK(std::find(failed.begin(), failed.end(), "training output") != failed.end());
  CHECK(std::find(failed.begin(), failed.end(), "eval output") != failed.end());
}
