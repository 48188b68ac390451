#pragma once
// Random square crops of training slices (--crop): the model is fully convolutional, so it can train on
// windows of a slice and still reconstruct whole slices. A crop costs (crop / slice side)^2 of a slice's
// compute, so a budget of minutes buys that many times the updates, each on a different window.
//
// A window is a pure function of (seed, epoch, position in the epoch), like the shuffled order and the
// noise, so an interrupted run resumed mid-epoch crops exactly as the uninterrupted run would, and the
// ranks of a data-parallel run each crop their part of a batch as one process crops the whole batch.
#include <cstdint>
#include <vector>

#include "io/slice_source.h"

namespace mriae::io {

struct CropWindow {
  int64_t top = 0, left = 0;
};

// The size x size window of the slice at `position` (counted from the epoch's first slice) of `epoch`, in
// a run seeded `seed`, of a height x width slice: top uniform in [0, height - size], left in
// [0, width - size], drawn independently. Throws std::invalid_argument when size is not in [1, min(h, w)].
CropWindow crop_window(uint64_t seed, int64_t epoch, int64_t position, int64_t height, int64_t width,
                       int64_t size);

// Writes slice `index` of `source` to dst: the whole slice when size is 0, else its size x size `window`
// (row-major), read through `scratch`, which is resized to hold a whole slice.
void copy_slice_window(const SliceSource& source, int64_t index, int64_t size, CropWindow window,
                       std::vector<float>& scratch, float* dst);

// How many crops of `size` an epoch takes from each slice by default: as many as cover its pixels, at
// least one (so an epoch costs about what a pass over the whole slices costs).
int64_t default_crops_per_slice(int64_t height, int64_t width, int64_t size);

}  // namespace mriae::io
