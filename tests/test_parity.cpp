// Parity with PyTorch in the manner of llm.c's test_gpt2: tests/parity/make_state.py runs the same model in
// float64 from float32 starting values and stores what the engine must reproduce; this test runs the engine
// in float32 and compares tensor by tensor. See tests/parity/README.md for how every limit was measured.
//
// Two effects that are not engine errors shape the checks:
//  * ReLU kink crossings. ~2.2M ReLU inputs per forward pass; a handful lie within float32 rounding of zero,
//    and when one lands on the other side its upstream gradient jumps by that element's whole dy. Through the
//    batchnorm backward that jump reaches every gradient upstream: ~1e-2 relative instead of ~1e-5. It cannot
//    reach the forward pass (ReLU is continuous) nor the gradients of conv11 and bn10, which no ReLU separates
//    from the loss, so those keep tight limits.
//  * RMSprop's first step is lr*sign(g)*sqrt(1/(1-rho)) for any |g| well above eps, so an element whose
//    gradient is uncertain (a sign flip, or a mathematically zero gradient left as rounding noise) moves a
//    full step either way. Such elements are named, counted and bounded instead of loosening every limit, and
//    each step starts from the reference's parameters (teacher forcing): left free, a few hundred such
//    elements make a 3-step trajectory diverge chaotically (11% on the step-3 output), which would test nothing.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/rmsprop.h"
#include "model/autoencoder.h"
#include "tests/parity/state_file.h"

using namespace mriae;
using parity::StateFile;

namespace {

const std::string kStatePath = std::string(MRIAE_SOURCE_DIR) + "/tests/parity/state_v1.bin";

// The reference's hyperparameters (make_state.py); the engine is configured explicitly, not by its defaults.
constexpr float kLr = 1e-3f, kRho = 0.9f, kRmsEps = 1e-7f;
constexpr float kBnEps = 1e-3f, kBnMomentum = 0.99f;
constexpr int kSteps = 3;

// Relative-L2 limits; README.md gives the measurements behind each.
constexpr double kForwardLimit = 1e-5;     // training-mode outputs (measured <= 2.3e-6)
constexpr double kEvalLimit = 2e-5;        // eval-mode output (5.9e-6): it normalises with the moving
                                           // variances and inherits their error (kMovingStatLimit)
constexpr double kLossLimit = 1e-6;        // the loss sums in double (measured <= 7e-8)
constexpr double kMovingStatLimit = 2e-6;  // moving mean and variance (<= 9.7e-7): 1 - 0.99^t in float32
                                           // loses ~1e-6 to cancellation, as it does in Keras
constexpr double kGradTightLimit = 1e-5;   // conv11 and bn10: no ReLU between them and the loss (1.2e-6)
constexpr double kGradKinkLimit = 5e-2;    // behind a ReLU: kink crossings (6.9e-3 here; PyTorch's own
                                           // float32 reaches 1.7e-2 on one-ulp jittered inputs)
// Parameters after each step, over the elements whose step-1 gradient is well determined (below). The
// first RMSprop step amplifies gradient errors of elements in its eps regime (|g| ~ eps/sqrt(1-rho)), where
// the update still depends on |g|: conv biases ahead of ReLU+BN have such small gradients by construction.
constexpr double kParamKinkFreeLimit = 1e-4;  // conv11 and bn10 (4e-6 here; 4e-5 seen in PyTorch float32)
constexpr double kParamLimit = 5e-3;          // the rest (1.2e-3 here; 1.2e-3 at worst in PyTorch float32)
// An element's step-1 gradient is "uncertain" when ours is off by more than half the reference's value:
// then not even the sign of RMSprop's sign-like first step is determined. Such elements are excluded from
// the parameter limits but may not move further than two full steps apart, and at most this fraction of
// all parameter elements may be uncertain (0.42% here, 0.83% at worst in PyTorch float32, ~0 without a
// kink crossing).
constexpr double kUncertainRel = 0.5;
constexpr double kMaxUncertainFraction = 2e-2;
// Above this, a step-1 gradient error is no longer plain rounding; the report then names the cause.
constexpr double kKinkEvidence = 1e-4;

struct Errors {
  double rel_l2 = 0, max_abs = 0;
};

// Over the elements where keep is true (all when keep is empty). A zero reference gives the absolute L2.
Errors compare(const Tensor& ours, const Tensor& ref, const std::vector<bool>& keep = {}) {
  REQUIRE(ours.numel() == ref.numel());
  double d2 = 0, r2 = 0, ma = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    if (!keep.empty() && !keep[size_t(i)]) continue;
    const double r = ref.data()[i], d = double(ours.data()[i]) - r;
    d2 += d * d;
    r2 += r * r;
    ma = std::max(ma, std::fabs(d));
  }
  return {r2 > 0 ? std::sqrt(d2 / r2) : std::sqrt(d2), ma};
}

// Prints one line per tensor and keeps each class's worst relative error for the summary.
class Report {
 public:
  void check(const std::string& cls, const std::string& name, const Errors& e, double limit,
             const std::string& note = "") {
    std::printf("  %-34s rel %.2e  max|d| %.2e  limit %.0e  headroom x%-8.3g %s\n", name.c_str(), e.rel_l2, e.max_abs,
                limit, e.rel_l2 > 0 ? limit / e.rel_l2 : INFINITY, note.c_str());
    CHECK_MESSAGE(e.rel_l2 <= limit, name << ": relative L2 " << e.rel_l2 << " exceeds " << limit);
    for (auto& w : worst_)
      if (w.cls == cls) {
        if (e.rel_l2 > w.rel) w = {cls, name, e.rel_l2, limit};
        return;
      }
    worst_.push_back({cls, name, e.rel_l2, limit});
  }
  void summary() const {
    std::printf("parity summary (worst relative L2 per class):\n");
    for (auto& w : worst_)
      std::printf("  %-30s %.2e  limit %.0e  (%s)\n", w.cls.c_str(), w.rel, w.limit, w.name.c_str());
  }

 private:
  struct Worst {
    std::string cls, name;
    double rel, limit;
  };
  std::vector<Worst> worst_;
};

void load_params(Autoencoder& model, const StateFile& state, const std::string& prefix) {
  for (auto& e : model.parameters().entries()) {
    const Tensor& src = state.at(prefix + e.name);
    REQUIRE_MESSAGE(src.shape() == e.var.shape(), prefix << e.name << " has shape " << shape_str(src.shape())
                                                         << ", the model " << shape_str(e.var.shape()));
    Tensor(e.var.value()).copy_from(src);
  }
}

}  // namespace

TEST_CASE("engine matches the PyTorch reference state over three RMSprop steps") {
  const StateFile state = StateFile::load(kStatePath);
  std::set<std::string> compared;
  auto ref = [&](const std::string& name) -> const Tensor& {
    compared.insert(name);
    return state.at(name);
  };

  AutoencoderConfig config;
  config.device = Device::CPU;
  config.bn = BatchNormOptions{kBnEps, kBnMomentum, MovingStatsRule::Keras};
  Autoencoder model(config);
  ParameterSet& params = model.parameters();
  RMSprop optimiser(params, RMSpropOptions{kLr, kRho, kRmsEps});
  const Tensor& input = ref("input");
  REQUIRE(input.ndim() == 4);

  // conv11 and bn10 are the only parameters with no ReLU between them and the loss.
  const std::string last_conv = "conv" + std::to_string(Autoencoder::kConvs) + ".";
  const std::string last_bn = "bn" + std::to_string(Autoencoder::kBatchNorms) + ".";
  auto kink_free = [&](const std::string& n) { return n.rfind(last_conv, 0) == 0 || n.rfind(last_bn, 0) == 0; };

  // Largest difference two RMSprop steps can have: each moves at most lr*sqrt(1/(1-rho)), since the
  // accumulator holds at least (1-rho)*g^2; a little slack for float32.
  const double full_swing = 2.0 * kLr / std::sqrt(1.0 - kRho) * (1 + 1e-5);

  Report report;
  std::vector<std::vector<bool>> certain(params.size());  // per parameter: step-1 gradient well determined
  int64_t uncertain_total = 0, flipped_total = 0;
  double worst_behind_relu = 0;

  for (int k = 1; k <= kSteps; ++k) {
    const std::string step = "step" + std::to_string(k) + "/";
    const std::string before = k == 1 ? "init/" : "step" + std::to_string(k - 1) + "/param/";
    std::printf("step %d\n", k);
    load_params(model, state, before);
    if (k == 1)
      for (auto& e : params.entries()) compared.insert("init/" + e.name);

    params.zero_grad();
    Tape tape;
    const Var x(input);
    Var y = model.forward(&tape, x, /*training=*/true);
    Var loss = mse_loss(&tape, y, input);
    report.check("training output", step + "output", compare(y.value(), ref(step + "output")), kForwardLimit);
    report.check("loss", step + "loss", compare(loss.value(), ref(step + "loss")), kLossLimit);
    tape.backward(loss);

    if (k == 1) {
      for (size_t p = 0; p < params.size(); ++p) {
        const auto& e = params.entries()[p];
        const Tensor& g_ref = ref("step1/grad/" + e.name);
        const Tensor& g = e.var.grad();
        const bool tight = kink_free(e.name);
        const Errors err = compare(g, g_ref);
        report.check(tight ? "step-1 grad, no ReLU on path" : "step-1 grad, behind a ReLU", "step1/grad/" + e.name, err,
                     tight ? kGradTightLimit : kGradKinkLimit);
        if (!tight) worst_behind_relu = std::max(worst_behind_relu, err.rel_l2);
        certain[p].resize(size_t(g.numel()));
        for (int64_t i = 0; i < g.numel(); ++i) {
          const double gr = g_ref.data()[i], go = g.data()[i];
          certain[p][size_t(i)] = std::fabs(go - gr) <= kUncertainRel * std::fabs(gr);
          uncertain_total += !certain[p][size_t(i)];
        }
      }
    }

    optimiser.step();

    for (size_t p = 0; p < params.size(); ++p) {
      const auto& e = params.entries()[p];
      const std::string name = step + "param/" + e.name;
      const Tensor& p_ref = ref(name);
      const Tensor& p0 = state.at(before + e.name);
      const Tensor& ours = e.var.value();
      int64_t n_uncertain = 0, n_flipped = 0;
      double uncertain_max = 0;
      for (int64_t i = 0; i < ours.numel(); ++i) {
        if (certain[p][size_t(i)]) continue;
        ++n_uncertain;
        const double d_ref = double(p_ref.data()[i]) - p0.data()[i], d_ours = double(ours.data()[i]) - p0.data()[i];
        n_flipped += d_ref * d_ours < 0;
        uncertain_max = std::max(uncertain_max, std::fabs(d_ours - d_ref));
      }
      if (k == 1) flipped_total += n_flipped;
      std::string note;
      if (n_uncertain)
        note = "(" + std::to_string(n_uncertain) + " uncertain excluded, " + std::to_string(n_flipped) +
               " moved the other way)";
      const bool tight = kink_free(e.name);
      report.check(tight ? "params, no ReLU on path" : "params, behind a ReLU", name, compare(ours, p_ref, certain[p]),
                   tight ? kParamKinkFreeLimit : kParamLimit, note);
      CHECK_MESSAGE(uncertain_max <= full_swing,
                    name << ": an uncertain element moved " << uncertain_max << ", more than two full steps apart");
    }

    for (int i = 1; i <= Autoencoder::kBatchNorms; ++i) {
      const BatchNormState& s = model.bn_states()[size_t(i - 1)];
      const std::string bn = step + "bn" + std::to_string(i);
      report.check("BN moving statistics", bn + ".running_mean", compare(s.moving_mean, ref(bn + ".running_mean")),
                   kMovingStatLimit);
      report.check("BN moving statistics", bn + ".running_var", compare(s.moving_var, ref(bn + ".running_var")),
                   kMovingStatLimit);
    }
  }

  std::printf("eval\n");
  load_params(model, state, "step" + std::to_string(kSteps) + "/param/");
  const Var y_eval = model.forward(nullptr, Var(input), /*training=*/false);
  report.check("eval output", "eval/output", compare(y_eval.value(), ref("eval/output")), kEvalLimit);

  const double uncertain_fraction = double(uncertain_total) / double(params.numel());
  std::printf(
      "step-1 gradients: %lld of %lld elements uncertain (%.3f%%), %lld of them moved the other way in step 1\n",
      (long long)uncertain_total, (long long)params.numel(), 100 * uncertain_fraction, (long long)flipped_total);
  CHECK_MESSAGE(uncertain_fraction <= kMaxUncertainFraction, uncertain_total
                                                                 << " uncertain step-1 gradient elements, more than "
                                                                 << kMaxUncertainFraction << " of all parameters");
  if (worst_behind_relu > kKinkEvidence)
    std::printf(
        "step-1 gradients behind a ReLU are off by up to %.2e while conv11 and bn10 are at rounding level: "
        "the signature of a ReLU kink crossing (tests/parity/README.md)\n",
        worst_behind_relu);
  report.summary();

  // Every tensor in the file was compared: a tensor the generator adds cannot go unchecked silently.
  for (const auto& n : state.names())
    CHECK_MESSAGE(compared.count(n) == 1, "state file tensor '" << n << "' was not compared");
}

namespace {

// A scratch directory removed on scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mriae_parity_XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string write_bytes(const std::filesystem::path& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  REQUIRE(out);
  return path.string();
}

// The message must name the file and say what is wrong.
void expect_load_error(const std::string& path, const std::string& what) {
  try {
    StateFile::load(path);
    FAIL("loading " << path << " should have failed with '" << what << "'");
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find(what) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("state file reader rejects damaged copies with an error naming the file") {
  const std::vector<char> good = read_bytes(kStatePath);
  REQUIRE(good.size() > 64);
  TempDir dir;

  std::vector<char> half(good.begin(), good.begin() + std::ptrdiff_t(good.size() / 2));
  expect_load_error(write_bytes(dir.path / "half.bin", half), "truncated");

  std::vector<char> header_only(good.begin(), good.begin() + 14);
  expect_load_error(write_bytes(dir.path / "header.bin", header_only), "truncated");

  std::vector<char> bad_magic = good;
  bad_magic[0] = 'X';
  expect_load_error(write_bytes(dir.path / "magic.bin", bad_magic), "bad magic");

  std::vector<char> lfs_pointer{'v', 'e', 'r', 's', 'i', 'o', 'n', ' ', 'h', 't', 't', 'p', 's', ':', '/', '/'};
  expect_load_error(write_bytes(dir.path / "pointer.bin", lfs_pointer), "bad magic");

  std::vector<char> version = good;
  version[8] = 2;
  expect_load_error(write_bytes(dir.path / "version.bin", version), "version 2");

  std::vector<char> trailing = good;
  trailing.push_back(0);
  expect_load_error(write_bytes(dir.path / "trailing.bin", trailing), "unexpected bytes");

  std::vector<char> huge_dim = good;
  REQUIRE(std::string(good.data() + 20, 5) == "input");
  // First tensor's first dim: after magic (8), version and count (8), name length (4), "input" (5), ndim (4).
  huge_dim[8 + 8 + 4 + 5 + 4 + 7] = 0x40;
  expect_load_error(write_bytes(dir.path / "dims.bin", huge_dim), "claims more data than the rest of the file");

  expect_load_error((dir.path / "missing.bin").string(), "cannot open");

  const StateFile ok = StateFile::load(write_bytes(dir.path / "copy.bin", good));
  CHECK_THROWS_AS(ok.at("no/such/tensor"), std::out_of_range);
}
