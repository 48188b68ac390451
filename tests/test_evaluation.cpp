#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/evaluation.h"
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
