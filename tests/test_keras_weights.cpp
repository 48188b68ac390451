// Keras weights (model/keras_weights.h) against real Keras: tests/keras/make_fixture.py built the tutorial's
// model in tf_keras and keras 3, saved its weights in both layouts and its predictions on two real slices.
#include <doctest/doctest.h>
#include <hdf5.h>  // only to damage copies of the fixtures; the code under test keeps HDF5 in one file
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "apps/weights_file.h"
#include "model/keras_weights.h"
#include "model/safetensors.h"

using namespace mriae;
namespace fs = std::filesystem;

namespace {

const fs::path kDir = fs::path(MRIAE_SOURCE_DIR) / "tests" / "keras";
const std::string kKeras2 = (kDir / "tutorial_keras2.h5").string();
const std::string kKeras3 = (kDir / "tutorial_keras3.weights.h5").string();

struct Fixture {
  SafetensorsFile f = SafetensorsFile::read((kDir / "predictions.safetensors").string());
  const Shape shape = {2, 1, 184, 184};
  std::vector<float> input = f.f32("input", shape);
  std::vector<double> keras(const std::string& name) const {
    if (f.dtype(name) == "F64") return f.f64(name, shape);
    const std::vector<float> v = f.f32(name, shape);
    return {v.begin(), v.end()};
  }
};

std::vector<double> predict(Autoencoder& model, const std::vector<float>& input, const Shape& shape) {
  const Tensor x = model.input(Tensor::from_vector(shape, input));
  return model.forward(nullptr, Var(x), false).value().to(DType::Float64).to_vector<double>();
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

std::vector<double> all_weights(const Autoencoder& m) {
  std::vector<double> v = m.parameters().flat_values().to(DType::Float64).to_vector<double>();
  for (auto& s : m.bn_states())
    for (const Tensor* t : {&s.moving_mean, &s.moving_var}) {
      const auto u = t->to(DType::Float64).to_vector<double>();
      v.insert(v.end(), u.begin(), u.end());
    }
  return v;
}

Autoencoder model_of(DType dt) {
  AutoencoderConfig c;
  c.dtype = dt;
  c.seed = 99;  // other starting weights than the files', so that a weight left unloaded shows
  return Autoencoder(c);
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("mriae_keras_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// A copy of `src` with `edit` applied to it through HDF5.
std::string damaged_copy(const TempDir& dir, const std::string& src, const std::string& name,
                         const std::function<void(hid_t)>& edit) {
  const std::string out = dir.file(name);
  fs::copy_file(src, out, fs::copy_options::overwrite_existing);
  const hid_t f = H5Fopen(out.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  edit(f);
  REQUIRE(H5Fclose(f) >= 0);
  return out;
}

void write_float_dataset(hid_t loc, const char* name, const std::vector<hsize_t>& dims) {
  size_t n = 1;
  for (hsize_t d : dims) n *= d;
  const std::vector<float> zeros(n, 0.5f);
  const hid_t space = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
  const hid_t d = H5Dcreate2(loc, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(d >= 0);
  REQUIRE(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data()) >= 0);
  H5Dclose(d);
  H5Sclose(space);
}

}  // namespace

TEST_CASE("keras weights: both Keras layouts reproduce Keras's predictions on real slices") {
  const Fixture fx;
  const std::vector<double> k2 = fx.keras("keras2"), k3 = fx.keras("keras3"), k64 = fx.keras("keras2_f64");
  // How far Keras's own float32 computation is from its float64 one: the scale of float32 rounding here.
  MESSAGE("Keras float32 vs Keras float64: max |diff| " << max_abs_diff(k2, k64) << " (tf_keras), "
                                                         << max_abs_diff(k3, k64) << " (keras 3)");
  for (const std::string& file : {kKeras2, kKeras3}) {
    CAPTURE(file);
    const bool keras3 = file == kKeras3;
    Autoencoder m64 = model_of(DType::Float64);
    const KerasWeightsInfo info = load_keras_weights(file, m64);
    CHECK(info.format == (keras3 ? KerasFormat::Keras3 : KerasFormat::Keras2));
    CHECK(info.dtype == DType::Float32);
    const std::vector<double> y64 = predict(m64, fx.input, fx.shape);
    const double e64 = max_abs_diff(y64, k64), e_own = max_abs_diff(y64, keras3 ? k3 : k2);
    Autoencoder m32 = model_of(DType::Float32);
    load_keras_weights(file, m32);
    const std::vector<double> y32 = predict(m32, fx.input, fx.shape);
    const double e32 = max_abs_diff(y32, k64), e32_own = max_abs_diff(y32, keras3 ? k3 : k2);
    MESSAGE(file << ": mriae float64 vs Keras float64 " << e64 << ", vs Keras float32 " << e_own
                 << "; mriae float32 vs Keras float64 " << e32 << ", vs Keras float32 " << e32_own);
    // The same arithmetic in double (measured 2.3e-14): any mapping mistake (a transposed kernel, swapped
    // statistics, a layer off by one) moves outputs by far more. This is the 1e-5 check, with margin.
    CHECK(e64 < 1e-12);
    // float32: Keras's own float32 prediction is up to 1.1e-5 off its float64 one (message above; rounding
    // amplified through eleven convolutions and ten batchnorms), and mriae's float32 about as much
    // (measured 1.06e-5), so float32 against the exact answer gets 2e-5, and two float32 computations,
    // each that far off, 3e-5 between them (measured 1.4e-5 and 1.6e-5); on average to 3e-6 (measured 1.4e-6).
    CHECK(e32 < 2e-5);
    CHECK(e_own < 2e-5);
    CHECK(e32_own < 3e-5);
    double mean = 0;
    for (size_t i = 0; i < y32.size(); ++i) mean += std::abs(y32[i] - (keras3 ? k3 : k2)[i]) / double(y32.size());
    MESSAGE("mean |diff| mriae float32 vs Keras float32 " << mean);
    CHECK(mean < 3e-6);
  }
}

TEST_CASE("keras weights: Keras 2 and Keras 3 files give the same weights, and an export reads back exactly") {
  Autoencoder a = model_of(DType::Float32), b = model_of(DType::Float32);
  load_keras_weights(kKeras2, a);
  load_keras_weights(kKeras3, b);
  CHECK(all_weights(a) == all_weights(b));
  CHECK(all_weights(a) != all_weights(model_of(DType::Float32)));
  TempDir dir;
  for (DType dt : {DType::Float32, DType::Float64}) {
    Autoencoder src = model_of(dt);
    load_keras_weights(kKeras2, src);
    for (KerasFormat f : {KerasFormat::Keras2, KerasFormat::Keras3}) {
      const std::string out = dir.file(std::string("x_") + dtype_name(dt) + (f == KerasFormat::Keras3 ? ".weights.h5" : ".h5"));
      save_keras_weights(out, src, f);
      CHECK(!fs::exists(out + ".tmp"));
      Autoencoder back = model_of(DType::Float64);
      const KerasWeightsInfo info = load_keras_weights(out, back);
      CHECK(info.format == f);
      CHECK(info.dtype == dt);
      CHECK(all_weights(back) == all_weights(src));
      // No timestamps: the same weights give the same bytes.
      const std::string again = dir.file("again" + fs::path(out).filename().string());
      save_keras_weights(again, src, f);
      std::ifstream a(out, std::ios::binary), b(again, std::ios::binary);
      CHECK(std::string(std::istreambuf_iterator<char>(a), {}) == std::string(std::istreambuf_iterator<char>(b), {}));
    }
  }
}

TEST_CASE("keras weights: the Keras pipeline defaults prepare ch2 as the fixture's Keras input") {
  if (!fs::exists("/usr/share/mricron/templates/ch2.nii.gz")) {
    MESSAGE("skipped: mricron-data (ch2.nii.gz) is not installed");
    return;
  }
  const Fixture fx;
  Autoencoder m = model_of(DType::Float32);
  KerasPipeline k;
  k.data.slices = "100:121";
  const CheckpointMetadata meta = load_weights(kKeras2, m, k);
  CHECK(is_keras_metadata(meta));
  CHECK(meta.at("format") == "keras2");
  io::DatasetOptions d = dataset_options_from_metadata(meta);
  const io::SliceDataset ds = io::build_slice_dataset({"/usr/share/mricron/templates/ch2.nii.gz"}, d);
  REQUIRE(ds.slices.count() == 21);
  REQUIRE(ds.slices.height() == 184);
  REQUIRE(ds.slices.width() == 184);
  std::vector<float> s(184 * 184);
  double worst = 0;
  for (int k2 = 0; k2 < 2; ++k2) {
    ds.slices.copy_slice(k2 * 20, s.data());  // slices 100 and 120
    for (size_t i = 0; i < s.size(); ++i)
      worst = std::max(worst, double(std::abs(s[i] - fx.input[size_t(k2) * s.size() + i])));
  }
  MESSAGE("mriae's slices vs the fixture's (nibabel + numpy): max |diff| " << worst);
  CHECK(worst < 1e-6);
}

TEST_CASE("keras weights: damaged or mismatched files are refused naming the file and the layer") {
  TempDir dir;
  auto refused = [](const std::string& file) { Autoencoder m = model_of(DType::Float32); return error_of([&] { load_keras_weights(file, m); }); };
  auto has = [](const std::string& msg, std::initializer_list<const char*> parts) {
    CAPTURE(msg);
    for (const char* p : parts) {
      CAPTURE(p);
      CHECK(msg.find(p) != std::string::npos);
    }
  };

  SUBCASE("not an HDF5 file, a missing file, a truncated one") {
    const std::string text = dir.file("text.h5");
    std::ofstream(text) << "not hdf5";
    has(refused(text), {"text.h5", "not an HDF5 file"});
    has(refused(dir.file("absent.h5")), {"absent.h5", "no such file"});
    const std::string cut = dir.file("cut.h5");
    fs::copy_file(kKeras2, cut);
    fs::resize_file(cut, 4096);
    has(refused(cut), {"cut.h5"});
  }
  SUBCASE("Keras 2: a layer too few (the last conv gone from layer_names)") {
    const std::string f = damaged_copy(dir, kKeras2, "short.h5", [](hid_t file) {
      H5Adelete(file, "layer_names");
      std::vector<const char*> names = {"input_1", "conv2d_9", "batch_normalization_5", "conv2d_10"};
      const hsize_t n = names.size();
      const hid_t space = H5Screate_simple(1, &n, nullptr);
      const hid_t type = H5Tcopy(H5T_C_S1);
      H5Tset_size(type, H5T_VARIABLE);
      const hid_t a = H5Acreate2(file, "layer_names", type, space, H5P_DEFAULT, H5P_DEFAULT);
      H5Awrite(a, type, names.data());
      H5Aclose(a), H5Tclose(type), H5Sclose(space);
    });
    has(refused(f), {"short.h5", "3 layers with weights", "conv2d_9", "21"});
  }
  SUBCASE("Keras 2: a kernel of the wrong shape") {
    const std::string f = damaged_copy(dir, kKeras2, "shape.h5", [](hid_t file) {
      REQUIRE(H5Ldelete(file, "conv2d_11/conv2d_11/kernel:0", H5P_DEFAULT) >= 0);
      const hid_t g = H5Gopen2(file, "conv2d_11/conv2d_11", H5P_DEFAULT);
      write_float_dataset(g, "kernel:0", {3, 3, 64, 32});  // in and out swapped
      H5Gclose(g);
    });
    has(refused(f), {"shape.h5", "conv2d_11", "conv3", "[3, 3, 64, 32]", "expected [3, 3, 32, 64]"});
  }
  SUBCASE("Keras 2: a missing dataset") {
    const std::string f = damaged_copy(dir, kKeras2, "missing.h5", [](hid_t file) {
      REQUIRE(H5Ldelete(file, "batch_normalization_8/batch_normalization_8/moving_variance:0", H5P_DEFAULT) >= 0);
    });
    has(refused(f), {"missing.h5", "batch_normalization_8", "moving_variance:0"});
  }
  SUBCASE("Keras 3: an extra Conv2D layer, a missing layer, a wrong shape") {
    const std::string extra = damaged_copy(dir, kKeras3, "extra.weights.h5", [](hid_t file) {
      const hid_t g = H5Gcreate2(file, "layers/conv2d_11", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      const hid_t v = H5Gcreate2(g, "vars", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      write_float_dataset(v, "0", {3, 3, 1, 1});
      write_float_dataset(v, "1", {1});
      H5Gclose(v), H5Gclose(g);
    });
    has(refused(extra), {"extra.weights.h5", "12 Conv2D", "layers/conv2d_11", "11 and 10"});
    const std::string gone = damaged_copy(dir, kKeras3, "gone.weights.h5", [](hid_t file) {
      REQUIRE(H5Ldelete(file, "layers/batch_normalization_3", H5P_DEFAULT) >= 0);
    });
    has(refused(gone), {"gone.weights.h5", "9 BatchNormalization"});
    const std::string shape = damaged_copy(dir, kKeras3, "shape.weights.h5", [](hid_t file) {
      REQUIRE(H5Ldelete(file, "layers/batch_normalization_4/vars/2", H5P_DEFAULT) >= 0);
      const hid_t v = H5Gopen2(file, "layers/batch_normalization_4/vars", H5P_DEFAULT);
      write_float_dataset(v, "2", {64});
      H5Gclose(v);
    });
    has(refused(shape), {"shape.weights.h5", "layers/batch_normalization_4", "bn5", "moving_mean", "[64]", "[128]"});
  }
  SUBCASE("a refused file leaves the model as it was") {
    Autoencoder m = model_of(DType::Float32);
    const std::vector<double> before = all_weights(m);
    const std::string f = damaged_copy(dir, kKeras3, "late.weights.h5", [](hid_t file) {
      REQUIRE(H5Ldelete(file, "layers/conv2d_10/vars/1", H5P_DEFAULT) >= 0);  // the very last weight
    });
    has(error_of([&] { load_keras_weights(f, m); }), {"late.weights.h5", "layers/conv2d_10"});
    CHECK(all_weights(m) == before);
  }
}

TEST_CASE("keras weights: pipeline options are for Keras weights only; global methods are refused") {
  Autoencoder m = model_of(DType::Float32);
  KerasPipeline k;
  k.data.normalize = "train";
  CHECK(error_of([&] { load_weights(kKeras2, m, k); }).find("Keras weights do not carry") != std::string::npos);
  k.data.normalize = "volume";
  k.data.axis = 3;
  CHECK(error_of([&] { load_weights(kKeras2, m, k); }).find("--axis") != std::string::npos);
}
