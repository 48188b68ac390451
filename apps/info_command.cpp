#include "apps/info_command.h"

#include <CLI/CLI.hpp>

#include <cmath>
#include <exception>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <vector>

#include "io/nifti_volume.h"

namespace mriae {

namespace {

using io::NiftiHeader;

std::string format_name(const NiftiHeader& h) {
  std::string s = h.version == 0 ? "ANALYZE 7.5" : h.version == 2 ? "NIfTI-2" : "NIfTI-1";
  s += h.two_files ? ", header/image pair" : ", single file";
  if (h.gzipped) s += ", gzip-compressed";
  s += h.big_endian ? ", big-endian" : ", little-endian";
  return s;
}

std::string orientation_line(int code, const std::array<std::array<double, 4>, 4>& m) {
  std::ostringstream o;
  o << "code " << code << " (" << io::xform_name(code) << ")";
  if (code > 0) {
    const io::AxisOrientation a = io::axis_orientation(m);
    o << ": " << a.codes << " (i " << a.directions[0] << ", j " << a.directions[1] << ", k " << a.directions[2]
      << ")";
  }
  return o.str();
}

}  // namespace

std::string describe_image(const std::string& path) {
  const io::ImageSummary s = io::summarize_image(path);
  const NiftiHeader& h = s.header;
  std::ostringstream o;
  o << std::setprecision(7);
  auto row = [&](const char* key) -> std::ostream& { return o << "  " << std::left << std::setw(13) << key; };

  o << path << "\n";
  row("format") << format_name(h) << "\n";
  row("dims");
  for (int64_t i = 1; i <= h.dim[0]; ++i) o << (i > 1 ? " x " : "") << h.dim[size_t(i)];
  o << " (" << h.dim[0] << "-D, " << s.voxels << " voxels)\n";
  row("voxel size");
  for (int64_t i = 1; i <= std::min<int64_t>(h.dim[0], 3); ++i) o << (i > 1 ? " x " : "") << h.pixdim[size_t(i)];
  auto units = [](int code) { return code ? " " + io::units_name(code) : std::string(" (units unknown)"); };
  o << units(h.xyz_units);
  if (h.dim[0] >= 4) o << "; frame interval " << h.pixdim[4] << units(h.time_units);
  o << "\n";
  row("datatype") << io::datatype_name(h.datatype) << " (code " << h.datatype << ", " << h.bytes_per_voxel
                  << (h.bytes_per_voxel == 1 ? " byte" : " bytes") << " per voxel)\n";
  row("scaling");
  const bool identity = h.has_scaling() && h.scl_slope == 1.0 && (h.scl_inter == 0.0 || !std::isfinite(h.scl_inter));
  if (identity)
    o << "identity (scl_slope 1, scl_inter 0)\n";
  else if (h.has_scaling())
    o << "value * " << h.scl_slope << " + " << (std::isfinite(h.scl_inter) ? h.scl_inter : 0.0) << " (applied)\n";
  else
    o << "none (scl_slope " << h.scl_slope << ")\n";
  row("qform") << orientation_line(h.qform_code, h.qto_xyz) << "\n";
  row("sform") << orientation_line(h.sform_code, h.sto_xyz) << "\n";
  // The NIfTI precedence, as nibabel's affine: sform, else qform, else none.
  const bool use_s = h.sform_code > 0, use_q = !use_s && h.qform_code > 0;
  row("orientation");
  if (use_s || use_q) {
    o << io::axis_orientation(use_s ? h.sto_xyz : h.qto_xyz).codes << " (from the " << (use_s ? "sform" : "qform")
      << ")\n";
    const auto& m = use_s ? h.sto_xyz : h.qto_xyz;
    for (int r = 0; r < 3; ++r) {
      row(r == 0 ? "affine" : "") << "[";
      for (int c = 0; c < 4; ++c) o << (c ? " " : "") << std::setw(10) << std::right << m[size_t(r)][size_t(c)];
      o << " ]\n";
    }
  } else {
    o << "unknown (qform and sform codes are 0)\n";
  }
  row("intensity");
  if (s.non_finite == s.voxels)
    o << "no finite voxel";
  else
    o << "min " << s.min << ", max " << s.max << (h.has_scaling() && !identity ? " (after scaling)" : "");
  if (s.non_finite) o << "; " << s.non_finite << " NaN or infinite voxels";
  o << "\n";
  if (!h.descrip.empty()) row("description") << h.descrip << "\n";
  if (h.num_extensions) row("extensions") << h.num_extensions << "\n";
  return o.str();
}

void add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Print an image's dims, voxel size, datatype, scaling, orientation and "
                                         "intensity range");
  auto files = std::make_shared<std::vector<std::string>>();
  cmd->add_option("files", *files, "NIfTI-1/-2 or ANALYZE images (.nii, .nii.gz, .hdr/.img)")->required();
  cmd->callback([files] {
    bool failed = false, printed = false;
    for (const std::string& file : *files) {
      try {
        const std::string text = describe_image(file);
        std::cout << (printed ? "\n" : "") << text << std::flush;
        printed = true;
      } catch (const std::exception& e) {
        std::cerr << "mriae: error: " << e.what() << "\n";
        failed = true;
      }
    }
    // RuntimeError makes CLI11 exit with status 1 without printing anything more.
    if (failed) throw CLI::RuntimeError(1);
  });
}

}  // namespace mriae
