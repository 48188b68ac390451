#pragma once
// `mriae evaluate`: the tutorial's last section. Reconstructs the validation slices of a trained run,
// clean and with seeded Gaussian noise, and reports PSNR (peak 1.0, the tutorial's formula, over every
// pixel of the normalised, padded slices) and SSIM.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace mriae {

struct EvalOptions {
  std::string weights;              // a checkpoint of mriae train
  std::vector<std::string> data;    // other volumes to evaluate on (default: the run's own)
  std::string subset = "val";       // "val" (the run's validation split) or "all" slices
  std::vector<double> sigmas = {0.03};  // noise levels; more than one draws PSNR against sigma
  uint64_t noise_seed = 13;
  std::string out_dir;              // metrics.json and the figures
  int figure_slices = 5;
  int64_t batch = 32;
  std::string device = "auto";

  void validate() const;
};

struct NoiseResult {
  double sigma = 0;
  double psnr_input = 0, ssim_input = 0;  // the noisy slices themselves against the clean ones
  double psnr = 0, ssim = 0;       // reconstructions of the noisy slices against the clean ones
};

struct EvalResult {
  int64_t slices = 0;
  double psnr = 0, ssim = 0;       // clean reconstructions
  std::vector<NoiseResult> noisy;  // in the order of EvalOptions::sigmas
  double train_noise = 0;          // the --train-noise the weights were trained with (0: a plain autoencoder)
  std::vector<std::string> figures;  // the PNGs drawn
};

EvalResult evaluate(const EvalOptions& options, std::FILE* console);

}  // namespace mriae
