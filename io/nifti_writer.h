#pragma once
// Writing float32 volumes as NIfTI-1 (.nii, .nii.gz, or a .hdr/.img pair), with the geometry of an image
// that was read, so an output (a reconstruction) lies exactly over its input in any viewer.
//
// niftilib does the encoding; this layer adds what it leaves out: writing to a temporary name and renaming
// (a failed or interrupted write never leaves a partial file at the target, nor touches one already there),
// and checking the result, since nifti_image_write returns nothing and reports failures only on stderr.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "io/nifti_volume.h"

namespace mriae::io {

// Throws NiftiError naming the file when `path` cannot be written as NIfTI: a name that does not end in
// .nii, .nii.gz, .hdr(.gz) or .img(.gz) (niftilib picks the file kind from it), or a folder that does not
// exist. Lets a long computation fail before it starts rather than when its result is saved.
void check_output_path(const std::string& path);

// Writes a 3-D float32 volume (x fastest, data.size() == nx * ny * nz) to `path`, values as they are
// (scl_slope 0: no scaling). From `like` it keeps the voxel spacing, the qform and sform (codes and
// transforms), the space and time units, slice timing fields, descrip and aux_file. Not kept: the intent
// (the values are no longer the input's statistic or labels), cal_min/cal_max (a display range for other
// values) and extensions. The output is always NIfTI-1: niftilib 3.0.1 cannot write NIfTI-2, so a NIfTI-2
// input's geometry is stored in NIfTI-1's float32 fields (exact for any NIfTI-1 input). The bytes are
// native-endian whatever the input's byte order. A .hdr/.img pair is two renames, image first: only
// between them, or if the second failed, would a reader see the new image beside an old header.
// Throws NiftiError naming the file on any failure; the target is then as it was before the call.
void write_volume(const std::string& path, const NiftiHeader& like, const std::array<int64_t, 3>& dims,
                  const std::vector<float>& data);

}  // namespace mriae::io
