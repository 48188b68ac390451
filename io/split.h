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
};

struct Split {
  std::vector<int64_t> train;       // slice indices
  std::vector<int64_t> validation;  // slice indices
};

// subject_of[n] is the subject (0 .. num_subjects-1) slice n came from. Deterministic for a given seed.
// Throws std::invalid_argument when either side would be empty (too few slices or subjects).
Split split_dataset(const std::vector<int32_t>& subject_of, int32_t num_subjects, const SplitOptions& options);

}  // namespace mriae::io
