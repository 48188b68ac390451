#pragma once
// Conforming a volume: reoriented to the closest canonical (RAS) array order and resampled to isotropic
// voxels, so that a slice axis means the same anatomical direction, and a voxel the same size, in every scan.
// It is nibabel's
//     resample_to_output(as_closest_canonical(img), voxel_sizes=voxel, order=1 or 0)
// on the image's float data (see io/orientation.h and io/resample.h), with two differences: when the
// canonical grid already has the wanted voxel size (its 3x3 part within 1e-6 mm of diag(voxel)) the array is
// kept as it is, not resampled; points within 1e-6 voxel of the input's edge are sampled on it (see
// resample()); and a qform is decoded by niftilib (nifti_quatern_to_dmat44), which takes a quaternion
// remainder 1 - (b^2 + c^2 + d^2) below 1e-7 as 0, where nibabel's quat2mat takes its square root and so
// tilts the axes of a 180-degree turn stored in float32 by up to about 5e-4 (and may then make its grid one
// voxel larger). The source grid is kept, so a result computed on the conformed volume can be mapped back onto
// the input's own voxels (unconform).
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "io/nifti_volume.h"
#include "io/orientation.h"
#include "io/resample.h"

namespace mriae::io {

struct ConformOptions {
  double voxel = 1.0;  // mm
  Interpolation interpolation = Interpolation::Linear;
};

struct ConformedVolume {
  // The conformed volume: dims, spacing and data on the new grid; header with that grid as its sform and
  // qform (codes those of the form it came from), dims and pixdim, the dim_info and slice timing cleared.
  Volume volume;
  Grid grid;    // the conformed grid
  Grid source;  // the input's grid: its dims and the affine that placed it
  bool oriented = false;  // false: no usable orientation, kept in its array order
  bool resampled = false;
  std::string orientation_codes;  // the input's axis codes, e.g. "LAS"; empty when not oriented
  std::string warning;            // names the file; empty when all went well
};

// Conforms a volume read by read_volume. A volume with no usable orientation (qform_code and sform_code 0,
// or a degenerate affine) keeps its array order and is only resampled to isotropic voxels along its array
// axes from its pixdim voxel size (not at all when pixdim is not positive), with a warning naming the file.
// Throws std::invalid_argument for a voxel size that is not positive.
ConformedVolume conform_volume(const Volume& volume, const ConformOptions& options);

// Maps values on the conformed grid (x fastest) back onto the input's own voxels, with the given
// interpolation: the inverse resampling, for writing a result in the input's geometry.
std::vector<float> unconform(const std::vector<float>& conformed, const ConformedVolume& geometry,
                             Interpolation interpolation);

}  // namespace mriae::io
