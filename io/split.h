#pragma once
// The train/validation split. Slice-wise is the tutorial's train_test_split over all slices; subject-wise
// holds out whole volumes, so no subject's neighbouring (nearly identical) slices sit on both sides.
#include <cstdint>
#include <vector>

namespace mriae::io {

enum class SplitMode { Slices, Subjects };

struct SplitOptions {
  SplitMode mode = SplitMode::Slices;
  // scikit-learn's rule: ceil(fraction * n) held out (slices, or subjects in subject mode). 0 holds out
  // nothing.
  double validation_fraction = 0.2;
  uint64_t seed = 13;
  // The subject (0 .. k-1) of each volume, for volumes that are scans of one person (e.g. Colin27 and its
  // brain-extracted copy): a subject-wise split keeps them on one side. Empty: each volume is a subject.
  std::vector<int32_t> volume_subject;
};

struct Split {
  std::vector<int64_t> train;       // slice indices
  std::vector<int64_t> validation;  // slice indices
};

// volume_of[n] is the volume (0 .. num_volumes-1) slice n came from; options.volume_subject groups volumes
// into subjects. Deterministic for a given seed. Throws std::invalid_argument when either side would be
// empty (too few slices or subjects) or volume_subject does not fit num_volumes.
Split split_dataset(const std::vector<int32_t>& volume_of, int32_t num_volumes, const SplitOptions& options);

}  // namespace mriae::io
