#include "apps/evaluation.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "apps/gnuplot.h"
#include "apps/input_noise.h"
#include "apps/metrics.h"
#include "apps/run_config.h"
#include "apps/run_files.h"
#include "model/checkpoint.h"

namespace mriae {

namespace fs = std::filesystem;

namespace {

// Runs slices [count, H, W] through the model in inference mode, batch by batch.
std::vector<float> reconstruct(Autoencoder& model, const std::vector<float>& in, int64_t count, int64_t h, int64_t w,
                               int64_t batch, Device device) {
  std::vector<float> out(in.size());
  const int64_t plane = h * w;
  for (int64_t s = 0; s < count; s += batch) {
    const int64_t b = std::min(batch, count - s);
    Tensor x = Tensor::from_vector({b, 1, h, w}, std::vector<float>(in.begin() + s * plane, in.begin() + (s + b) * plane));
    // A float64 model's output is rounded to float32 here, like the data it is compared with.
    const Tensor y = model.forward(nullptr, Var(model.input(x.to(device))), false).value();
    const std::vector<float> v = y.to(DType::Float32).to_vector();
    std::copy(v.begin(), v.end(), out.begin() + s * plane);
  }
  return out;
}

// Slices `at` (positions in arrays of [count, h, w]) of a and b: MSE over all their pixels, in order.
double mse_over(const std::vector<float>& a, const std::vector<float>& b, const std::vector<int64_t>& at, int64_t plane) {
  double sum = 0;
  for (int64_t i : at)
    for (int64_t k = i * plane; k < (i + 1) * plane; ++k) {
      const double e = double(a[size_t(k)]) - b[size_t(k)];
      sum += e * e;
    }
  return sum / (double(at.size()) * double(plane));
}

double mean_ssim(const std::vector<float>& a, const std::vector<float>& b, const std::vector<int64_t>& at, int64_t h,
                 int64_t w) {
  double s = 0;
  for (int64_t i : at) s += ssim(a.data() + i * h * w, b.data() + i * h * w, int(h), int(w));
  return s / double(at.size());
}

NoiseResult noise_scores(double sigma, const std::vector<float>& noisy, const std::vector<float>& rec_noisy,
                         const std::vector<float>& clean, const std::vector<int64_t>& at, int64_t h, int64_t w) {
  NoiseResult nr;
  nr.sigma = sigma;
  nr.psnr_input = psnr_from_mse(mse_over(noisy, clean, at, h * w));
  nr.ssim_input = mean_ssim(noisy, clean, at, h, w);
  nr.psnr = psnr_from_mse(mse_over(rec_noisy, clean, at, h * w));
  nr.ssim = mean_ssim(rec_noisy, clean, at, h, w);
  return nr;
}

nlohmann::json scores_json(const Scores& s) {
  nlohmann::json j = {{"slices", s.slices},
                      {"clean", {{"psnr_db", s.psnr}, {"ssim", s.ssim}}},
                      {"noisy", nlohmann::json::array()}};
  for (auto& nr : s.noisy)
    j["noisy"].push_back(
        {{"sigma", nr.sigma}, {"psnr_db", nr.psnr}, {"ssim", nr.ssim}, {"noisy_input_psnr_db", nr.psnr_input},
         {"noisy_input_ssim", nr.ssim_input}});
  return j;
}

// The tutorial's figure, one column per slice: original, reconstruction, noisy, reconstruction of noisy.
// Grey levels on the fixed [0, 1] scale of the model's input, with a colour bar: a value above 1 is as
// white as 1, so a saturated reconstruction looks saturated.
bool draw_grid(const std::vector<const std::vector<float>*>& rows, const std::vector<std::string>& row_names,
               const std::vector<int64_t>& picks, const std::vector<std::string>& col_names, int64_t h, int64_t w,
               const std::string& png, std::string* why) {
  const fs::path tmp = png + ".tiles.tmp";
  fs::create_directories(tmp);
  std::ostringstream g;
  const int cols = int(picks.size()), nrows = int(rows.size());
  constexpr int kTile = 180, kLeft = 40, kRight = 85, kTop = 56;  // pixels: two-line titles, the bar and its labels
  const int width = kTile * cols + kLeft + kRight, height = kTile * nrows + kTop;
  auto frac = [](double px, double total) { return exact(px / total); };
  g << "set terminal pngcairo noenhanced size " << width << "," << height << " font 'sans,10'\n"
    << "set output " << gnuplot_quote(png + ".tmp") << "\n"
    << "set palette gray\nset cbrange [0:1]\nunset key\nunset tics\nunset border\n"
    << "set size ratio -1\nset multiplot layout " << nrows << "," << cols << " margins " << frac(kLeft, width) << ","
    << frac(width - kRight, width) << ",0.01," << frac(height - kTop, height) << " spacing 0.005,0.02\n";
  for (int r = 0; r < nrows; ++r)
    for (int c = 0; c < cols; ++c) {
      const std::string tile = (tmp / (std::to_string(r) + "_" + std::to_string(c) + ".f32")).string();
      std::ofstream(tile, std::ios::binary)
          .write(reinterpret_cast<const char*>(rows[size_t(r)]->data() + picks[size_t(c)] * h * w), std::streamsize(h * w * 4));
      if (r == 0 && c == 0)  // one bar for the whole figure, in the right margin
        g << "set colorbox user origin screen " << frac(width - kRight + 16, width) << "," << frac(kTile * 0.25, height)
          << " size screen " << frac(12, width) << "," << frac(height - kTop - kTile * 0.5, height) << "\n"
          << "set cbtics 0.25 border out nomirror scale 0.5\n";
      else
        g << "unset colorbox\n";
      g << "set title " << gnuplot_text(r == 0 ? col_names[size_t(c)] : "") << "\n"
        << "set ylabel " << gnuplot_text(c == 0 ? row_names[size_t(r)] : "") << "\n"
        << "plot [0:" << w - 1 << "][0:" << h - 1 << "] " << gnuplot_quote(tile) << " binary array=(" << w << "," << h
        << ") format='%float32' flipy with image\n";
    }
  g << "unset multiplot\n";
  const bool ok = run_gnuplot(g.str(), png + ".gp.tmp", why);
  fs::remove_all(tmp);
  if (ok) fs::rename(png + ".tmp", png);
  return ok;
}

bool draw_sweep(const EvalResult& r, const std::string& png, std::string* why) {
  const std::string data = png + ".dat.tmp";
  {
    // In order of sigma, whatever order they were asked in, so the lines join neighbouring levels.
    std::vector<NoiseResult> rows = r.noisy;
    std::sort(rows.begin(), rows.end(), [](const NoiseResult& a, const NoiseResult& b) { return a.sigma < b.sigma; });
    std::ofstream d(data);
    for (auto& n : rows) d << exact(n.sigma) << ' ' << exact(n.psnr) << ' ' << exact(n.psnr_input) << '\n';
  }
  std::ostringstream g;
  g << "set terminal pngcairo noenhanced size 800,560 font 'sans,11'\nset output " << gnuplot_quote(png + ".tmp") << "\n"
    << "set title 'PSNR against noise level'\nset xlabel 'noise sigma'\nset ylabel 'PSNR (dB, peak 1.0)'\nset grid\n"
    << "plot " << gnuplot_quote(data) << " using 1:2 with linespoints pt 7 lw 2 lc rgb '#1f3fbf' title 'reconstruction of noisy', \\\n"
    << "     '' using 1:3 with linespoints pt 5 lw 2 lc rgb '#bf3f1f' title 'noisy input'\n";
  const bool ok = run_gnuplot(g.str(), png + ".gp.tmp", why);
  std::remove(data.c_str());
  if (ok) fs::rename(png + ".tmp", png);
  return ok;
}

// For each noise level, the noisy input beside its reconstruction, so a model that denoises shows
// reconstructions better than their inputs.
void print_noise_table(std::FILE* console, const EvalResult& r) {
  std::fprintf(console, "%8s  %-17s  %-17s\n%8s  %8s %8s  %8s %8s\n", "noise", "noisy input", "reconstruction",
               "sigma", "PSNR dB", "SSIM", "PSNR dB", "SSIM");
  for (const NoiseResult& n : r.noisy)
    std::fprintf(console, "%8.3g  %8.2f %8.4f  %8.2f %8.4f\n", n.sigma, n.psnr_input, n.ssim_input, n.psnr, n.ssim);
}

}  // namespace

void EvalOptions::validate() const {
  if (weights.empty()) throw std::invalid_argument("--weights: no checkpoint given");
  if (subset != "val" && subset != "train" && subset != "all")
    throw std::invalid_argument("--subset must be 'val', 'train' or 'all', not '" + subset + "'");
  if (sigmas.empty()) throw std::invalid_argument("--sigma: at least one noise level is needed");
  for (double s : sigmas)
    if (!(s >= 0) || !std::isfinite(s)) throw std::invalid_argument("--sigma: noise levels must be >= 0, not " + exact(s));
  if (batch <= 0) throw std::invalid_argument("--batch must be positive");
  if (figure_slices < 0) throw std::invalid_argument("--figure-slices must be >= 0");
  if (out_dir.empty()) throw std::invalid_argument("--out: no output folder given");
  if (dtype != "float32" && dtype != "float64")
    throw std::invalid_argument("--dtype must be float32 or float64, not '" + dtype + "'");
}

std::string shorten_title(const std::string& title, size_t max_chars) {
  if (title.size() <= max_chars || max_chars < 5) return title;
  const size_t keep = max_chars - 3, tail = keep / 2, head = keep - tail;
  return title.substr(0, head) + "..." + title.substr(title.size() - tail);
}

std::string volume_table(const EvalResult& r) {
  constexpr size_t kName = 28;
  std::ostringstream o;
  char cell[64];
  o << std::left;
  o.width(kName);
  o << "volume";
  std::snprintf(cell, sizeof cell, " %6s  %21s", "slices", "clean: PSNR / SSIM");
  o << cell;
  for (auto& nr : r.noisy) {
    char head[40];
    std::snprintf(head, sizeof head, "sigma %.3g: PSNR / SSIM", nr.sigma);
    std::snprintf(cell, sizeof cell, "  %24s", head);
    o << cell;
  }
  o << "\n";
  auto row = [&](const std::string& name, const Scores& s) {
    o.width(kName);
    o << shorten_title(name, kName);
    std::snprintf(cell, sizeof cell, " %6lld  %9.2f dB / %.4f", (long long)s.slices, s.psnr, s.ssim);
    o << cell;
    for (auto& nr : s.noisy) {
      std::snprintf(cell, sizeof cell, "  %12.2f dB / %.4f", nr.psnr, nr.ssim);
      o << cell;
    }
    o << "\n";
  };
  for (auto& v : r.volumes) row(fs::path(v.path).filename().string(), v);
  row("all (pooled)", r);
  return o.str();
}

EvalResult evaluate(const EvalOptions& options, std::FILE* console) {
  options.validate();
  const DType dtype = parse_dtype(options.dtype);
  const Device device = resolve_device(options.device, dtype);
  AutoencoderConfig mc;
  mc.device = device;
  mc.dtype = dtype;
  Autoencoder model(mc);
  const CheckpointMetadata meta = load_weights(options.weights, model, options.keras);
  if (is_keras_metadata(meta) && options.data.empty())
    throw std::invalid_argument("--data: Keras weights carry no training data to evaluate on; name the volumes");
  const std::string note = dtype_note(options.weights, meta, dtype);
  if (console && !note.empty()) std::fprintf(console, "mriae: note: %s\n", note.c_str());
  io::DatasetOptions dopts;
  DataOptions data;
  try {
    data = data_options_from_metadata(meta);
    dopts = dataset_options_from_metadata(meta);  // new data is scaled by the method the model trained with
  } catch (const std::exception& e) {
    throw std::runtime_error(options.weights + ": " + e.what());
  }
  if (!options.data.empty()) {
    data.paths = options.data;
    data.subjects.clear();  // the run's subject table describes its own volumes: each new one is a subject
    data.subject_labels.clear();
    dopts.split.volume_subject.clear();
  }
  const io::SliceDataset ds = io::build_slice_dataset(data.paths, dopts);
  for (const std::string& w : ds.warnings) std::fprintf(stderr, "mriae: warning: %s\n", w.c_str());
  check_normalised_ranges(ds, options.strict, stderr);
  std::vector<int64_t> indices = options.subset == "val"     ? ds.split.validation
                                 : options.subset == "train" ? ds.split.train
                                                             : std::vector<int64_t>{};
  if (options.subset == "all")
    for (int64_t i = 0; i < ds.slices.count(); ++i) indices.push_back(i);

  const int64_t n = int64_t(indices.size()), h = ds.slices.height(), w = ds.slices.width(), plane = h * w;
  std::vector<float> clean(size_t(n * plane));
  for (int64_t i = 0; i < n; ++i) ds.slices.copy_slice(indices[size_t(i)], clean.data() + i * plane);

  // Positions in the evaluated arrays: all of them pooled, and each volume's own.
  std::vector<int64_t> pooled(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) pooled[size_t(i)] = i;
  std::vector<std::vector<int64_t>> of_volume(ds.subjects.size());
  for (int64_t i = 0; i < n; ++i) of_volume[size_t(ds.refs[size_t(indices[size_t(i)])].subject)].push_back(i);

  EvalResult r;
  r.slices = n;
  for (size_t s = 0; s < ds.subjects.size(); ++s) {
    if (of_volume[s].empty()) continue;
    VolumeScores v;
    v.path = ds.subjects[s].path;
    v.slices = int64_t(of_volume[s].size());
    v.scaling = ds.subjects[s].scaling;
    v.outside_fraction = ds.subjects[s].range_check.outside_fraction();
    r.volumes.push_back(v);
  }
  auto each_volume = [&](auto&& fn) {
    size_t k = 0;
    for (size_t s = 0; s < ds.subjects.size(); ++s)
      if (!of_volume[s].empty()) fn(r.volumes[k++], of_volume[s]);
  };

  const std::vector<float> rec = reconstruct(model, clean, n, h, w, options.batch, device);
  r.psnr = psnr_from_mse(mse_over(rec, clean, pooled, plane));
  r.ssim = mean_ssim(rec, clean, pooled, h, w);
  each_volume([&](VolumeScores& v, const std::vector<int64_t>& at) {
    v.psnr = psnr_from_mse(mse_over(rec, clean, at, plane));
    v.ssim = mean_ssim(rec, clean, at, h, w);
  });
  if (console)
    std::fprintf(console, "%lld%s slices (%lldx%lld): PSNR %.2f dB, SSIM %.4f\n", (long long)n,
                 options.subset == "all" ? "" : options.subset == "val" ? " validation" : " training", (long long)h,
                 (long long)w, r.psnr, r.ssim);

  std::vector<float> first_noisy, first_rec_noisy;
  double figure_sigma = 0;
  for (double sigma : options.sigmas) {
    // The tutorial's np.random.normal(0, sigma, shape) added to every pixel, padding included, unclipped.
    std::vector<float> noisy(clean);
    add_gaussian_noise(noisy.data(), int64_t(noisy.size()), sigma, options.noise_seed);
    const std::vector<float> rn = reconstruct(model, noisy, n, h, w, options.batch, device);
    const NoiseResult nr = noise_scores(sigma, noisy, rn, clean, pooled, h, w);
    r.noisy.push_back(nr);
    each_volume([&](VolumeScores& v, const std::vector<int64_t>& at) {
      v.noisy.push_back(noise_scores(sigma, noisy, rn, clean, at, h, w));
    });
    if (first_noisy.empty() && sigma > 0) first_noisy = std::move(noisy), first_rec_noisy = rn, figure_sigma = sigma;
  }
  if (console) std::fprintf(console, "%s", volume_table(r).c_str());

  if (console) print_noise_table(console, r);
  if (auto it = meta.find("train.noise_sigma"); it != meta.end()) r.train_noise = std::stod(it->second);

  fs::create_directories(options.out_dir);
  nlohmann::json j = {{"weights", options.weights},
                      {"data", data.paths},
                      {"subset", options.subset},
                      {"normalize", io::method_name(ds.method)},
                      {"slices", n},
                      {"slice_size", {h, w}},
                      {"psnr_peak", 1.0},
                      {"clean", {{"psnr_db", r.psnr}, {"ssim", r.ssim}}},
                      {"noise_seed", options.noise_seed},
                      {"train_noise_sigma", r.train_noise},
                      {"noisy", scores_json(r)["noisy"]},
                      {"volumes", nlohmann::json::array()}};
  if (ds.method == io::NormalizeMethod::Percentile)
    j["percentiles"] = {dopts.percentiles.lower, dopts.percentiles.upper};
  for (auto& v : r.volumes) {
    nlohmann::json jv = scores_json(v);
    jv["path"] = v.path;
    jv["normalisation"] = {{"min", v.scaling.min}, {"max", v.scaling.max}, {"clipped", v.scaling.clip},
                           {"outside_fraction", v.outside_fraction}};
    j["volumes"].push_back(jv);
  }
  write_text_atomic((fs::path(options.out_dir) / "metrics.json").string(), j.dump(2) + "\n");

  std::string why;
  if (options.figure_slices > 0 && n > 0) {
    std::vector<int64_t> picks;
    std::vector<std::string> col_names;
    const int64_t k = std::min<int64_t>(options.figure_slices, n);
    for (int64_t i = 0; i < k; ++i) {
      picks.push_back(i * n / k);
      const io::SliceRef& ref = ds.refs[size_t(indices[size_t(picks.back())])];
      // Two lines; the name shortened to fit a 180 px tile (about 7 px a character, with room for wide ones).
      col_names.push_back(shorten_title(fs::path(ds.subjects[size_t(ref.subject)].path).filename().string(), 22) +
                          "\nslice " + std::to_string(ref.index));
    }
    std::vector<const std::vector<float>*> rows = {&clean, &rec};
    std::vector<std::string> names = {"original", "reconstruction"};
    if (!first_noisy.empty()) {
      rows.push_back(&first_noisy);
      rows.push_back(&first_rec_noisy);
      char label[64];
      std::snprintf(label, sizeof label, "noisy (sigma %.3g)", figure_sigma);
      names.push_back(label);
      names.push_back("reconstruction of noisy");
    }
    const std::string png = (fs::path(options.out_dir) / "reconstructions.png").string();
    if (draw_grid(rows, names, picks, col_names, h, w, png, &why)) r.figures.push_back(png);
    else if (console) std::fprintf(console, "mriae: warning: %s not drawn: %s\n", png.c_str(), why.c_str());
  }
  if (r.noisy.size() > 1) {
    const std::string png = (fs::path(options.out_dir) / "psnr_vs_sigma.png").string();
    if (draw_sweep(r, png, &why)) r.figures.push_back(png);
    else if (console) std::fprintf(console, "mriae: warning: %s not drawn: %s\n", png.c_str(), why.c_str());
  }
  return r;
}

}  // namespace mriae
