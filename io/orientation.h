#pragma once
// Where a volume's voxel axes point in the world, and its reorientation to the closest canonical (RAS+)
// array order, computed as nibabel does it (nibabel.orientations.io_orientation, apply_orientation,
// inv_ornt_aff and funcs.as_closest_canonical), so that a conformed array equals nibabel's voxel for voxel.
#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "io/nifti_volume.h"

namespace mriae::io {

// A voxel-to-world map (i, j, k, 1) -> (x, y, z, 1), in mm; world axes point to the Right, Anterior and
// Superior (NIfTI's RAS+).
using Affine = std::array<std::array<double, 4>, 4>;

Affine identity_affine();
Affine multiply(const Affine& a, const Affine& b);
// The inverse of an affine map (last row 0 0 0 1). Throws std::invalid_argument when it is singular.
Affine inverse(const Affine& a);
// a * (i, j, k, 1), the first three coordinates.
std::array<double, 3> apply(const Affine& a, const std::array<double, 3>& p);

// The affine nibabel takes as img.affine for a NIfTI image: the sform when sform_code is not 0, else the
// qform when qform_code is not 0. With both codes 0 nibabel falls back to a guess from pixdim alone (x flipped,
// centred), which says nothing about the subject's orientation: nullopt here.
struct CodedAffine {
  Affine affine{};
  bool from_sform = false;
  int code = 0;  // the NIFTI_XFORM_* code of the form used
};
std::optional<CodedAffine> best_affine(const NiftiHeader& header);

// nibabel's orientation array: input voxel axis a runs along world axis out_axis[a] (0 = x, 1 = y, 2 = z),
// in the positive direction when flip[a] is 1, the negative one when it is -1.
struct AxisOrientationMap {
  std::array<int, 3> out_axis{0, 1, 2};
  std::array<int, 3> flip{1, 1, 1};
  bool is_identity() const;
};

// nibabel's io_orientation: the world axis closest to each voxel axis, from the closest shear-free matrix to
// the affine's rotation-zoom part (its orthogonal polar factor, which nibabel takes from an SVD), axes chosen
// in input order, each world axis used once. Throws std::invalid_argument when the 3x3 part has a zero
// column, is singular or is not finite (nibabel leaves such an axis undetermined and cannot reorient).
AxisOrientationMap io_orientation(const Affine& affine);

// nibabel's aff2axcodes: the world direction each voxel axis points toward, e.g. "RAS" or "LPI".
std::string axis_codes(const AxisOrientationMap& orientation);
std::string axis_codes(const Affine& affine);

// nibabel's inv_ornt_aff: the affine from the reoriented array's voxels to the input array's voxels, for an
// input of size dims; the reoriented volume's affine is affine * inverse_orientation_affine(...).
Affine inverse_orientation_affine(const AxisOrientationMap& orientation, const std::array<int64_t, 3>& dims);

// The voxels of an x-fastest volume of size dims flipped and transposed as nibabel's apply_orientation does:
// output axis out_axis[a] is input axis a, reversed when flip[a] is -1. Returns the new dims in *out_dims.
std::vector<float> apply_orientation(const std::vector<float>& data, const std::array<int64_t, 3>& dims,
                                     const AxisOrientationMap& orientation, std::array<int64_t, 3>* out_dims);

// A volume's array and affine as nibabel's as_closest_canonical gives them: reordered and flipped so that
// its axes run as close as they can to +x, +y, +z (RAS), with the affine to match. The array is only
// permuted, never interpolated.
struct CanonicalVolume {
  std::array<int64_t, 3> dims{};
  std::vector<float> data;
  Affine affine{};
  AxisOrientationMap orientation;  // of the input
};
CanonicalVolume as_closest_canonical(const std::vector<float>& data, const std::array<int64_t, 3>& dims,
                                     const Affine& affine);

}  // namespace mriae::io
