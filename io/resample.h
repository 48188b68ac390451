#pragma once
// Resampling a volume from one voxel grid onto another through world space, as
// nibabel.processing.resample_from_to does with scipy.ndimage.affine_transform (mode 'constant', cval 0), and
// the isotropic world-aligned output grid of nibabel.processing.resample_to_output.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "io/orientation.h"

namespace mriae::io {

enum class Interpolation {
  Linear,   // trilinear: scipy's order=1
  Nearest,  // the nearest voxel: scipy's order=0 (index floor(x + 0.5))
};
// "linear" or "nearest"; throws std::invalid_argument for anything else.
Interpolation parse_interpolation(const std::string& name);
std::string interpolation_name(Interpolation interpolation);

// A voxel grid in world space: its size and voxel-to-world affine.
struct Grid {
  std::array<int64_t, 3> dims{};
  Affine affine{};
};

// nibabel's vox2out_vox for voxel size `voxel` (mm, the same along every axis): the grid aligned with the
// world axes (affine diag(voxel, voxel, voxel) with the origin at the lowest corner) that holds the centres of
// all eight corner voxels of `in`: dims = ceil((max - min) / voxel) + 1 along each world axis.
Grid output_grid(const Grid& in, double voxel);

// Samples `data` (x fastest, on grid `from`) at the centre of every voxel of grid `to`. A point outside the
// input's voxel centres, [0, n - 1] along any axis, is 0, as scipy's mode 'constant' makes it; one within
// 1e-6 voxel of that range is moved onto its edge, where scipy's result would hang on the last bit of the
// coordinate's rounding.
std::vector<float> resample(const std::vector<float>& data, const Grid& from, const Grid& to,
                            Interpolation interpolation);

}  // namespace mriae::io
