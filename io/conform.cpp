#include "io/conform.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace mriae::io {

namespace {

std::string mm(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// The grid already has voxels of the wanted size along the world axes: resampling would only reproduce it.
bool is_voxel_grid(const Affine& a, double voxel) {
  for (size_t r = 0; r < 3; ++r)
    for (size_t c = 0; c < 3; ++c)
      if (std::abs(a[r][c] - (r == c ? voxel : 0.0)) > 1e-6) return false;
  return true;
}

// The header of a conformed volume: its grid as both forms. A diagonal positive affine is the identity
// quaternion with qfac 1, so the qform holds it exactly.
NiftiHeader conformed_header(const NiftiHeader& in, const Grid& g, int code) {
  NiftiHeader h = in;
  h.dim = {3, g.dims[0], g.dims[1], g.dims[2], 1, 1, 1, 1};
  h.pixdim = {1, g.affine[0][0], g.affine[1][1], g.affine[2][2], 0, 0, 0, 0};
  h.qform_code = h.sform_code = code;
  h.quatern_b = h.quatern_c = h.quatern_d = 0;
  h.qfac = 1;
  h.qoffset_x = g.affine[0][3];
  h.qoffset_y = g.affine[1][3];
  h.qoffset_z = g.affine[2][3];
  h.qto_xyz = h.sto_xyz = g.affine;
  // Which array axis was read out, phase-encoded or acquired in slices no longer holds after resampling.
  h.freq_dim = h.phase_dim = h.slice_dim = 0;
  h.slice_code = 0;
  h.slice_start = h.slice_end = 0;
  h.slice_duration = 0;
  h.scl_slope = h.scl_inter = 0;  // the data are the scaled values
  return h;
}

}  // namespace

ConformedVolume conform_volume(const Volume& v, const ConformOptions& opt) {
  if (!(opt.voxel > 0) || !std::isfinite(opt.voxel))
    throw std::invalid_argument("--voxel must be a positive number of mm, not " + mm(opt.voxel));
  ConformedVolume c;
  c.source.dims = v.dims;

  CanonicalVolume canon;
  int code = 0;
  const std::optional<CodedAffine> best = best_affine(v.header);
  std::string unusable;
  if (!best) {
    unusable = "no usable orientation (qform_code and sform_code are 0)";
  } else {
    try {
      canon = as_closest_canonical(v.data, v.dims, best->affine);
      c.oriented = true;
      code = best->code;
      c.source.affine = best->affine;
      c.orientation_codes = axis_codes(canon.orientation);
    } catch (const std::invalid_argument& e) {
      unusable = std::string("no usable orientation (the ") + (best->from_sform ? "sform" : "qform") + ": " + e.what() + ")";
    }
  }
  if (!c.oriented) {
    // The array's own axes, spaced as pixdim says when it says anything usable.
    Affine a = identity_affine();
    bool spaced = true;
    for (size_t i = 0; i < 3; ++i) spaced = spaced && v.spacing[i] > 0 && std::isfinite(v.spacing[i]);
    for (size_t i = 0; i < 3; ++i) a[i][i] = spaced ? v.spacing[i] : opt.voxel;
    c.source.affine = a;
    canon.dims = v.dims;
    canon.data = v.data;
    canon.affine = a;
    c.warning = v.path + ": " + unusable + "; kept in its array order, as with --no-conform, " +
                (spaced ? "resampled to " + mm(opt.voxel) + " mm voxels along its array axes from its pixdim"
                        : "not resampled (its pixdim voxel size is not positive)");
  }

  if (is_voxel_grid(canon.affine, opt.voxel)) {
    c.grid = {canon.dims, canon.affine};
    c.volume.data = std::move(canon.data);
  } else {
    c.grid = output_grid({canon.dims, canon.affine}, opt.voxel);
    c.volume.data = resample(canon.data, {canon.dims, canon.affine}, c.grid, opt.interpolation);
    c.resampled = true;
  }
  c.volume.path = v.path;
  c.volume.dims = c.grid.dims;
  c.volume.spacing = {c.grid.affine[0][0], c.grid.affine[1][1], c.grid.affine[2][2]};
  c.volume.header = conformed_header(v.header, c.grid, code);
  return c;
}

std::vector<float> unconform(const std::vector<float>& conformed, const ConformedVolume& g, Interpolation interp) {
  return resample(conformed, g.grid, g.source, interp);
}

}  // namespace mriae::io
