// The float64 engine against PyTorch's float64 run of the same problem (tests/parity/state_v2_f64.bin, from
// make_state.py --dtype float64), FREE-RUNNING: the engine starts from the reference's starting values and
// then follows its own trajectory for three RMSprop steps, with no reference values fed back in.
//
// In float32 a free run is meaningless (tests/parity/README.md): ReLU inputs within rounding of zero and
// RMSprop's sign-like first step turn rounding into 1e-2 differences. In float64 no ReLU input of this problem
// lies within rounding (~1e-16) of zero, and the runs agree to what summation order explains: ~1e-14 on the
// first step. What grows from there is one effect. 3 of conv1's 32 channels never clip at the ReLU, so the
// batchnorm after it cancels their bias and its gradient is mathematically zero (4 more never pass it: exact
// zeros in both engines). Both compute noise of ~1e-16 there, which RMSprop, in its eps regime, turns into
// moves of up to lr*|g|/eps ~ 4e-12 per step. They reach 5e-11 on conv1.bias after three steps, 1.6e-11 on bn1's moving
// mean and 6e-11 on the eval output (through bn1's moving statistics); everything else stays below 2e-12.
// The same on 1 to 8 threads. Limit: 1e-10 relative L2 on every tensor.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/rmsprop.h"
#include "model/autoencoder.h"
#include "tests/parity/state_file.h"

using namespace mriae;
using parity::StateFile;

namespace {

const std::string kStatePath = std::string(MRIAE_SOURCE_DIR) + "/tests/parity/state_v2_f64.bin";
constexpr int kSteps = 3;
constexpr double kLimit = 1e-10;

struct Errors {
  double rel_l2 = 0, max_abs = 0;
};

Errors compare(const Tensor& ours, const Tensor& ref) {
  REQUIRE(ours.shape() == ref.shape());
  REQUIRE(ours.dtype() == DType::Float64);
  const std::vector<double> a = ours.to_vector<double>(), b = ref.to(DType::Float64).to_vector<double>();
  double d2 = 0, r2 = 0, ma = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = a[i] - b[i];
    d2 += d * d;
    r2 += b[i] * b[i];
    ma = std::max(ma, std::fabs(d));
  }
  return {r2 > 0 ? std::sqrt(d2 / r2) : std::sqrt(d2), ma};
}

}  // namespace

TEST_CASE("float64 engine matches the PyTorch float64 reference free-running over three RMSprop steps") {
  const StateFile state = StateFile::load(kStatePath);
  std::set<std::string> compared;
  std::string worst_name;
  double worst = 0;
  auto check = [&](const std::string& name, const Tensor& ours) {
    compared.insert(name);
    const Errors e = compare(ours, state.at(name));
    CHECK_MESSAGE(e.rel_l2 <= kLimit, name << ": relative L2 " << e.rel_l2 << " exceeds " << kLimit
                                           << " (max |d| " << e.max_abs << ")");
    if (e.rel_l2 >= worst) worst = e.rel_l2, worst_name = name;
    return e;
  };

  AutoencoderConfig config;
  config.device = Device::CPU;
  config.dtype = DType::Float64;
  config.bn = BatchNormOptions{1e-3, 0.99, MovingStatsRule::Keras};  // make_state.py's, exactly
  Autoencoder model(config);
  ParameterSet& params = model.parameters();
  RMSprop optimiser(params, RMSpropOptions{1e-3, 0.9, 1e-7});

  // The input and the starting values are exact float32 numbers, stored as such; the engine takes them
  // converted (exactly) to float64, as the reference did.
  const Tensor& input32 = state.at("input");
  REQUIRE(input32.dtype() == DType::Float32);
  const Tensor input = model.input(input32);
  compared.insert("input");
  for (auto& e : params.entries()) {
    const Tensor& init = state.at("init/" + e.name);
    REQUIRE(init.shape() == e.var.shape());
    Tensor(e.var.value()).copy_from(init.to(DType::Float64));
    compared.insert("init/" + e.name);
  }

  for (int k = 1; k <= kSteps; ++k) {
    const std::string step = "step" + std::to_string(k) + "/";
    params.zero_grad();
    Tape tape;
    Var y = model.forward(&tape, Var(input), /*training=*/true);
    Var loss = mse_loss(&tape, y, input);
    const Errors out = check(step + "output", y.value());
    const Errors l = check(step + "loss", loss.value());
    tape.backward(loss);
    double grad_worst = 0;
    std::string grad_worst_name;
    for (auto& e : params.entries()) {
      const Errors g = check(step + "grad/" + e.name, e.var.grad());
      if (g.rel_l2 >= grad_worst) grad_worst = g.rel_l2, grad_worst_name = e.name;
    }
    optimiser.step();
    double bn_worst = 0;
    for (int i = 1; i <= Autoencoder::kBatchNorms; ++i) {
      const BatchNormState& s = model.bn_states()[size_t(i - 1)];
      const std::string bn = step + "bn" + std::to_string(i);
      bn_worst = std::max({bn_worst, check(bn + ".running_mean", s.moving_mean).rel_l2,
                           check(bn + ".running_var", s.moving_var).rel_l2});
    }
    std::printf("float64 step %d: output %.2e, loss %.2e, worst gradient %.2e (%s), moving statistics %.2e\n", k,
                out.rel_l2, l.rel_l2, grad_worst, grad_worst_name.c_str(), bn_worst);
  }
  double param_worst = 0;
  for (auto& e : params.entries())
    param_worst = std::max(param_worst, check("step" + std::to_string(kSteps) + "/param/" + e.name, e.var.value()).rel_l2);
  const Var y_eval = model.forward(nullptr, Var(input), /*training=*/false);
  const Errors ev = check("eval/output", y_eval.value());
  std::printf("float64 after step %d: worst parameter %.2e, eval output %.2e; worst of all %.2e (%s), limit %.0e\n",
              kSteps, param_worst, ev.rel_l2, worst, worst_name.c_str(), kLimit);

  for (const auto& n : state.names())
    CHECK_MESSAGE(compared.count(n) == 1, "state file tensor '" << n << "' was not compared");
}

TEST_CASE("state file reader reads format v2's dtypes and rejects a damaged v2 file") {
  const StateFile state = StateFile::load(kStatePath);
  CHECK(state.at("input").dtype() == DType::Float32);
  CHECK(state.at("step1/output").dtype() == DType::Float64);

  std::ifstream in(kStatePath, std::ios::binary);
  REQUIRE(in);
  const std::vector<char> good{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const std::filesystem::path dir = std::filesystem::temp_directory_path();
  auto expect = [&](const std::vector<char>& bytes, const std::string& name, const std::string& what) {
    const std::string path = (dir / ("mriae_parity_v2_" + name)).string();
    {
      std::ofstream out(path, std::ios::binary);
      out.write(bytes.data(), std::streamsize(bytes.size()));
      REQUIRE(out);
    }
    try {
      StateFile::load(path);
      FAIL("loading " << path << " should have failed with '" << what << "'");
    } catch (const std::runtime_error& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(path) != std::string::npos);
      CHECK(std::string(e.what()).find(what) != std::string::npos);
    }
    std::filesystem::remove(path);
  };
  expect(std::vector<char>(good.begin(), good.end() - 8), "short.bin", "truncated");
  std::vector<char> bad_code = good;
  REQUIRE(std::string(good.data() + 20, 5) == "input");
  bad_code[8 + 8 + 4 + 5] = 7;  // the first tensor's dtype code: after magic, version, count, name length, name
  expect(bad_code, "code.bin", "dtype code 7");
}
