// mriae reconstruct: a model trained on a tiny real subset (cut from Colin27, mricron-data's ch2.nii.gz)
// reconstructs a volume in its geometry and intensity units, slice for slice what a direct forward pass
// gives; padding, axes, batching and bad inputs are checked on small synthetic volumes.
#include <doctest/doctest.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "apps/evaluation.h"
#include "apps/reconstruct_command.h"
#include "apps/reconstruction.h"
#include "apps/run_config.h"
#include "apps/trainer.h"
#include "io/nifti_volume.h"
#include "io/nifti_writer.h"
#include "model/checkpoint.h"
#include "tests/colin_subset.h"
#include "tests/io/io_test_util.h"

using namespace mriae;
using io::testing::TempDir;
using io::testing::write_image;
namespace fs = std::filesystem;

namespace {

// A scanner geometry that is neither the identity nor axis-aligned, so a writer that lost it is caught.
void geometry(nifti_image& nim) {
  nim.pixdim[1] = nim.dx = 2;
  nim.pixdim[2] = nim.dy = 1;
  nim.pixdim[3] = nim.dz = 2;
  nim.xyz_units = NIFTI_UNITS_MM;
  nim.qform_code = NIFTI_XFORM_SCANNER_ANAT;
  nim.quatern_b = 0.05;
  nim.quatern_c = 0.1;
  nim.quatern_d = -0.02;
  nim.qoffset_x = -40;
  nim.qoffset_y = 20.5;
  nim.qoffset_z = -33;
  nim.qfac = 1;
  nim.sform_code = NIFTI_XFORM_MNI_152;
  nifti_dmat44 m{};
  const double rows[3][4] = {{-2, 0.1, 0, 40}, {0, 1, 0.2, -20.5}, {0.05, 0, 2, -33}};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) m.m[r][c] = rows[r][c];
  m.m[3][3] = 1;
  nim.sto_xyz = m;
}

// Two 38 x 10 x 42 volumes from Colin27 (every second voxel in x and z); the in-plane size along axis 1,
// 38 x 42, is padded to 40 x 44. False (and a visible skip) when the real data is not installed.
bool write_subset(const TempDir& dir, std::vector<std::string>* paths) {
  mriae::testing::ColinCrop crop;
  crop.nx = 38, crop.ny = 10, crop.nz = 42, crop.x0 = 52, crop.z0 = 48;
  crop.y0s = {90, 110};
  crop.extension = ".nii.gz";
  crop.tweak = geometry;
  return mriae::testing::write_colin_crops(dir, crop, paths);
}

// The scaling a checkpoint's method gives volume v, worked out here from the metadata's own words: the
// global methods' stored min and max, or v's min and max, or v's percentiles by numpy's linear rule over
// the fully sorted voxels.
io::Normalisation expected_scaling(const CheckpointMetadata& meta, const io::Volume& v) {
  const std::string method = meta.at("data.normalize");
  if (method == "train" || method == "all") return {std::stof(meta.at("data.norm_min")), std::stof(meta.at("data.norm_max"))};
  std::vector<float> sorted(v.data);
  std::sort(sorted.begin(), sorted.end());
  if (method == "volume") return {sorted.front(), sorted.back()};
  REQUIRE(method == "percentile");
  const std::string bounds = meta.at("data.percentiles");
  auto at = [&](double p) {
    const double pos = p / 100 * double(sorted.size() - 1);
    const size_t i = size_t(pos);
    return float(sorted[i] + (i + 1 < sorted.size() ? (sorted[i + 1] - sorted[i]) * (pos - double(i)) : 0.0));
  };
  return {at(std::stod(bounds.substr(0, bounds.find(',')))), at(std::stod(bounds.substr(bounds.find(',') + 1))), true};
}

// The model's output for slice `index` along `axis`, computed here from first principles: normalise,
// zero-pad to the next multiple of 4 with the given placement, one forward pass of one slice, crop,
// map back. Returns rows x cols, row-major.
std::vector<float> direct_slice(Autoencoder& model, const io::Volume& v, int axis, int64_t index,
                                const io::Normalisation& norm, bool centred) {
  const auto [rows, cols] = io::slice_shape(v.dims, axis);
  const int64_t H = (rows + 3) / 4 * 4, W = (cols + 3) / 4 * 4;
  const int64_t top = centred ? (H - rows) / 2 : H - rows, left = centred ? (W - cols) / 2 : W - cols;
  std::vector<float> padded(size_t(H * W), 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = axis == 0 ? index : r, j = axis == 0 ? r : axis == 1 ? index : c,
                    k = axis == 2 ? index : c;
      const float y = (v.at(i, j, k) - norm.min) / (norm.max - norm.min);
      padded[size_t((r + top) * W + c + left)] = norm.clip ? std::clamp(y, 0.0f, 1.0f) : y;
    }
  const Var y = model.forward(nullptr, Var(Tensor::from_vector({1, 1, H, W}, padded)), false);
  std::vector<float> out(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      out[size_t(r * cols + c)] = y.value().item((r + top) * W + c + left) * (norm.max - norm.min) + norm.min;
  return out;
}

// The same slice of a reconstructed volume, rows x cols.
std::vector<float> slice_of(const io::Volume& v, int axis, int64_t index) {
  const auto shape = io::slice_shape(v.dims, axis);
  std::vector<float> s(size_t(shape[0] * shape[1]));
  io::extract_slice(v, axis, index, s.data());
  return s;
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}

void check_same_geometry(const io::NiftiHeader& a, const io::NiftiHeader& b) {
  for (int i = 1; i <= 3; ++i) CHECK(a.pixdim[size_t(i)] == b.pixdim[size_t(i)]);
  CHECK(a.qform_code == b.qform_code);
  CHECK(a.sform_code == b.sform_code);
  CHECK(a.qto_xyz == b.qto_xyz);
  CHECK(a.sto_xyz == b.sto_xyz);
  CHECK(a.xyz_units == b.xyz_units);
}

// A checkpoint of an untrained model (seeded), with the metadata a run on `data` with these options writes.
// zero_last: conv11's weights and bias set to 0, so the model outputs sigmoid(0) = 0.5 everywhere.
std::string untrained_checkpoint(const TempDir& dir, const std::string& data, int axis, const std::string& pad,
                                 bool zero_last, const std::string& normalize = "all",
                                 const std::string& percentiles = "0.5,99.5") {
  DataOptions o;
  o.paths = {data};
  o.axis = axis;
  o.pad = pad;
  o.central = 2;
  o.normalize = normalize;
  o.percentiles = percentiles;
  o.conform = false;  // the tutorial's slicing, which direct_slice redoes (conformed: tests/cli/cli_test.sh)
  const io::SliceDataset ds = io::build_slice_dataset(o.paths, o.dataset_options());
  CheckpointMetadata meta;
  put_data_metadata(meta, o, ds);
  Autoencoder model(AutoencoderConfig{});
  if (zero_last) {
    for (const char* name : {"conv11.weight", "conv11.bias"}) {
      Tensor t = model.parameters().at(name).value();  // shares the parameter's memory
      t.zero_();
    }
  }
  const std::string path = dir.file("untrained_" + std::to_string(axis) + pad + normalize + ".safetensors");
  save_checkpoint(path, model, nullptr, meta);
  return path;
}

// A 13 x 10 x 7 volume whose in-plane sizes are no multiple of 4 along any axis.
std::string write_odd_volume(const TempDir& dir, const std::string& name) {
  std::vector<float> v = io::testing::ramp_volume(13, 10, 7);
  for (float& x : v) x = std::sin(x * 0.01f) * 300.0f + 500.0f;
  write_image(dir.file(name), {13, 10, 7}, NIFTI_TYPE_FLOAT32, v.data(), 1, geometry);
  return dir.file(name);
}

}  // namespace

TEST_CASE("reconstruct: a trained model's output in the input's geometry and intensity units") {
  TempDir dir;
  std::vector<std::string> paths;
  if (!write_subset(dir, &paths)) return;
  const TrainResult trained = train(mriae::testing::tiny_run(paths, dir.file("run"), 10, 2), nullptr);
  REQUIRE(trained.history.size() == 2);

  ReconstructOptions o;
  o.weights = trained.best_checkpoint;
  o.input = paths[0];
  o.output = dir.file("recon.nii.gz");
  o.batch = 3;  // 10 slices: batches of 3, 3, 3 and 1
  o.device = "cpu";
  const ReconstructResult r = reconstruct(o);
  CHECK(r.slices == 10);
  CHECK(r.axis == 1);
  CHECK(r.slice_size == std::array<int64_t, 2>{38, 42});
  CHECK(r.padded_size == std::array<int64_t, 2>{40, 44});
  CHECK(r.device == Device::CPU);

  const io::Volume in = io::read_volume(paths[0]);
  const io::Volume out = io::read_volume(o.output);
  CHECK(out.dims == in.dims);
  check_same_geometry(out.header, in.header);
  CHECK(out.header.descrip == "mriae reconstruction");

  // The mapping, checked against a forward pass done here, slice by slice, with the checkpoint's scaling.
  Autoencoder model(AutoencoderConfig{});
  const CheckpointMetadata meta = load_checkpoint(o.weights, model, nullptr);
  const io::Normalisation norm = expected_scaling(meta, in);
  REQUIRE(norm.max > norm.min);
  for (int64_t j : {0, 4, 9})
    CHECK(max_abs_difference(slice_of(out, 1, j), direct_slice(model, in, 1, j, norm, false)) <=
          1e-5 * (norm.max - norm.min));

  // Intensity units: every value inside the scaling's range (a sigmoid's output mapped back), the mean near
  // the input's, and the RMS error the normalised error scaled by (max - min), against the input as the model
  // saw it (clipped to the percentiles by the default method).
  double in_sum = 0, out_sum = 0, sq = 0, sq_seen = 0;
  int64_t outside = 0;
  for (size_t i = 0; i < in.data.size(); ++i) {
    if (!(out.data[i] >= norm.min && out.data[i] <= norm.max)) ++outside;
    in_sum += in.data[i];
    out_sum += out.data[i];
    sq += (double(out.data[i]) - in.data[i]) * (double(out.data[i]) - in.data[i]);
    const double seen = norm.clip ? std::clamp(in.data[i], norm.min, norm.max) : in.data[i];
    sq_seen += (out.data[i] - seen) * (out.data[i] - seen);
  }
  CHECK(outside == 0);
  const double n = double(in.data.size()), range = double(norm.max) - double(norm.min);
  CHECK(std::abs(out_sum / n - in_sum / n) < 0.15 * range);
  CHECK(r.rmse == doctest::Approx(std::sqrt(sq / n)).epsilon(1e-6));
  CHECK(std::sqrt(sq_seen / n) == doctest::Approx(std::sqrt(r.mse_normalised) * range).epsilon(1e-4));
  // Trained for two epochs, the model does better than a constant at the mean: an RMS error below the
  // input's standard deviation.
  double var = 0;
  for (float x : in.data) var += (x - in_sum / n) * (x - in_sum / n);
  CHECK(r.rmse < std::sqrt(var / n));

  const std::string line = summary_line(r, o.output);
  CHECK(line.find("reconstructed 10 slices along axis 1 (38x42, padded to 40x44) on cpu") == 0);
  CHECK(line.find(o.output) != std::string::npos);
}

TEST_CASE("reconstruct: centred padding, every axis, any batch size") {
  TempDir dir;
  const std::string vol = write_odd_volume(dir, "odd.nii");
  const io::Volume in = io::read_volume(vol);
  for (int axis = 0; axis < 3; ++axis) {
    for (const std::string pad : {"top-left", "centre"}) {
      CAPTURE(axis);
      CAPTURE(pad);
      ReconstructOptions o;
      o.weights = untrained_checkpoint(dir, vol, axis, pad, false);
      o.input = vol;
      o.output = dir.file("out.nii");
      o.batch = 4;
      o.device = "cpu";
      const ReconstructResult r = reconstruct(o);
      CHECK(r.slices == in.dims[size_t(axis)]);
      const io::Volume out = io::read_volume(o.output);
      REQUIRE(out.dims == in.dims);
      Autoencoder model(AutoencoderConfig{});
      const io::Normalisation norm = expected_scaling(load_checkpoint(o.weights, model, nullptr), in);
      for (int64_t index : {int64_t(0), in.dims[size_t(axis)] - 1})
        CHECK(max_abs_difference(slice_of(out, axis, index),
                                 direct_slice(model, in, axis, index, norm, pad == "centre")) <=
              1e-5 * (norm.max - norm.min));
    }
  }
}

TEST_CASE("reconstruct: a model that outputs 0.5 everywhere gives the middle of the training range") {
  TempDir dir;
  const std::string vol = write_odd_volume(dir, "odd.nii.gz");
  ReconstructOptions o;
  o.weights = untrained_checkpoint(dir, vol, 2, "centre", true);
  o.input = vol;
  o.output = dir.file("half.hdr");
  o.device = "cpu";
  reconstruct(o);
  Autoencoder model(AutoencoderConfig{});
  const io::Normalisation norm = expected_scaling(load_checkpoint(o.weights, model, nullptr), io::read_volume(vol));
  const io::Volume out = io::read_volume(o.output);
  CHECK(fs::exists(dir.file("half.img")));
  for (float x : out.data) REQUIRE(x == norm.invert(0.5f));
}

TEST_CASE("store_slice is the inverse of extract_slice") {
  io::Volume v;
  v.dims = {5, 6, 7};
  v.data = io::testing::ramp_volume(5, 6, 7);
  for (int axis = 0; axis < 3; ++axis) {
    std::vector<float> copy(v.data.size(), 0.0f);
    const auto shape = io::slice_shape(v.dims, axis);
    std::vector<float> s(size_t(shape[0] * shape[1]));
    for (int64_t i = 0; i < v.dims[size_t(axis)]; ++i) {
      io::extract_slice(v, axis, i, s.data());
      store_slice(s.data(), axis, i, v.dims, copy.data());
    }
    CHECK(copy == v.data);
  }
}

TEST_CASE("reconstruct on the command line, with --frame for a 4-D series") {
  TempDir dir;
  const std::string vol = write_odd_volume(dir, "odd.nii");
  const std::string weights = untrained_checkpoint(dir, vol, 1, "top-left", false);
  std::vector<float> series = io::testing::ramp_volume(13, 10, 7 * 2);
  write_image(dir.file("series.nii"), {13, 10, 7, 2}, NIFTI_TYPE_FLOAT32, series.data(), 1, geometry);

  auto run = [&](std::vector<std::string> args) {
    CLI::App app;
    add_reconstruct_command(app);
    args.insert(args.begin(), {"reconstruct", "--weights", weights, "--device", "cpu"});
    std::reverse(args.begin(), args.end());  // CLI11 takes a vector in reverse order
    app.parse(args);
  };
  CHECK_THROWS_WITH(run({"--in", dir.file("series.nii"), "--out", dir.file("s.nii")}),
                    doctest::Contains("series.nii: is a 4-D series of 2 frames"));
  CHECK_FALSE(fs::exists(dir.file("s.nii")));
  run({"--in", dir.file("series.nii"), "--out", dir.file("s.nii"), "--frame", "1"});
  const io::Volume out = io::read_volume(dir.file("s.nii"));
  CHECK(out.dims == std::array<int64_t, 3>{13, 10, 7});
  CHECK(out.header.dim[0] == 3);
  CHECK_THROWS_WITH(run({"--in", dir.file("series.nii"), "--out", dir.file("s2.nii"), "--frame", "2"}),
                    doctest::Contains("frame 2"));
}

TEST_CASE("reconstruct refuses bad inputs with the file to blame, and writes nothing") {
  TempDir dir;
  const std::string vol = write_odd_volume(dir, "odd.nii");
  const std::string weights = untrained_checkpoint(dir, vol, 1, "top-left", false);
  ReconstructOptions good;
  good.weights = weights;
  good.input = vol;
  good.output = dir.file("out.nii.gz");
  good.device = "cpu";
  auto refused = [&](auto change, const std::string& says) {
    ReconstructOptions o = good;
    change(o);
    CHECK_THROWS_WITH(reconstruct(o), doctest::Contains(says.c_str()));
    CHECK_FALSE(fs::exists(o.output));
  };
  refused([&](ReconstructOptions& o) { o.weights = dir.file("absent.safetensors"); }, dir.file("absent.safetensors"));
  refused([&](ReconstructOptions& o) { o.weights = vol; }, vol);  // not a checkpoint
  refused([&](ReconstructOptions& o) { o.input = dir.file("absent.nii.gz"); }, dir.file("absent.nii.gz"));
  refused([&](ReconstructOptions& o) { o.output = dir.file("no/folder/out.nii"); }, "does not exist");
  refused([&](ReconstructOptions& o) { o.output = dir.file("out.png"); }, "out.png");
  refused([](ReconstructOptions& o) { o.batch = 0; }, "--batch");
  refused([](ReconstructOptions& o) { o.device = "tpu"; }, "--device");
  refused([](ReconstructOptions& o) { o.frame = -1; }, "--frame");

  // A checkpoint without a training run's data options.
  const std::string bare = dir.file("bare.safetensors");
  save_checkpoint(bare, Autoencoder(AutoencoderConfig{}), nullptr, {});
  refused([&](ReconstructOptions& o) { o.weights = bare; }, bare + ": checkpoint metadata lacks 'data.paths'");

  // NaN voxels would spread through the convolutions.
  std::vector<float> v = io::testing::ramp_volume(13, 10, 7);
  v[17] = std::numeric_limits<float>::quiet_NaN();
  write_image(dir.file("nan.nii"), {13, 10, 7}, NIFTI_TYPE_FLOAT32, v.data());
  refused([&](ReconstructOptions& o) { o.input = dir.file("nan.nii"); }, dir.file("nan.nii") + ": 1 voxels are NaN");

  // A failed run leaves an existing output as it was.
  reconstruct(good);
  const std::vector<char> before = io::testing::read_bytes(good.output);
  ReconstructOptions bad = good;
  bad.input = dir.file("nan.nii");
  CHECK_THROWS(reconstruct(bad));
  CHECK(io::testing::read_bytes(good.output) == before);
}

namespace {

// The same volume in other intensity units: a * v + b, float32, with v's geometry.
std::string write_rescaled(const TempDir& dir, const std::string& source, const std::string& name, float a, float b) {
  const io::Volume v = io::read_volume(source);
  std::vector<float> f(v.data);
  for (float& x : f) x = a * x + b;
  io::write_volume(dir.file(name), v.header, v.dims, f);
  return dir.file(name);
}

}  // namespace

TEST_CASE("reconstruct: per-volume methods map the output back to each volume's own intensity units") {
  TempDir dir;
  std::vector<std::string> paths;
  if (!write_subset(dir, &paths)) return;  // real T1 crops, 0..254
  const std::string scaled = write_rescaled(dir, paths[0], "scaled.nii.gz", 37, 500);
  for (const std::string method : {"volume", "percentile"}) {
    CAPTURE(method);
    // A model whose output is 0.5 everywhere gives the middle of each volume's own range.
    ReconstructOptions o;
    o.weights = untrained_checkpoint(dir, paths[1], 1, "top-left", true, method, "2,98");
    o.device = "cpu";
    o.strict = true;  // per-volume scalings never leave [0, 1]
    Autoencoder model(AutoencoderConfig{});
    const CheckpointMetadata meta = load_checkpoint(o.weights, model, nullptr);
    for (const std::string& in_path : {paths[0], scaled}) {
      o.input = in_path;
      o.output = dir.file("half_" + method + ".nii");
      const ReconstructResult r = reconstruct(o);
      const io::Volume in = io::read_volume(in_path);
      const io::Normalisation own = expected_scaling(meta, in);
      CHECK(r.scaling.min == doctest::Approx(own.min).epsilon(1e-6));
      CHECK(r.scaling.max == doctest::Approx(own.max).epsilon(1e-6));
      const float mid = 0.5f * (own.min + own.max);
      for (float x : io::read_volume(o.output).data) REQUIRE(x == doctest::Approx(mid).epsilon(1e-5));
    }
    // Any model: the scaled volume's reconstruction is the original's in the new units.
    o.weights = untrained_checkpoint(dir, paths[1], 1, "top-left", false, method, "2,98");
    o.input = paths[0];
    o.output = dir.file("a.nii");
    reconstruct(o);
    o.input = scaled;
    o.output = dir.file("b.nii");
    reconstruct(o);
    const io::Volume a = io::read_volume(dir.file("a.nii")), b = io::read_volume(dir.file("b.nii"));
    const auto [lo, hi] = std::minmax_element(a.data.begin(), a.data.end());
    REQUIRE(*hi > *lo);
    double worst = 0;
    for (size_t i = 0; i < a.data.size(); ++i) worst = std::max(worst, std::abs(37.0 * a.data[i] + 500 - b.data[i]));
    CHECK(worst <= 1e-4 * 37 * (*hi - *lo));
  }
}

TEST_CASE("reconstruct: an old checkpoint, carrying min and max, scales as it always did, and --strict refuses "
          "a volume outside its range") {
  TempDir dir;
  std::vector<std::string> paths;
  if (!write_subset(dir, &paths)) return;  // real T1 crops, 0..254, slices 38 x 42 along axis 1
  const std::string vol = paths[0];
  // The metadata as mriae wrote it before the per-volume methods: the method and its two numbers.
  const CheckpointMetadata old = {{"data.paths", "[\"" + vol + "\"]"}, {"data.axis", "1"},    {"data.slices", ""},
                                  {"data.central", "2"},                {"data.normalize", "train"},
                                  {"data.pad", "top-left"},             {"data.split", "slices"},
                                  {"data.val_fraction", "0.2"},         {"data.seed", "13"},
                                  {"data.height", "40"},                {"data.width", "44"},
                                  {"data.norm_min", "-100"},            {"data.norm_max", "900"}};
  const std::string weights = dir.file("old.safetensors");
  save_checkpoint(weights, Autoencoder(AutoencoderConfig{}), nullptr, old);
  ReconstructOptions o;
  o.weights = weights;
  o.input = vol;
  o.output = dir.file("out.nii");
  o.device = "cpu";
  o.strict = true;  // 0..254 lies inside -100..900
  const ReconstructResult r = reconstruct(o);
  CHECK(r.method == io::NormalizeMethod::Training);
  CHECK(r.scaling.min == -100.0f);
  CHECK(r.scaling.max == 900.0f);
  const io::Volume in = io::read_volume(vol), out = io::read_volume(o.output);
  Autoencoder model(AutoencoderConfig{});
  load_checkpoint(weights, model, nullptr);
  for (int64_t j : {0, 9})
    CHECK(max_abs_difference(slice_of(out, 1, j), direct_slice(model, in, 1, j, {-100, 900}, false)) <= 1e-5 * 1000);

  // evaluate reads it too, with the same scaling.
  EvalOptions e;
  e.weights = weights;
  e.subset = "all";
  e.out_dir = dir.file("eval");
  e.figure_slices = 0;
  e.device = "cpu";
  const EvalResult er = evaluate(e, nullptr);
  REQUIRE(er.volumes.size() == 1);
  CHECK(er.volumes[0].scaling.min == -100.0f);
  CHECK(er.volumes[0].scaling.max == 900.0f);

  // The same volume in units 37 x + 500 lies far outside: an error naming it with --strict, nothing written.
  o.input = write_rescaled(dir, vol, "x37.nii", 37, 500);
  o.output = dir.file("out37.nii");
  CHECK_THROWS_WITH_AS(reconstruct(o), doctest::Contains((o.input + ": 100.0% of its voxels").c_str()), io::DatasetError);
  CHECK_FALSE(fs::exists(o.output));
  o.strict = false;  // a warning on stderr, and the (meaningless) reconstruction
  reconstruct(o);
  CHECK(fs::exists(o.output));
}
