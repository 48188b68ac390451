#include "apps/conform_command.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "io/conform.h"
#include "io/nifti_writer.h"

namespace mriae {

namespace {

struct ConformCommandOptions {
  std::string input, output;
  std::optional<int64_t> frame;
  double voxel = 1.0;
  std::string interp = "linear";
};

void run_conform(const ConformCommandOptions& o) {
  io::ConformOptions c;
  c.voxel = o.voxel;
  if (o.interp != "linear" && o.interp != "nearest")
    throw std::invalid_argument("--interp must be 'linear' or 'nearest', not '" + o.interp + "'");
  c.interpolation = io::parse_interpolation(o.interp);
  io::check_output_path(o.output);
  io::ReadOptions read;
  read.frame = o.frame;
  const io::Volume v = io::read_volume(o.input, read);
  const io::ConformedVolume r = io::conform_volume(v, c);
  if (!r.warning.empty()) std::fprintf(stderr, "mriae: warning: %s\n", r.warning.c_str());
  io::NiftiHeader header = r.volume.header;
  header.descrip = "mriae conform";
  io::write_volume(o.output, header, r.volume.dims, r.volume.data);
  std::printf("%s: axes %s -> %s; %lldx%lldx%lld -> %lldx%lldx%lld at %g mm (%s); wrote %s\n", o.input.c_str(),
              r.oriented ? r.orientation_codes.c_str() : "unknown", r.oriented ? "RAS" : "array order",
              (long long)v.dims[0], (long long)v.dims[1], (long long)v.dims[2], (long long)r.grid.dims[0],
              (long long)r.grid.dims[1], (long long)r.grid.dims[2], o.voxel,
              r.resampled ? io::interpolation_name(c.interpolation).c_str() : "not resampled", o.output.c_str());
}

}  // namespace

void add_conform_command(CLI::App& app) {
  auto opt = std::make_shared<ConformCommandOptions>();
  auto frame = std::make_shared<int64_t>(0);
  CLI::App* cmd = app.add_subcommand(
      "conform", "Write a volume as `train --conform` sees it: reoriented to RAS and resampled to isotropic voxels");
  cmd->add_option("--in", opt->input, "Input volume (.nii, .nii.gz, .hdr/.img)")->required();
  cmd->add_option("--out", opt->output, "Output volume: .nii, .nii.gz or .hdr (a .hdr/.img pair); replaced if present")
      ->required();
  CLI::Option* frame_opt = cmd->add_option("--frame", *frame, "For a 4-D input: the frame (0-based)");
  cmd->add_option("--voxel", opt->voxel, "Isotropic voxel size in mm")->capture_default_str();
  cmd->add_option("--interp", opt->interp, "'linear' (trilinear) or 'nearest'")->capture_default_str();
  cmd->callback([opt, frame, frame_opt] {
    if (frame_opt->count() > 0) opt->frame = *frame;
    run_conform(*opt);
  });
}

}  // namespace mriae
