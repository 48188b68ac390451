#pragma once
// From NIfTI volumes to the training set: 2-D slices along one axis, normalised to [0, 1] (io/normalization.h), padded
// to a multiple of 4 and split into training and validation slices, as the 2018 Keras tutorial prepares
// its data (central 51 coronal slices of each 173 x 207 x 173 volume, padded 173 -> 176 at the top-left).
#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/conform.h"
#include "io/dataset_error.h"
#include "io/nifti_volume.h"
#include "io/normalization.h"
#include "io/slice_stack.h"
#include "io/split.h"

namespace mriae::io {

// Slices [start, stop) along the slice axis.
struct SliceRange {
  int64_t start = 0, stop = 0;
  int64_t size() const { return stop - start; }
};

enum class PadPlacement {
  TopLeft,  // the tutorial's temp[:, 3:, 3:] = images: zeros before the data
  Centred,  // half before, the odd one after
};

struct DatasetOptions {
  // 0, 1 or 2: the voxel axis held fixed in each slice. 1 (the tutorial's a[:, j, :]) by default.
  int axis = 1;
  // Every volume's [start, stop); by default its central `central_count` slices.
  std::optional<SliceRange> range;
  int64_t central_count = 51;
  // For 4-D inputs: the frame to take (see ReadOptions).
  std::optional<int64_t> frame;
  // Each volume conformed (io/conform.h) right after reading, before slicing; unset: the array as stored.
  std::optional<ConformOptions> conform;
  NormalizeMethod normalize = NormalizeMethod::Training;
  PercentileBounds percentiles;  // of NormalizeMethod::Percentile
  // Global methods only: when set, used as is instead of computed (inference with the training set's scaling).
  std::optional<Normalisation> normalisation;
  PadPlacement pad = PadPlacement::TopLeft;
  int64_t pad_multiple = 4;
  SplitOptions split;
};

// One input volume's part in the data set.
struct SubjectInfo {
  std::string path;
  NiftiHeader header;
  std::array<int64_t, 3> dims{};  // of the volume (conformed when it was)
  SliceRange range;               // along the slice axis
  int64_t first_slice = 0;        // its first slice's index in the stack; the rest follow in order
  int64_t height = 0, width = 0;  // in-plane size before padding
  int64_t pad_top = 0, pad_left = 0;  // the data's offset inside the padded slice
  float min = 0, max = 0;         // intensity range of the whole volume, before normalisation
  std::string conform_warning;    // why the volume could not be conformed as asked; empty when it was
  Normalisation scaling;          // what its slices were normalised with (the global one, or its own)
  RangeCheck range_check;         // where its selected slices' normalised voxels fall (padding not counted)
};

struct SliceRef {
  int32_t subject = 0;
  int64_t index = 0;  // along the slice axis of that subject's volume
};

struct SliceDataset {
  int axis = 1;
  SliceStack slices;                 // normalised and padded, one common size for all subjects
  std::vector<SliceRef> refs;        // refs[n]: where slice n came from
  std::vector<SubjectInfo> subjects;
  NormalizeMethod method = NormalizeMethod::Training;
  Normalisation normalisation;       // the global methods' scaling; per-volume ones: see SubjectInfo::scaling
  Split split;
  std::vector<std::string> warnings;  // for the user: the subjects' conform warnings
};

// Reads every volume and builds the data set; slices are ordered by subject (in the order given), then by
// index along the axis. Throws (naming the file where there is one) on unreadable input, a slice range
// outside a volume, a volume that is constant or has NaN/infinite values, or a constant training set.
// Normalised values outside [0, 1] (a global scaling meeting a volume of another range) are kept as they
// are and counted in SubjectInfo::range_check; the caller decides whether to warn or refuse.
SliceDataset build_slice_dataset(const std::vector<std::string>& paths, const DatasetOptions& options);

// The building blocks, exposed for tests and for reconstruction.

// The central `count` of n slices: start = (n - count) / 2 rounded down (207 -> 78:129, as the tutorial).
SliceRange central_range(int64_t n, int64_t count);
// "start:stop" (Python slice notation, both given, 0-based, stop exclusive).
SliceRange parse_slice_range(const std::string& text);
// n rounded up to a multiple of `multiple`.
int64_t padded_size(int64_t n, int64_t multiple);
// Zeros placed before the data along one axis when n is padded to `padded`.
int64_t pad_before(int64_t n, int64_t padded, PadPlacement placement);

// The 2-D shape of a slice along `axis` of a volume of size dims: {rows, cols}.
// Rows run along the first remaining voxel axis and columns along the second, so slice j along axis 1 is
// the array numpy gives for vol[:, j, :] on nibabel's data (shape (nx, nz)): pixel (r, c) = voxel (r, j, c).
// Likewise axis 0: (r, c) = voxel (i, r, c); axis 2: (r, c) = voxel (r, c, k).
std::array<int64_t, 2> slice_shape(const std::array<int64_t, 3>& dims, int axis);
// Writes slice `index` along `axis` row-major into dst (rows x cols as slice_shape gives).
void extract_slice(const Volume& volume, int axis, int64_t index, float* dst);

}  // namespace mriae::io
