#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <nlohmann/json.hpp>

#include "apps/evaluation.h"
#include "apps/gnuplot.h"
#include "apps/metrics.h"
#include "apps/trainer.h"
#include "tests/colin_subset.h"

using namespace mriae;
namespace fs = std::filesystem;

TEST_CASE("PSNR follows the tutorial's formula on a pair computed by hand") {
  // Errors 0.1, -0.1, 0.2, 0: mse = (0.01 + 0.01 + 0.04 + 0) / 4 = 0.015; PSNR = 20 log10(1 / sqrt(0.015)).
  const float a[4] = {0.5f, 0.2f, 0.9f, 0.0f}, b[4] = {0.4f, 0.3f, 0.7f, 0.0f};
  const double mse = mean_squared_error(a, b, 4);
  CHECK(mse == doctest::Approx(0.015).epsilon(1e-6));
  CHECK(psnr_from_mse(mse) == doctest::Approx(18.2390874).epsilon(1e-6));
  CHECK(std::isinf(psnr_from_mse(0.0)));
}

TEST_CASE("SSIM is 1 for identical images and matches the closed form for constant ones") {
  const int h = 16, w = 13;
  std::vector<float> x(h * w), y(h * w, 0.3f), z(h * w, 0.6f);
  for (int i = 0; i < h * w; ++i) x[size_t(i)] = float((i * 7919) % 101) / 100.0f;
  CHECK(ssim(x.data(), x.data(), h, w) == doctest::Approx(1.0).epsilon(1e-12));
  // Constant images: no variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1) with C1 = (0.01 L)^2.
  const double c1 = 1e-4, a = 0.3, b = 0.6;
  CHECK(ssim(y.data(), z.data(), h, w) == doctest::Approx((2 * a * b + c1) / (a * a + b * b + c1)).epsilon(1e-6));
  // Noise lowers it; a negated image anti-correlates.
  std::vector<float> noisy(x), negated(x);
  for (int i = 0; i < h * w; ++i) noisy[size_t(i)] += (i % 2 ? 0.05f : -0.05f), negated[size_t(i)] = 1.0f - x[size_t(i)];
  const double s_noisy = ssim(x.data(), noisy.data(), h, w);
  CHECK(s_noisy < 1.0);
  CHECK(s_noisy > 0.5);
  CHECK(ssim(x.data(), negated.data(), h, w) < 0.0);
  CHECK_THROWS_AS(ssim(x.data(), x.data(), 10, 10), std::invalid_argument);
}

TEST_CASE("evaluate reports clean and noisy metrics of a trained run and draws its figures") {
  io::testing::TempDir dir;
  testing::ColinCrop crop;
  crop.y0s = {95};
  std::vector<std::string> paths;
  if (!testing::write_colin_crops(dir, crop, &paths)) return;
  const TrainResult run = train(testing::tiny_run(paths, dir.file("run"), 12, 2), nullptr);

  EvalOptions e;
  e.weights = run.last_checkpoint;
  e.sigmas = {0.0, 0.03, 0.1};
  e.out_dir = dir.file("eval");
  e.device = "cpu";
  std::FILE* console = std::tmpfile();
  REQUIRE(console);
  const EvalResult r = evaluate(e, console);
  std::rewind(console);
  std::string printed;
  for (int c; (c = std::fgetc(console)) != EOF;) printed += char(c);
  std::fclose(console);
  CHECK(r.slices == 3);  // ceil(0.2 * 12) validation slices
  REQUIRE(r.noisy.size() == 3);
  // Sigma 0 is the clean case again, bit for bit.
  CHECK(r.noisy[0].psnr == r.psnr);
  CHECK(std::isinf(r.noisy[0].psnr_input));
  // The noisy inputs' PSNR is that of Gaussian noise: 20 log10(1 / sigma), within sampling error.
  CHECK(r.noisy[1].psnr_input == doctest::Approx(20 * std::log10(1 / 0.03)).epsilon(0.01));
  CHECK(r.noisy[2].psnr_input == doctest::Approx(20.0).epsilon(0.01));
  CHECK(r.noisy[2].psnr < r.noisy[1].psnr + 1e-9);
  // The noisy input's SSIM: 1 without noise, falling as the noise grows.
  CHECK(r.noisy[0].ssim_input == doctest::Approx(1.0).epsilon(1e-9));
  CHECK(r.noisy[1].ssim_input < 1 - 1e-3);
  CHECK(r.noisy[2].ssim_input < r.noisy[1].ssim_input);
  CHECK(r.train_noise == 0);
  // The printed table: one row per sigma, noisy input beside reconstruction.
  CHECK(printed.find("noisy input") != std::string::npos);
  char row[128];
  std::snprintf(row, sizeof row, "%8.3g  %8.2f %8.4f  %8.2f %8.4f", 0.1, r.noisy[2].psnr_input, r.noisy[2].ssim_input,
                r.noisy[2].psnr, r.noisy[2].ssim);
  CHECK_MESSAGE(printed.find(row) != std::string::npos, printed);
  const auto j = nlohmann::json::parse(std::ifstream(dir.file("eval") + "/metrics.json"));
  CHECK(j["clean"]["psnr_db"].get<double>() == doctest::Approx(r.psnr));
  CHECK(j["noisy"].size() == 3);
  CHECK(j["noisy"][1]["noisy_input_ssim"].get<double>() == doctest::Approx(r.noisy[1].ssim_input));
  CHECK(j["noisy"][1]["noisy_input_psnr_db"].get<double>() == doctest::Approx(r.noisy[1].psnr_input));
  CHECK(j["train_noise_sigma"].get<double>() == 0);
  if (r.figures.empty()) MESSAGE("figures not drawn (gnuplot missing?)");
  for (auto& f : r.figures) CHECK(fs::file_size(f) > 1000);

  e.sigmas = {-0.1};
  CHECK_THROWS_WITH(evaluate(e, nullptr), doctest::Contains("--sigma"));
  e.sigmas = {0.03};
  e.weights = dir.file("missing.safetensors");
  CHECK_THROWS_WITH(evaluate(e, nullptr), doctest::Contains("missing.safetensors"));
}

namespace {

constexpr const char* kColinBet = "/usr/share/mricron/templates/ch2bet.nii.gz";

// A crop of a real volume like testing::write_colin_crops's (every second voxel in x and z, 40 x 12 x 40
// from (50, y0, 50)), in other intensity units a * v + b, written by niftilib as int16 (the type of many
// scanners' files) or float32.
std::string write_real_crop(const io::testing::TempDir& dir, const std::string& source, const std::string& name, int y0,
                            float a, float b, int datatype) {
  const io::Volume v = io::read_volume(source);
  const int nx = 40, ny = 12, nz = 40;
  std::vector<float> f(size_t(nx * ny * nz));
  for (int k = 0; k < nz; ++k)
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < nx; ++i) f[size_t(i + nx * (j + ny * k))] = a * v.at(50 + 2 * i, y0 + j, 50 + 2 * k) + b;
  const std::string path = dir.file(name);
  if (datatype == NIFTI_TYPE_INT16) {
    REQUIRE(*std::max_element(f.begin(), f.end()) <= 32767.0f);
    REQUIRE(*std::min_element(f.begin(), f.end()) >= -32768.0f);
    std::vector<int16_t> s(f.size());
    for (size_t i = 0; i < f.size(); ++i) s[i] = int16_t(std::lround(f[i]));
    io::testing::write_image(path, {nx, ny, nz}, NIFTI_TYPE_INT16, s.data());
  } else {
    io::testing::write_image(path, {nx, ny, nz}, NIFTI_TYPE_FLOAT32, f.data());
  }
  return path;
}

EvalResult evaluate_on(const std::string& weights, const std::string& data, const std::string& out, bool strict = false) {
  EvalOptions e;
  e.weights = weights;
  e.data = {data};
  e.subset = "all";
  e.sigmas = {0.05};
  e.out_dir = out;
  e.figure_slices = 0;
  e.device = "cpu";
  e.strict = strict;
  return evaluate(e, nullptr);
}

}  // namespace

TEST_CASE("a model trained on one real volume evaluates another of a different intensity range as well") {
  io::testing::TempDir dir;
  std::vector<std::string> paths;
  if (!testing::write_colin_crops(dir, testing::ColinCrop{}, &paths)) return;  // ch2: 0..254
  if (!fs::exists(kColinBet)) return;
  // Another real volume (Colin27 brain-extracted, 0..133) at another place, as stored and in other units.
  const std::string bet = write_real_crop(dir, kColinBet, "bet.nii", 100, 1, 0, NIFTI_TYPE_FLOAT32);
  const std::string bet37 = write_real_crop(dir, kColinBet, "bet_x37.nii.gz", 100, 37, 500, NIFTI_TYPE_INT16);

  for (const std::string method : {"volume", "percentile"}) {
    CAPTURE(method);
    TrainOptions o = testing::tiny_run(paths, dir.file("run_" + method), 12, 3);
    o.data.normalize = method;
    const TrainResult run = train(o, nullptr);
    const EvalResult same = evaluate_on(run.best_checkpoint, bet, dir.file("eval_" + method));
    const EvalResult other = evaluate_on(run.best_checkpoint, bet37, dir.file("eval37_" + method), true);
    MESSAGE(method << ": PSNR " << same.psnr << " dB as stored, " << other.psnr << " dB in units 37 x + 500");
    CHECK(std::abs(same.psnr - other.psnr) < 1.0);
    CHECK(std::abs(same.noisy[0].psnr - other.noisy[0].psnr) < 1.0);
    REQUIRE(other.volumes.size() == 1);
    // The volume's own scaling, in its own units (0..133 as stored: 500..5421 scaled, minus clipping).
    CHECK(other.volumes[0].scaling.max > 1000);
    CHECK(other.volumes[0].outside_fraction == 0);
  }

  // The tutorial's global scaling: the scaled volume lands far outside [0, 1]: refused with --strict,
  // evaluated (badly) without.
  TrainOptions g = testing::tiny_run(paths, dir.file("run_train"), 12, 3);
  g.data.normalize = "train";
  const TrainResult run = train(g, nullptr);
  CHECK_THROWS_WITH_AS(evaluate_on(run.best_checkpoint, bet37, dir.file("eval_strict"), true),
                       doctest::Contains((bet37 + ": 100.0% of its voxels").c_str()), io::DatasetError);
  CHECK_FALSE(fs::exists(dir.file("eval_strict") + "/metrics.json"));
  const EvalResult same = evaluate_on(run.best_checkpoint, bet, dir.file("eval_train"));
  const EvalResult other = evaluate_on(run.best_checkpoint, bet37, dir.file("eval37_train"));  // warns on stderr
  MESSAGE("train: PSNR " << same.psnr << " dB as stored, " << other.psnr << " dB in units 37 x + 500");
  REQUIRE(other.volumes.size() == 1);
  CHECK(other.volumes[0].outside_fraction == 1.0);
  CHECK(other.psnr < same.psnr - 10);
}

TEST_CASE("metrics per volume: in metrics.json, and pooled over their slices") {
  io::testing::TempDir dir;
  testing::ColinCrop crop;
  crop.y0s = {90, 110};
  std::vector<std::string> paths;
  if (!testing::write_colin_crops(dir, crop, &paths)) return;
  TrainOptions o = testing::tiny_run(paths, dir.file("run"), 12, 2);
  o.data.normalize = "percentile";
  o.data.percentiles = "1,99";
  const TrainResult run = train(o, nullptr);
  EvalOptions e;
  e.weights = run.last_checkpoint;
  e.subset = "all";
  e.sigmas = {0.02, 0.1};
  e.out_dir = dir.file("eval");
  e.figure_slices = 0;
  e.device = "cpu";
  const EvalResult r = evaluate(e, nullptr);
  const auto j = nlohmann::json::parse(std::ifstream(dir.file("eval") + "/metrics.json"));
  CHECK(j["normalize"] == "percentile");
  CHECK(j["percentiles"][0].get<double>() == 1.0);
  REQUIRE(j["volumes"].size() == 2);
  REQUIRE(r.volumes.size() == 2);
  // The pooled MSE is the slice-weighted mean of the volumes' (all slices are the same size), for the clean
  // and for every noisy case; PSNR = -10 log10(MSE).
  auto mse = [](double psnr) { return std::pow(10.0, -psnr / 10); };
  for (int c = -1; c < 2; ++c) {
    CAPTURE(c);
    double weighted = 0;
    int64_t slices = 0;
    for (size_t v = 0; v < 2; ++v) {
      const auto& jv = j["volumes"][v];
      CHECK(jv["path"] == paths[v]);
      const double p = c < 0 ? jv["clean"]["psnr_db"].get<double>() : jv["noisy"][size_t(c)]["psnr_db"].get<double>();
      weighted += mse(p) * jv["slices"].get<double>();
      slices += jv["slices"].get<int64_t>();
    }
    CHECK(slices == r.slices);
    CHECK(mse(c < 0 ? r.psnr : r.noisy[size_t(c)].psnr) == doctest::Approx(weighted / double(slices)).epsilon(1e-9));
  }
  // The two crops differ, and so do their scores.
  CHECK(r.volumes[0].psnr != r.volumes[1].psnr);
  CHECK(j["volumes"][1]["normalisation"]["clipped"] == true);
  const std::string table = volume_table(r);
  CHECK(table.find("subject0.nii") != std::string::npos);
  CHECK(table.find("subject1.nii") != std::string::npos);
  CHECK(table.find("all (pooled)") != std::string::npos);
  CHECK(table.find("sigma 0.1") != std::string::npos);
}

TEST_CASE("--subset train and val are the run's two sides of the split, and pool to all") {
  io::testing::TempDir dir;
  std::vector<std::string> paths;
  if (!testing::write_colin_crops(dir, testing::ColinCrop{}, &paths)) return;
  const TrainResult run = train(testing::tiny_run(paths, dir.file("run"), 12, 2), nullptr);
  std::map<std::string, EvalResult> by;
  for (const std::string subset : {"train", "val", "all"}) {
    EvalOptions e;
    e.weights = run.last_checkpoint;
    e.subset = subset;
    e.sigmas = {0.05};
    e.out_dir = dir.file("eval_" + subset);
    e.figure_slices = 0;
    e.device = "cpu";
    by[subset] = evaluate(e, nullptr);
    const auto j = nlohmann::json::parse(std::ifstream(e.out_dir + "/metrics.json"));
    CHECK(j["subset"] == subset);
  }
  const EvalResult &t = by["train"], &v = by["val"], &a = by["all"];
  REQUIRE(t.slices > 0);
  REQUIRE(v.slices > 0);
  CHECK(t.slices + v.slices == a.slices);
  CHECK(double(v.slices) / double(a.slices) == doctest::Approx(0.2).epsilon(0.1));  // the default 80/20 split
  // Inference mode reconstructs each slice alone, so the clean MSE over all slices is the slice-weighted
  // mean of the two sides' (the noisy ones differ: the noise is drawn over the evaluated array).
  auto mse = [](double psnr) { return std::pow(10.0, -psnr / 10); };
  CHECK(mse(a.psnr) * double(a.slices) ==
        doctest::Approx(mse(t.psnr) * double(t.slices) + mse(v.psnr) * double(v.slices)).epsilon(1e-6));

  EvalOptions bad;
  bad.weights = run.last_checkpoint;
  bad.subset = "training";
  bad.out_dir = dir.file("eval_bad");
  CHECK_THROWS_WITH_AS(evaluate(bad, nullptr), doctest::Contains("--subset must be 'val', 'train' or 'all', not 'training'"),
                       std::invalid_argument);
  CHECK_FALSE(fs::exists(bad.out_dir));
}

TEST_CASE("figure titles are shortened in the middle, and passed to gnuplot verbatim") {
  CHECK(shorten_title("ch2.nii.gz", 25) == "ch2.nii.gz");
  const std::string name = "sub-0001_ses-01_acq-mprage_run-01_T1w.nii.gz";
  const std::string s = shorten_title(name, 25);
  CHECK(s.size() == 25);
  CHECK(s.find("sub-0001_") == 0);
  CHECK(s.find("...") != std::string::npos);
  CHECK(s.substr(s.size() - 11) == "_T1w.nii.gz");
  // Single-quoted pieces: no backquote command substitution, quotes doubled, lines joined by "\n".
  CHECK(gnuplot_text("t1w_1mm") == "'t1w_1mm'");
  CHECK(gnuplot_text("it's `rm x`\nslice 3") == "'it''s `rm x`'.\"\\n\".'slice 3'");
}
