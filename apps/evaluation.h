#pragma once
// `mriae evaluate`: the tutorial's last section. Reconstructs the validation slices of a trained run,
// clean and with seeded Gaussian noise, and reports PSNR (peak 1.0, the tutorial's formula, over every
// pixel of the normalised, padded slices) and SSIM.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "apps/weights_file.h"
#include "io/normalization.h"

namespace mriae {

struct EvalOptions {
  std::string weights;              // a checkpoint of mriae train, or Keras weights (apps/weights_file.h)
  KerasPipeline keras;              // the data pipeline for Keras weights
  std::vector<std::string> data;    // other volumes to evaluate on (default: the run's own)
  std::string subset = "val";       // "val" (the run's validation split), "train" (its training split) or "all"
  std::vector<double> sigmas = {0.03};  // noise levels; more than one draws PSNR against sigma
  uint64_t noise_seed = 13;
  std::string out_dir;              // metrics.json and the figures
  int figure_slices = 5;
  int64_t batch = 32;
  std::string device = "auto";
  std::string dtype = "float32";  // the model's; "float64" runs on the CPU only
  bool strict = false;              // a volume outside the model's intensity range is an error, not a warning

  void validate() const;
};

struct NoiseResult {
  double sigma = 0;
  double psnr_input = 0, ssim_input = 0;  // the noisy slices themselves against the clean ones
  double psnr = 0, ssim = 0;       // reconstructions of the noisy slices against the clean ones
};

// The scores of a set of slices: every evaluated slice pooled, or one volume's. PSNR is that of the mean
// squared error over all their pixels; SSIM the mean over slices.
struct Scores {
  int64_t slices = 0;
  double psnr = 0, ssim = 0;       // clean reconstructions
  std::vector<NoiseResult> noisy;  // one per sigma, in the order asked
};

struct VolumeScores : Scores {
  std::string path;
  io::Normalisation scaling;       // what its intensities were mapped to [0, 1] with
  double outside_fraction = 0;     // of its voxels normalised beyond [-0.05, 1.05]
};

struct EvalResult : Scores {
  std::vector<VolumeScores> volumes;  // in the order of the data set, each with at least one slice evaluated
  double train_noise = 0;             // the --train-noise the weights were trained with (0: a plain autoencoder)
  std::vector<std::string> figures;   // the PNGs drawn
};

// The console table of per-volume scores (one row a volume, then the pooled row; PSNR/SSIM per sigma).
std::string volume_table(const EvalResult& result);

// A figure title that fits `max_chars`: kept whole when short enough, otherwise its middle replaced by
// "..." so both the start and the end of a file name stay readable.
std::string shorten_title(const std::string& title, size_t max_chars);

EvalResult evaluate(const EvalOptions& options, std::FILE* console);

}  // namespace mriae
