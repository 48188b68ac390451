// mriae trace: the file holds what the steps computed, checked here against hand-computed relations between
// its own tensors (the loss from the output, sigmoid, pooling, upsampling, the loss's and sigmoid's
// gradients, the Keras moving statistics, RMSprop) and against ordinary training, and bad options and
// files are refused with nothing written.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "apps/trace.h"
#include "engine/rmsprop.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "model/training_step.h"

using namespace mriae;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("mriae_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

constexpr int64_t kH = 16, kW = 12;

std::vector<float> images(int64_t n) {
  std::vector<float> v(size_t(n * kH * kW));
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(0.5 + 0.45 * std::sin(0.37 * double(i) + 0.001 * double(i * i % 97)));
  return v;
}

std::string write_input(const fs::path& dir, int64_t n, float poison = 0) {
  SafetensorsFile f;
  std::vector<float> v = images(n);
  if (poison != 0) v[5] = poison;
  f.add_f32("input", {n, 1, kH, kW}, v.data());
  const std::string path = (dir / "input.safetensors").string();
  f.write_atomic(path);
  return path;
}

std::vector<double> get(const SafetensorsFile& f, const std::string& name) {
  const SafeTensor& t = f.tensors.at(name);
  return f.f64(name, t.shape);
}

double rel(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) d += (a[i] - b[i]) * (a[i] - b[i]), n += b[i] * b[i];
  return std::sqrt(d / (n > 0 ? n : 1));
}

}  // namespace

TEST_CASE("trace: every tensor is there, and its tensors agree with hand-computed relations") {
  const fs::path dir = temp_dir("trace");
  TraceOptions o;
  o.input = write_input(dir, 4);
  o.seed = 5;
  o.seed_given = true;
  o.batch = 2;
  o.steps = 2;
  o.dtype = "float64";
  o.out = (dir / "t.safetensors").string();
  write_trace(o);
  const SafetensorsFile f = SafetensorsFile::read(o.out);
  CHECK(f.metadata.at("format") == "mriae-trace");
  CHECK(f.metadata.at("format_version") == kTraceFormatVersion);
  CHECK(f.metadata.at("dtype") == "float64");
  CHECK(f.metadata.at("bn_eps") == "0.001");
  CHECK(f.metadata.at("rmsprop_eps") == "9.9999999999999995e-08");
  CHECK(f.metadata.at("rmsprop").find("outside the square root") != std::string::npos);
  CHECK(f.metadata.at("maxpool").find("first maximum") != std::string::npos);

  // The starting state is the seeded model's, under its checkpoint names.
  AutoencoderConfig cfg;
  cfg.seed = 5;
  cfg.dtype = DType::Float64;
  Autoencoder fresh(cfg);
  for (auto& e : fresh.parameters().entries()) {
    CHECK(get(f, "init/" + e.name) == e.var.value().to_vector<double>());
    CHECK(f.tensors.at("step1/grad/" + e.name).shape == f.tensors.at("init/" + e.name).shape);
  }
  CHECK(get(f, "init/bn3.running_var") == std::vector<double>(64, 1.0));
  CHECK(f.i64("step2/after/optimizer.steps", {})[0] == 2);
  CHECK(f.i64("step2/after/bn10.num_batches_tracked", {})[0] == 2);

  const std::vector<float> in = images(4);
  for (int k = 1; k <= 2; ++k) {
    const std::string p = "step" + std::to_string(k) + "/";
    const std::vector<double> x = get(f, p + "input");
    for (size_t i = 0; i < x.size(); ++i) REQUIRE(x[i] == double(in[size_t(k - 1) * x.size() + i]));
    const std::vector<double> z = get(f, p + "act/conv11"), y = get(f, p + "act/sigmoid");
    REQUIRE(z.size() == x.size());
    double loss = 0;
    std::vector<double> s(z.size()), dy(z.size()), dz(z.size());
    for (size_t i = 0; i < z.size(); ++i) {
      s[i] = 1 / (1 + std::exp(-z[i]));
      loss += (y[i] - x[i]) * (y[i] - x[i]);
      dy[i] = 2 * (y[i] - x[i]) / double(x.size());
      dz[i] = dy[i] * y[i] * (1 - y[i]);
    }
    CHECK(rel(y, s) < 1e-14);
    CHECK(std::abs(get(f, p + "loss")[0] - loss / double(x.size())) < 1e-15);
    CHECK(rel(get(f, p + "act_grad/sigmoid"), dy) < 1e-14);
    CHECK(rel(get(f, p + "act_grad/conv11"), dz) < 1e-13);
    double db = 0;
    for (double v : dz) db += v;
    CHECK(std::abs(get(f, p + "grad/conv11.bias")[0] - db) < 1e-12 * std::abs(db) + 1e-300);

    // pool1 is the 2x2 maximum of bn2; up2 repeats bn10 in 2x2 blocks.
    const auto& bs = f.tensors.at(p + "act/bn2").shape;
    const std::vector<double> bn2 = get(f, p + "act/bn2"), pool = get(f, p + "act/pool1");
    const int64_t C = bs[1], H = bs[2], W = bs[3];
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < H / 2; ++i)
          for (int64_t j = 0; j < W / 2; ++j) {
            const double* q = bn2.data() + ((n * C + c) * H + 2 * i) * W + 2 * j;
            REQUIRE(pool[size_t(((n * C + c) * (H / 2) + i) * (W / 2) + j)] == std::max({q[0], q[1], q[W], q[W + 1]}));
          }
    const std::vector<double> bn10 = get(f, p + "act/bn10"), up = get(f, p + "act/up2");
    const auto& us = f.tensors.at(p + "act/up2").shape;
    for (int64_t i = 0; i < int64_t(up.size()); ++i) {
      const int64_t w = i % us[3], h = (i / us[3]) % us[2], nc = i / (us[3] * us[2]);
      REQUIRE(up[size_t(i)] == bn10[size_t((nc * (us[2] / 2) + h / 2) * (us[3] / 2) + w / 2)]);
    }

    // bn1's moving statistics: the Keras zero-debiased EMA of the batch mean and Bessel-corrected variance
    // of relu(conv1), from the previous hidden state.
    const std::string before = k == 1 ? "init/" : "step1/after/";
    const std::vector<double> c1 = get(f, p + "act/conv1");
    const std::vector<double> hm0 = get(f, before + "bn_ema.bn1.hidden_mean"), hv0 = get(f, before + "bn_ema.bn1.hidden_var");
    const int64_t plane = kH * kW, count = 2 * plane;
    std::vector<double> mean(32), var(32);
    for (int64_t c = 0; c < 32; ++c) {
      double sum = 0, sq = 0;
      for (int64_t n = 0; n < 2; ++n)
        for (int64_t i = 0; i < plane; ++i) sum += std::max(0.0, c1[size_t((n * 32 + c) * plane + i)]);
      const double m = sum / double(count);
      for (int64_t n = 0; n < 2; ++n)
        for (int64_t i = 0; i < plane; ++i) {
          const double d = std::max(0.0, c1[size_t((n * 32 + c) * plane + i)]) - m;
          sq += d * d;
        }
      const double debias = 1 - std::pow(0.99, k);
      mean[size_t(c)] = (0.99 * hm0[size_t(c)] + 0.01 * m) / debias;
      var[size_t(c)] = (0.99 * hv0[size_t(c)] + 0.01 * sq / double(count - 1)) / debias;
    }
    CHECK(rel(get(f, p + "after/bn1.running_mean"), mean) < 1e-13);
    CHECK(rel(get(f, p + "after/bn1.running_var"), var) < 1e-13);

    // RMSprop, eps outside the square root, from the previous accumulator.
    for (const std::string name : {"conv1.weight", "bn4.bias", "conv11.weight"}) {
      const std::vector<double> p0 = get(f, before + name), a0 = get(f, before + "optimizer.accumulator." + name);
      const std::vector<double> g = get(f, p + "grad/" + name);
      std::vector<double> a(g.size()), p1(g.size());
      for (size_t i = 0; i < g.size(); ++i) {
        a[i] = 0.9 * a0[i] + 0.1 * g[i] * g[i];
        p1[i] = p0[i] - 1e-3 * g[i] / (std::sqrt(a[i]) + 1e-7);
      }
      CHECK(rel(get(f, p + "after/optimizer.accumulator." + name), a) < 1e-15);
      CHECK(rel(get(f, p + "after/" + name), p1) < 1e-15);
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("trace: recording changes nothing, the steps are ordinary training steps bit for bit") {
  const fs::path dir = temp_dir("trace_same");
  TraceOptions o;
  o.input = write_input(dir, 2);  // the same batch every step
  o.batch = 2;
  o.steps = 2;
  o.dtype = "float32";
  o.out = (dir / "t.safetensors").string();
  write_trace(o);
  const SafetensorsFile f = SafetensorsFile::read(o.out);
  CHECK(f.metadata.at("dtype") == "float32");
  AutoencoderConfig cfg;  // seed 13, the trace's default
  Autoencoder model(cfg);
  RMSprop opt(model.parameters(), RMSpropOptions{});
  const Tensor x = Tensor::from_vector({2, 1, kH, kW}, images(2));
  for (int k = 1; k <= 2; ++k) {
    const double loss = train_step(model, opt, x);
    const std::string p = "step" + std::to_string(k) + "/";
    CHECK(float(loss) == f.f32(p + "loss", {1})[0]);
    CHECK(f.f32(p + "input", {2, 1, kH, kW}) == x.to_vector());
    for (auto& e : model.parameters().entries())
      REQUIRE(f.f32(p + "after/" + e.name, f.tensors.at(p + "after/" + e.name).shape) == e.var.value().to_vector());
    for (size_t i = 0; i < model.bn_states().size(); ++i)
      REQUIRE(f.f32(p + "after/bn" + std::to_string(i + 1) + ".running_var", {model.bn_states()[i].moving_var.numel()}) ==
              model.bn_states()[i].moving_var.to_vector());
  }
  fs::remove_all(dir);
}

TEST_CASE("trace: starts from a checkpoint's weights and moving statistics") {
  const fs::path dir = temp_dir("trace_ckpt");
  AutoencoderConfig cfg;
  cfg.seed = 3;
  Autoencoder model(cfg);
  RMSprop opt(model.parameters(), RMSpropOptions{});
  train_step(model, opt, Tensor::from_vector({2, 1, kH, kW}, images(2)));
  const std::string ckpt = (dir / "c.safetensors").string();
  save_checkpoint(ckpt, model, &opt, {});
  TraceOptions o;
  o.weights = ckpt;
  o.input = write_input(dir, 2);
  o.steps = 1;
  o.dtype = "float32";
  o.out = (dir / "t.safetensors").string();
  write_trace(o);
  const SafetensorsFile f = SafetensorsFile::read(o.out);
  CHECK(f.metadata.at("source") == "weights " + ckpt);
  CHECK(f.f32("init/conv5.weight", {128, 64, 3, 3}) == model.parameters().at("conv5.weight").value().to_vector());
  CHECK(f.f32("init/bn2.running_mean", {32}) == model.bn_states()[1].moving_mean.to_vector());
  CHECK(f.i64("init/bn2.num_batches_tracked", {})[0] == 1);
  fs::remove_all(dir);
}

TEST_CASE("trace: bad options and files are refused, naming them, and nothing is written") {
  const fs::path dir = temp_dir("trace_bad");
  const std::string good = write_input(dir, 2);
  auto base = [&] {
    TraceOptions o;
    o.input = good;
    o.steps = 1;
    o.out = (dir / "t.safetensors").string();
    return o;
  };
  auto refused = [&](TraceOptions o, const std::string& words) {
    CAPTURE(words);
    try {
      write_trace(o);
      FAIL("accepted");
    } catch (const std::exception& e) {
      CHECK(std::string(e.what()).find(words) != std::string::npos);
      CAPTURE(e.what());
    }
    CHECK(!fs::exists(o.out));
  };
  TraceOptions o = base();
  o.dtype = "float16";
  refused(o, "--dtype");
  o = base();
  o.batch = 1;
  refused(o, "--batch 1");
  o = base();
  o.steps = 0;
  refused(o, "--steps");
  o = base();
  o.input.clear();
  refused(o, "give --data or --input");
  o = base();
  o.weights = "w.safetensors";
  o.seed_given = true;
  refused(o, "not both");
  o = base();
  o.weights = (dir / "missing.safetensors").string();
  refused(o, "missing.safetensors");
  o = base();
  o.input = (dir / "nope.safetensors").string();
  refused(o, "nope.safetensors");
  o = base();
  o.steps = 2;
  o.batch = 1 + 1;
  {
    TraceOptions p = o;
    p.input = write_input(dir, 3);  // neither 2 (one batch) nor 4 (two)
    refused(p, "needs 4");
  }
  o = base();
  o.input = write_input(dir, 2, std::numeric_limits<float>::quiet_NaN());
  refused(o, "NaN");
  o = base();
  {
    SafetensorsFile f;
    std::vector<float> v(2 * 1 * 6 * 8, 0.5f);
    f.add_f32("input", {2, 1, 6, 8}, v.data());
    f.write_atomic((dir / "odd.safetensors").string());
  }
  o.input = (dir / "odd.safetensors").string();
  refused(o, "multiples of 4");
  o = base();
  {
    std::ofstream((dir / "junk.safetensors").string()) << "not a safetensors file";
  }
  o.input = (dir / "junk.safetensors").string();
  refused(o, "junk.safetensors");
  o = base();
  o.out = (dir / "no_such_dir" / "t.safetensors").string();
  refused(o, "no_such_dir");
  fs::remove_all(dir);
}
