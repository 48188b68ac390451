#include "apps/evaluate_command.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "apps/data_paths.h"
#include "apps/evaluation.h"

namespace mriae {

void add_evaluate_command(CLI::App& app) {
  auto opt = std::make_shared<EvalOptions>();
  auto inputs = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand(
      "evaluate", "PSNR and SSIM of reconstructions, clean and with Gaussian noise, with the tutorial's figures");
  cmd->add_option("--weights", opt->weights, "Checkpoint written by mriae train, or Keras HDF5 weights")->required();
  add_keras_pipeline_options(cmd, opt->keras);
  cmd->add_option("--data", *inputs, "NIfTI files or folders (default: the data the run trained on)");
  cmd->add_option("--subset", opt->subset,
                  "Slices to evaluate: 'val' (the run's validation split), 'train' (its training split) or 'all'")
      ->capture_default_str();
  cmd->add_option("--sigma", opt->sigmas, "Noise levels (several: a sweep with a PSNR-against-sigma plot)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--noise-seed", opt->noise_seed, "Seed of the Gaussian noise")->capture_default_str();
  cmd->add_option("--out", opt->out_dir, "Folder for metrics.json, reconstructions.png, psnr_vs_sigma.png")->required();
  cmd->add_option("--figure-slices", opt->figure_slices, "Slices shown in reconstructions.png")->capture_default_str();
  cmd->add_option("--batch", opt->batch, "Slices per forward pass")->capture_default_str();
  cmd->add_option("--device", opt->device, "auto (a GPU when present), cuda or cpu")->capture_default_str();
  cmd->add_option("--dtype", opt->dtype, "float32, or float64 (CPU only)")->capture_default_str();
  cmd->add_flag("--strict", opt->strict,
                "A volume whose normalised voxels fall well outside [0, 1] is an error instead of a warning");
  cmd->callback([opt, inputs] {
    if (!inputs->empty()) opt->data = expand_data_paths(*inputs);
    const EvalResult r = evaluate(*opt, stdout);
    for (auto& f : r.figures) std::printf("wrote %s\n", f.c_str());
    std::printf("wrote %s/metrics.json\n", opt->out_dir.c_str());
  });
}

}  // namespace mriae
