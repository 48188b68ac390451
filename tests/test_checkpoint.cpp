#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "engine/rmsprop.h"
#include "model/checkpoint.h"
#include "model/training_step.h"
#include "model/safetensors.h"

using namespace mriae;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("mriae_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

Tensor batch() {
  Tensor x = Tensor::empty({2, 1, 8, 8});
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = float((i * 37) % 64) / 64.0f;
  return x;
}

std::vector<float> all_state(Autoencoder& m, RMSprop& opt) {
  std::vector<float> v = m.parameters().flat_values().to_vector();
  for (auto& s : m.bn_states())
    for (const Tensor* t : {&s.moving_mean, &s.moving_var, &s.hidden_mean, &s.hidden_var}) {
      auto u = t->to_vector();
      v.insert(v.end(), u.begin(), u.end());
    }
  auto a = opt.accumulators().to_vector();
  v.insert(v.end(), a.begin(), a.end());
  return v;
}

// Every tensor of the state, in float64 (exactly, whatever the model's dtype).
std::vector<double> all_state64(Autoencoder& m, RMSprop* opt) {
  std::vector<const Tensor*> ts{&m.parameters().flat_values()};
  for (auto& s : m.bn_states())
    for (const Tensor* t : {&s.moving_mean, &s.moving_var, &s.hidden_mean, &s.hidden_var}) ts.push_back(t);
  if (opt) ts.push_back(&opt->accumulators());
  std::vector<double> v;
  for (const Tensor* t : ts) {
    const auto u = t->to(DType::Float64).to_vector<double>();
    v.insert(v.end(), u.begin(), u.end());
  }
  return v;
}

AutoencoderConfig config(uint64_t seed, DType dtype = DType::Float32) {
  AutoencoderConfig c;
  c.seed = seed;
  c.dtype = dtype;
  return c;
}
AutoencoderConfig f64_config(uint64_t seed = 13) { return config(seed, DType::Float64); }

}  // namespace

TEST_CASE("a checkpoint round-trips bit-exactly and training continues identically") {
  const fs::path dir = temp_dir("ckpt");
  const Tensor x = batch();
  Autoencoder a({});
  RMSprop oa(a.parameters(), {});
  for (int i = 0; i < 2; ++i) train_step(a, oa, x);
  save_checkpoint((dir / "a.safetensors").string(), a, &oa, {{"epoch", "2"}});

  AutoencoderConfig other;
  other.seed = 99;  // different initial weights, all overwritten by the load
  Autoencoder b(other);
  RMSprop ob(b.parameters(), {});
  const auto meta = load_checkpoint((dir / "a.safetensors").string(), b, &ob);
  CHECK(meta.at("epoch") == "2");
  CHECK(all_state(a, oa) == all_state(b, ob));
  CHECK(ob.steps() == oa.steps());
  for (size_t i = 0; i < a.bn_states().size(); ++i) CHECK(b.bn_states()[i].steps == a.bn_states()[i].steps);
  for (int i = 0; i < 2; ++i) CHECK(train_step(a, oa, x) == train_step(b, ob, x));
  CHECK(all_state(a, oa) == all_state(b, ob));
  fs::remove_all(dir);
}

TEST_CASE("checkpoint tensors carry PyTorch state_dict names and shapes") {
  const fs::path dir = temp_dir("names");
  Autoencoder m({});
  save_checkpoint((dir / "w.safetensors").string(), m, nullptr, {});
  const auto f = SafetensorsFile::read((dir / "w.safetensors").string());
  CHECK(f.tensors.at("conv1.weight").shape == std::vector<int64_t>{32, 1, 3, 3});
  CHECK(f.tensors.at("conv11.bias").shape == std::vector<int64_t>{1});
  CHECK(f.tensors.at("bn10.running_var").dtype == "F32");
  CHECK(f.tensors.at("bn1.num_batches_tracked").dtype == "I64");
  CHECK(f.tensors.count("optimizer.accumulator") == 0);
  // The file layout itself: 8-byte length, JSON header starting with '{', data aligned to 8 bytes.
  std::ifstream in(dir / "w.safetensors", std::ios::binary);
  uint64_t len = 0;
  in.read(reinterpret_cast<char*>(&len), 8);
  CHECK(len % 8 == 0);
  CHECK(char(in.get()) == '{');
  // Resuming from a weights-only file is refused with a reason.
  Autoencoder m2({});
  RMSprop o2(m2.parameters(), {});
  CHECK_THROWS_WITH(load_checkpoint((dir / "w.safetensors").string(), m2, &o2), doctest::Contains("no optimiser state"));
  fs::remove_all(dir);
}

TEST_CASE("damaged checkpoints are refused with the file named and the model untouched") {
  const fs::path dir = temp_dir("bad");
  Autoencoder m({});
  RMSprop o(m.parameters(), {});
  const std::string good = (dir / "good.safetensors").string();
  save_checkpoint(good, m, &o, {});
  std::ifstream in(good, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  auto write = [&](const std::string& name, const std::string& content) {
    const std::string p = (dir / name).string();
    std::ofstream(p, std::ios::binary) << content;
    return p;
  };
  AutoencoderConfig other;
  other.seed = 5;
  Autoencoder target(other);
  const auto before = target.parameters().flat_values().to_vector();
  for (const std::string& p : {write("truncated.safetensors", bytes.substr(0, bytes.size() / 2)),
                               write("header.safetensors", bytes.substr(0, 20)), write("garbage.safetensors", "not a checkpoint"),
                               write("empty.safetensors", ""), (dir / "missing.safetensors").string()}) {
    CAPTURE(p);
    CHECK_THROWS_WITH(load_checkpoint(p, target, nullptr), doctest::Contains(p.c_str()));
  }
  // A valid safetensors file of another model: a shape mismatch, named.
  SafetensorsFile f = SafetensorsFile::read(good);
  const float one = 1;
  f.add_f32("conv1.bias", {1}, &one);
  f.write_atomic((dir / "shape.safetensors").string());
  CHECK_THROWS_WITH(load_checkpoint((dir / "shape.safetensors").string(), target, nullptr), doctest::Contains("conv1.bias"));
  CHECK(target.parameters().flat_values().to_vector() == before);
  fs::remove_all(dir);
}

TEST_CASE("a float64 checkpoint stores F64 tensors and round-trips bit-exactly") {
  const fs::path dir = temp_dir("ckpt64");
  const std::string path = (dir / "a.safetensors").string();
  const Tensor x = batch();  // float32 data, converted by train_step
  Autoencoder a(f64_config());
  RMSprop oa(a.parameters(), {});
  for (int i = 0; i < 2; ++i) train_step(a, oa, x);
  save_checkpoint(path, a, &oa, {});
  const auto f = SafetensorsFile::read(path);
  CHECK(f.tensors.at("conv1.weight").dtype == "F64");
  CHECK(f.tensors.at("bn3.running_var").dtype == "F64");
  CHECK(f.tensors.at("bn_ema.bn3.hidden_var").dtype == "F64");
  CHECK(f.tensors.at("optimizer.accumulator").dtype == "F64");
  CHECK(f.tensors.at("bn3.num_batches_tracked").dtype == "I64");
  CHECK(f.metadata.at("dtype") == "float64");

  Autoencoder b(f64_config(99));
  RMSprop ob(b.parameters(), {});
  const auto meta = load_checkpoint(path, b, &ob);
  CHECK(meta.at("dtype") == "float64");
  CHECK(dtype_note(path, meta, DType::Float64).empty());
  CHECK(all_state64(a, &oa) == all_state64(b, &ob));
  for (int i = 0; i < 2; ++i) CHECK(train_step(a, oa, x) == train_step(b, ob, x));
  CHECK(all_state64(a, &oa) == all_state64(b, &ob));
  fs::remove_all(dir);
}

TEST_CASE("a checkpoint of the other dtype: weights are converted with a note, a resume is refused") {
  const fs::path dir = temp_dir("ckptdt");
  const std::string p64 = (dir / "f64.safetensors").string(), p32 = (dir / "f32.safetensors").string();
  const Tensor x = batch();
  Autoencoder a64(f64_config());
  RMSprop o64(a64.parameters(), {});
  train_step(a64, o64, x);
  save_checkpoint(p64, a64, &o64, {});
  Autoencoder a32({});
  RMSprop o32(a32.parameters(), {});
  train_step(a32, o32, x);
  save_checkpoint(p32, a32, &o32, {});

  // float64 weights into a float32 model: rounded to nearest, and the note says so.
  Autoencoder m32(config(5));
  const auto meta64 = load_checkpoint(p64, m32, nullptr);
  CHECK(meta64.at("dtype") == "float64");
  const std::vector<double> v64 = all_state64(a64, nullptr), got = all_state64(m32, nullptr);
  REQUIRE(v64.size() == got.size());
  bool rounded = true;
  for (size_t i = 0; i < v64.size(); ++i) rounded = rounded && got[i] == double(float(v64[i]));
  CHECK(rounded);
  CHECK(v64 != got);
  const std::string note = dtype_note(p64, meta64, DType::Float32);
  CHECK(note.find(p64) != std::string::npos);
  CHECK(note.find("float64 weights; converted to float32 (rounded)") != std::string::npos);

  // float32 weights into a float64 model: exact.
  Autoencoder m64(f64_config(5));
  const auto meta32 = load_checkpoint(p32, m64, nullptr);
  CHECK(all_state64(m64, nullptr) == all_state64(a32, nullptr));
  CHECK(dtype_note(p32, meta32, DType::Float64).find("(exactly)") != std::string::npos);

  // Resuming in the other dtype would not continue the same run: refused, naming the file and the fix,
  // with the model untouched.
  Autoencoder r32(config(5));
  RMSprop or32(r32.parameters(), {});
  const auto before = all_state64(r32, &or32);
  CHECK_THROWS_WITH(load_checkpoint(p64, r32, &or32),
                    doctest::Contains((p64 + ": tensor 'conv1.weight' is F64 but the model is float32; resume with "
                                             "--dtype float64").c_str()));
  CHECK(all_state64(r32, &or32) == before);
  Autoencoder r64(f64_config(5));
  RMSprop or64(r64.parameters(), {});
  CHECK_THROWS_WITH(load_checkpoint(p32, r64, &or64), doctest::Contains("resume with --dtype float32"));
  fs::remove_all(dir);
}

TEST_CASE("a checkpoint write killed midway leaves the previous checkpoint intact") {
  const fs::path dir = temp_dir("kill");
  const std::string path = (dir / "last.safetensors").string();
  Autoencoder m({});
  RMSprop o(m.parameters(), {});
  save_checkpoint(path, m, &o, {{"generation", "0"}});
  for (int attempt = 0; attempt < 5; ++attempt) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      for (int g = 1;; ++g) save_checkpoint(path, m, &o, {{"generation", std::to_string(g)}});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + 13 * attempt));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    Autoencoder back({});
    RMSprop ob(back.parameters(), {});
    const auto meta = load_checkpoint(path, back, &ob);  // must be a complete file, whichever generation
    CHECK(back.parameters().flat_values().to_vector() == m.parameters().flat_values().to_vector());
    MESSAGE("killed while writing; the checkpoint in place is generation " << meta.at("generation"));
  }
  fs::remove_all(dir);
}
