#include "apps/reconstruct_command.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "apps/reconstruction.h"

namespace mriae {

void add_reconstruct_command(CLI::App& app) {
  auto opt = std::make_shared<ReconstructOptions>();
  auto frame = std::make_shared<int64_t>(0);
  CLI::App* cmd = app.add_subcommand(
      "reconstruct", "Run every slice of a volume through a trained model; write the result as NIfTI with the "
                     "input's header and affine, in its intensity units");
  cmd->add_option("--weights", opt->weights,
                  "Checkpoint of a training run (best.safetensors or last.safetensors), or Keras HDF5 weights")
      ->required();
  add_keras_pipeline_options(cmd, opt->keras);
  cmd->add_option("--in", opt->input, "Input volume (.nii, .nii.gz, .hdr/.img)")->required();
  cmd->add_option("--out", opt->output, "Output volume: .nii, .nii.gz or .hdr (a .hdr/.img pair); replaced if present")
      ->required();
  CLI::Option* frame_opt = cmd->add_option("--frame", *frame, "For a 4-D input: the frame (0-based) to reconstruct");
  cmd->add_option("--batch", opt->batch, "Slices per forward pass")->capture_default_str();
  cmd->add_option("--device", opt->device, "auto (a GPU when present), cuda or cpu")->capture_default_str();
  cmd->add_option("--dtype", opt->dtype, "float32, or float64 (CPU only)")->capture_default_str();
  cmd->add_flag("--strict", opt->strict,
                "An input whose normalised voxels fall well outside [0, 1] is an error instead of a warning");
  cmd->callback([opt, frame, frame_opt] {
    if (frame_opt->count() > 0) opt->frame = *frame;
    const ReconstructResult r = reconstruct(*opt);
    if (!r.warning.empty()) std::fprintf(stderr, "mriae: warning: %s\n", r.warning.c_str());
    std::printf("%s\n", summary_line(r, opt->output).c_str());
  });
}

}  // namespace mriae
