#include "io/split.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/random.h"
#include "io/permutation.h"

namespace mriae::io {

namespace {

// ceil(fraction * n) with a margin so that 0.2 * 1530 gives 306 however the product rounds.
int64_t held_out_count(double fraction, int64_t n) {
  return int64_t(std::ceil(fraction * double(n) - 1e-9));
}

}  // namespace

Split split_dataset(const std::vector<int32_t>& volume_of, int32_t num_volumes, const SplitOptions& options) {
  const double f = options.validation_fraction;
  if (!(f >= 0.0 && f < 1.0))
    throw std::invalid_argument("validation fraction " + std::to_string(f) + " is not in [0, 1)");
  const int64_t n = int64_t(volume_of.size());
  for (int32_t v : volume_of)
    if (v < 0 || v >= num_volumes) throw std::invalid_argument("slice volume " + std::to_string(v) + " out of range");
  const std::vector<int32_t>& group = options.volume_subject;
  if (!group.empty() && int64_t(group.size()) != num_volumes)
    throw std::invalid_argument("subjects are given for " + std::to_string(group.size()) + " volumes, but there are " +
                                std::to_string(num_volumes));
  int32_t num_subjects = num_volumes;
  if (!group.empty()) {
    num_subjects = 0;
    for (int32_t s : group) {
      if (s < 0 || s >= num_volumes) throw std::invalid_argument("volume subject " + std::to_string(s) + " out of range");
      num_subjects = std::max(num_subjects, s + 1);
    }
    std::vector<bool> used(size_t(num_subjects), false);
    for (int32_t s : group) used[size_t(s)] = true;
    // A gap would be a subject with no volume, which could be "held out" without holding out anything.
    if (std::find(used.begin(), used.end(), false) != used.end())
      throw std::invalid_argument("volume subjects must number 0 .. k-1 without a gap");
  }
  std::vector<int32_t> subject_of(volume_of);
  if (!group.empty())
    for (int32_t& s : subject_of) s = group[size_t(s)];

  Rng rng(options.seed);
  Split split;
  if (options.mode == SplitMode::Slices) {
    const int64_t n_valid = held_out_count(f, n);
    if (n - n_valid < 1)
      throw std::invalid_argument("cannot split " + std::to_string(n) + " slices: no training slice would remain");
    // As train_test_split: the first n_valid of a random permutation are held out.
    const std::vector<int64_t> perm = random_permutation(n, rng);
    split.validation.assign(perm.begin(), perm.begin() + n_valid);
    split.train.assign(perm.begin() + n_valid, perm.end());
    return split;
  }

  const int64_t n_valid = held_out_count(f, num_subjects);
  if (num_subjects - n_valid < 1)
    throw std::invalid_argument("cannot split " + std::to_string(num_subjects) +
                                " subjects by subject: no training subject would remain");
  const std::vector<int64_t> perm = random_permutation(num_subjects, rng);
  std::vector<bool> held_out(size_t(num_subjects), false);
  for (int64_t i = 0; i < n_valid; ++i) held_out[size_t(perm[size_t(i)])] = true;
  for (int64_t i = 0; i < n; ++i) (held_out[size_t(subject_of[size_t(i)])] ? split.validation : split.train).push_back(i);
  if (split.train.empty())
    throw std::invalid_argument("subject-wise split left no training slices");
  return split;
}

}  // namespace mriae::io
