#pragma once
// Reading NIfTI-1, NIfTI-2 and ANALYZE 7.5 images (.nii, .nii.gz, .hdr/.img) into float32 volumes.
//
// niftilib decodes the header (every version, byte order and file kind); this layer reads the voxel data
// itself with zlib and adds what niftilib leaves to the caller: conversion of every integer and float
// datatype to float32, the scl_slope/scl_inter scaling (niftilib stores it but never applies it), and
// exceptions naming the file for what niftilib only reports on stderr (short reads, which it zero-fills) or
// lets through (a gzip stream whose CRC does not match). NaN and infinite voxels are kept as they are, as
// nibabel keeps them (nifti_image_load would turn them into 0). A function here either returns a complete
// volume or throws.
#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mriae::io {

// Every failure to read an image: the message starts with the file's path.
class NiftiError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The header as niftilib decodes it, kept whole so that an output volume (a reconstruction) can be written
// with the input's geometry. Plain data, so that users of this header need no niftilib include.
struct NiftiHeader {
  int version = 1;             // 0 = ANALYZE 7.5, 1 = NIfTI-1, 2 = NIfTI-2
  bool two_files = false;      // .hdr/.img pair rather than one .nii
  bool gzipped = false;
  bool big_endian = false;     // byte order on disk (the data in memory is always native)
  std::array<int64_t, 8> dim{};        // dim[0] = number of dimensions, dim[1..] = sizes
  std::array<double, 8> pixdim{};      // pixdim[1..] = voxel spacing; pixdim[0] = qfac
  int datatype = 0;            // NIFTI_TYPE_* code of the stored data
  int bytes_per_voxel = 0;
  double scl_slope = 0, scl_inter = 0;
  double cal_min = 0, cal_max = 0;
  int qform_code = 0, sform_code = 0;
  double quatern_b = 0, quatern_c = 0, quatern_d = 0;
  double qoffset_x = 0, qoffset_y = 0, qoffset_z = 0, qfac = 1;
  std::array<std::array<double, 4>, 4> qto_xyz{};  // voxel (i,j,k,1) -> world, from the quaternion
  std::array<std::array<double, 4>, 4> sto_xyz{};  // voxel (i,j,k,1) -> world, the general affine
  int xyz_units = 0, time_units = 0;
  int freq_dim = 0, phase_dim = 0, slice_dim = 0;
  int slice_code = 0;
  int64_t slice_start = 0, slice_end = 0;
  double slice_duration = 0, toffset = 0;
  int intent_code = 0;
  double intent_p1 = 0, intent_p2 = 0, intent_p3 = 0;
  std::string intent_name, descrip, aux_file;
  int num_extensions = 0;      // counted only: extensions are not carried over to outputs

  // True when scl_slope is finite and non-zero, i.e. the stored values are to be scaled (NIfTI rule).
  bool has_scaling() const;
};

struct ReadOptions {
  // For 4-D input: the frame (0-based) to read. A 4-D image with one frame reads as 3-D without it;
  // with several frames and no frame chosen, read_volume throws.
  std::optional<int64_t> frame;
};

// A 3-D float32 volume, x fastest in memory (the on-disk NIfTI order, which nibabel exposes as a
// Fortran-ordered array): voxel (i, j, k) is at data[i + nx * (j + ny * k)].
struct Volume {
  std::string path;
  NiftiHeader header;
  std::array<int64_t, 3> dims{};        // nx, ny, nz
  std::array<double, 3> spacing{};      // pixdim[1..3]
  std::vector<float> data;              // scaled values

  float at(int64_t i, int64_t j, int64_t k) const { return data[size_t(i + dims[0] * (j + dims[1] * k))]; }
};

// Reads one 3-D volume (or one frame of a 4-D image), scaled and converted to float32.
// Throws NiftiError naming the file when it is missing, not NIfTI, truncated or corrupt, has a zero-sized or
// unsupported shape (more than 4 dimensions in use), an unsupported datatype (complex, RGB, bit) or a 4-D
// series with no frame chosen.
Volume read_volume(const std::string& path, const ReadOptions& options = {});

// What `mriae info` shows: the header and the intensity range over every voxel (all frames).
struct ImageSummary {
  std::string path;
  NiftiHeader header;
  int64_t voxels = 0;
  int64_t non_finite = 0;   // NaN or infinite voxels (floating-point data), left out of min and max
  double min = 0, max = 0;  // after scaling; both 0 when no voxel is finite
};
ImageSummary summarize_image(const std::string& path);

// Where the voxel axes i, j, k point in world space, from a voxel-to-world matrix (niftilib's
// nifti_dmat44_to_orientation). codes spells it as nibabel's aff2axcodes does: the direction each axis
// points toward, e.g. "RAS"; directions are niftilib's words, e.g. "Left-to-Right".
struct AxisOrientation {
  std::string codes;
  std::array<std::string, 3> directions;
};
AxisOrientation axis_orientation(const std::array<std::array<double, 4>, 4>& voxel_to_world);

// Names for printing.
std::string datatype_name(int datatype);  // "UINT8", "FLOAT32", ...
bool datatype_supported(int datatype);    // read_volume converts it to float32
std::string xform_name(int code);         // "Scanner_Anat", "MNI_152", ...
std::string units_name(int code);         // "mm", "s", ...

}  // namespace mriae::io
