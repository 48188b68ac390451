// The float64 engine: tensors of either dtype, ops that refuse to mix them, the whole model's autograd in
// float64 against finite differences, and the float64 run as the oracle of the float32 one.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "engine/rmsprop.h"
#include "model/autoencoder.h"
#include "model/training_step.h"
#include "tests/parity/state_file.h"

using namespace mriae;

namespace {

template <typename F> std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

double rel_l2(const Tensor& ours, const Tensor& ref) {
  const std::vector<double> a = ours.to(DType::Float64).to_vector<double>(), b = ref.to(DType::Float64).to_vector<double>();
  REQUIRE(a.size() == b.size());
  double d2 = 0, r2 = 0;
  for (size_t i = 0; i < a.size(); ++i) d2 += (a[i] - b[i]) * (a[i] - b[i]), r2 += b[i] * b[i];
  return std::sqrt(d2 / r2);
}

}  // namespace

TEST_CASE("float64 tensors: creation, views, conversion and dtype checks") {
  const Tensor t = Tensor::full({2, 3}, 1.0 / 3.0, Device::CPU, DType::Float64);
  CHECK(t.dtype() == DType::Float64);
  CHECK(t.bytes() == 6 * sizeof(double));
  CHECK(t.item(5) == 1.0 / 3.0);
  const Tensor v = t.view(3, {3});
  v.data<double>()[0] = 2.5;
  CHECK(t.item(3) == 2.5);  // views share storage at the right element size
  CHECK_THROWS_AS(t.view(4, {3}), std::out_of_range);

  // float64 -> float32 rounds to nearest; float32 -> float64 is exact.
  const Tensor f = t.to(DType::Float32);
  CHECK(f.dtype() == DType::Float32);
  CHECK(f.data()[0] == 1.0f / 3.0f);
  CHECK(f.to(DType::Float64).item(0) == double(1.0f / 3.0f));
  CHECK(f.to(DType::Float32).data() == f.data());  // no copy when the dtype is already right

  // The float32 accessor and a wrong data<T>() name the tensor's dtype instead of reinterpreting bytes.
  CHECK(error_of([&] { (void)t.data(); }).find("a float64 tensor of shape (2, 3) read as float32") != std::string::npos);
  CHECK_THROWS_AS((void)f.data<double>(), std::logic_error);
  CHECK(error_of([&] { Tensor(f).copy_from(t); }).find("a float64 tensor into a float32 one") != std::string::npos);
  CHECK(Tensor::from_vector({2}, std::vector<double>{1.0, 2.0}).dtype() == DType::Float64);
  CHECK(Tensor::from_vector({2}, {1, 2}).dtype() == DType::Float32);

  // The CUDA backend computes in float32: a float64 tensor there is refused, whatever the build.
  const std::string gpu = error_of([] { Tensor::empty({4}, Device::CUDA, DType::Float64); });
  CHECK(gpu.find("float64") != std::string::npos);
  CHECK(gpu.find("float32 only") != std::string::npos);
  CHECK(resolve_device("auto", DType::Float64) == Device::CPU);
  CHECK(error_of([] { resolve_device("cuda", DType::Float64); }).find("use --device cpu") != std::string::npos);
  CHECK(parse_dtype("float64") == DType::Float64);
  CHECK(error_of([] { parse_dtype("half"); }).find("'half'") != std::string::npos);
}

TEST_CASE("ops and the model refuse inputs of mixed dtypes") {
  const Var x(Tensor::zeros({1, 2, 4, 4}, Device::CPU, DType::Float64));
  const Var w(Tensor::zeros({3, 2, 3, 3}));
  const Var b(Tensor::zeros({3}));
  CHECK(error_of([&] { conv2d3x3(nullptr, x, w, b); }).find("different dtypes (float64 and float32)") !=
        std::string::npos);
  CHECK(error_of([&] { mse_loss(nullptr, x, Tensor::zeros({1, 2, 4, 4})); }).find("a float32 target for a float64") !=
        std::string::npos);

  AutoencoderConfig c;
  c.dtype = DType::Float64;
  Autoencoder model(c);
  const Tensor batch = Tensor::full({1, 1, 8, 8}, 0.5);
  CHECK(error_of([&] { model.forward(nullptr, Var(batch), false); }).find("Autoencoder::input") != std::string::npos);
  const Tensor in = model.input(batch);
  CHECK(in.dtype() == DType::Float64);
  CHECK(model.forward(nullptr, Var(in), false).dtype() == DType::Float64);
  CHECK(model.parameters().flat_values().dtype() == DType::Float64);
  CHECK(model.bn_states()[0].moving_var.dtype() == DType::Float64);
  RMSprop opt(model.parameters(), {});
  CHECK(opt.accumulators().dtype() == DType::Float64);
  // The float32 default is untouched, and a float64 model on the GPU is an error before any work.
  CHECK(Autoencoder({}).parameters().flat_values().dtype() == DType::Float32);
  AutoencoderConfig gpu = c;
  gpu.device = Device::CUDA;
  CHECK_THROWS_AS(Autoencoder{gpu}, std::invalid_argument);
}

TEST_CASE("the same seed gives a float64 model the float32 model's starting values") {
  AutoencoderConfig c;
  c.seed = 7;
  Autoencoder m32(c);
  c.dtype = DType::Float64;
  Autoencoder m64(c);
  CHECK(m64.parameters().flat_values().to(DType::Float32).to_vector() == m32.parameters().flat_values().to_vector());
}

// The whole model, forward and backward through every op, in float64 against central differences of the
// loss. float64 makes this sharp: with h = 1e-6 the truncation error is ~h^2 and the rounding error ~1e-16/h,
// so agreement to 1e-6 leaves no room for a wrong term.
TEST_CASE("the float64 model's gradients match central finite differences of the loss") {
  AutoencoderConfig c;
  c.dtype = DType::Float64;
  c.seed = 5;
  Autoencoder model(c);
  ParameterSet& params = model.parameters();
  Rng rng(11);
  // Non-trivial biases, gammas and betas, so that every gradient path carries values.
  {
    std::vector<double> v = params.flat_values().to_vector<double>();
    for (auto& e : params.entries()) {
      const int64_t off = e.var.value().data<double>() - params.flat_values().data<double>();
      if (e.var.value().ndim() == 1)
        for (int64_t i = 0; i < e.var.value().numel(); ++i)
          v[size_t(off + i)] = e.name.rfind("bn", 0) == 0 && e.name.find(".weight") != std::string::npos
                                   ? rng.uniform(0.8, 1.2)
                                   : rng.uniform(-0.1, 0.1);
    }
    Tensor(params.flat_values()).copy_from(Tensor::from_vector(params.flat_values().shape(), v));
  }
  std::vector<double> img(2 * 16 * 16);
  for (double& p : img) p = rng.uniform();
  const Tensor x = Tensor::from_vector({2, 1, 16, 16}, img);
  auto loss_at = [&]() {
    return mse_loss(nullptr, model.forward(nullptr, Var(x), true), x).value().item();
  };

  params.zero_grad();
  Tape tape;
  Var loss = mse_loss(&tape, model.forward(&tape, Var(x), true), x);
  tape.backward(loss);
  const std::vector<double> grad = params.flat_grads().to_vector<double>();
  double* value = params.flat_values().data<double>();

  // A ReLU input within h of zero makes the loss kinked inside the difference's interval; such an element
  // shows as a difference that changes with h, and is counted instead of compared.
  auto central = [&](int64_t i, double h) {
    const double keep = value[i];
    value[i] = keep + h;
    const double up = loss_at();
    value[i] = keep - h;
    const double down = loss_at();
    value[i] = keep;
    return (up - down) / (2 * h);
  };
  const double h = 1e-6;
  double worst = 0;
  int checked = 0, kinked = 0;
  for (auto& e : params.entries()) {
    const int64_t off = e.var.value().data<double>() - value;
    for (int pick = 0; pick < 2; ++pick) {
      const int64_t i = off + int64_t(rng.uniform() * double(e.var.value().numel()));
      const double fd = central(i, h), g = grad[size_t(i)];
      const double scale = std::max(std::fabs(fd), 1e-4);
      const double err = std::fabs(fd - g) / scale;
      if (err >= 1e-6 && std::fabs(central(i, h / 4) - fd) / scale >= 1e-6) {
        ++kinked;
        continue;
      }
      CHECK_MESSAGE(err < 1e-6, e.name << " element " << i - off << ": backward " << g << ", finite difference " << fd);
      worst = std::max(worst, err);
      ++checked;
    }
  }
  CHECK_MESSAGE(kinked <= 2, kinked << " elements with a kink within h: more than chance explains");
  std::printf("float64 autograd: %d parameter elements against central differences, worst relative error %.2e "
              "(%d more skipped: a ReLU kink within h)\n",
              checked, worst, kinked);
}

// The float64 run as the oracle of the float32 one, on real slices (the parity input: four crops of
// Colin27) from the model's own seeded initialisation: a float32 step must agree with it to float32
// rounding where no ReLU kink can intervene (tests/parity/README.md explains the limits).
TEST_CASE("a float32 training step agrees with the float64 oracle from the same seed") {
  const auto state = parity::StateFile::load(std::string(MRIAE_SOURCE_DIR) + "/tests/parity/state_v1.bin");
  const Tensor& x32 = state.at("input");
  AutoencoderConfig c;
  Autoencoder m32(c);
  c.dtype = DType::Float64;
  Autoencoder m64(c);
  RMSprop o32(m32.parameters(), {}), o64(m64.parameters(), {});
  const Tensor x64 = m64.input(x32);

  std::vector<Var> out;
  for (Autoencoder* m : {&m32, &m64}) {
    m->parameters().zero_grad();
    Tape tape;
    const Tensor x = m->input(x32);
    Var y = m->forward(&tape, Var(x), true);
    Var loss = mse_loss(&tape, y, x);
    tape.backward(loss);
    out.push_back(y);
    out.push_back(loss);
  }
  const double e_out = rel_l2(out[0].value(), out[2].value()), e_loss = rel_l2(out[1].value(), out[3].value());
  double e_grad = 0;
  for (const std::string name : {"conv11.weight", "conv11.bias", "bn10.weight", "bn10.bias"})
    e_grad = std::max(e_grad, rel_l2(m32.parameters().at(name).grad(), m64.parameters().at(name).grad()));
  std::printf("float32 against float64 (same seed, real slices): output %.2e, loss %.2e, kink-free gradients %.2e\n",
              e_out, e_loss, e_grad);
  CHECK(e_out < 1e-5);
  CHECK(e_loss < 1e-6);
  CHECK(e_grad < 1e-5);
  // Not equal either: the float64 path really computes in float64.
  CHECK(e_out > 0);
  CHECK(train_step(m64, o64, x32) == doctest::Approx(train_step(m32, o32, x32)).epsilon(1e-6));
}
