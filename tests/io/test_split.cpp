// The train/validation split and the seeded shuffle under it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <vector>

#include "engine/random.h"
#include "io/permutation.h"
#include "io/split.h"

using namespace mriae::io;

namespace {

std::vector<int32_t> subjects_of(int32_t subjects, int32_t slices_each) {
  std::vector<int32_t> v;
  for (int32_t s = 0; s < subjects; ++s) v.insert(v.end(), size_t(slices_each), s);
  return v;
}

}  // namespace

TEST_CASE("the shuffle is a permutation, fixed by the seed") {
  mriae::Rng a(13), b(13), c(14);
  const auto pa = random_permutation(1000, a), pb = random_permutation(1000, b), pc = random_permutation(1000, c);
  CHECK(pa == pb);
  CHECK(pa != pc);
  auto sorted = pa;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) CHECK(sorted[size_t(i)] == i);

  // Rough uniformity: each of 4 values near 1/4 of 40000 draws.
  mriae::Rng r(1);
  int counts[4] = {0, 0, 0, 0};
  for (int i = 0; i < 40000; ++i) ++counts[uniform_below(r, 4)];
  for (int n : counts) CHECK(std::abs(n - 10000) < 600);
}

TEST_CASE("slice-wise split: 80/20 as train_test_split, disjoint, complete, deterministic") {
  const auto subj = subjects_of(30, 51);  // the tutorial's 1530 slices
  SplitOptions opt;
  const Split a = split_dataset(subj, 30, opt);
  CHECK(a.validation.size() == 306);  // ceil(0.2 * 1530)
  CHECK(a.train.size() == 1224);
  std::set<int64_t> all(a.train.begin(), a.train.end());
  all.insert(a.validation.begin(), a.validation.end());
  CHECK(all.size() == 1530);  // disjoint and complete
  CHECK(*all.begin() == 0);
  CHECK(*all.rbegin() == 1529);

  const Split again = split_dataset(subj, 30, opt);
  CHECK(again.train == a.train);
  CHECK(again.validation == a.validation);
  opt.seed = 14;
  const Split other = split_dataset(subj, 30, opt);
  CHECK(other.validation != a.validation);

  opt.validation_fraction = 0;
  CHECK(split_dataset(subj, 30, opt).validation.empty());
  opt.validation_fraction = 1;
  CHECK_THROWS_AS(split_dataset(subj, 30, opt), std::invalid_argument);
  opt.validation_fraction = 0.5;
  CHECK_THROWS_AS(split_dataset({0}, 1, opt), std::invalid_argument);  // one slice: nothing left to train on
}

TEST_CASE("subject-wise split: no subject on both sides") {
  const auto subj = subjects_of(30, 51);
  SplitOptions opt;
  opt.mode = SplitMode::Subjects;
  const Split s = split_dataset(subj, 30, opt);
  std::set<int32_t> train_subjects, valid_subjects;
  for (int64_t i : s.train) train_subjects.insert(subj[size_t(i)]);
  for (int64_t i : s.validation) valid_subjects.insert(subj[size_t(i)]);
  CHECK(valid_subjects.size() == 6);  // ceil(0.2 * 30)
  CHECK(train_subjects.size() == 24);
  for (int32_t v : valid_subjects) CHECK(train_subjects.count(v) == 0);
  CHECK(s.train.size() + s.validation.size() == subj.size());
  CHECK(s.validation.size() == 6 * 51);  // whole subjects

  const Split again = split_dataset(subj, 30, opt);
  CHECK(again.validation == s.validation);
  opt.seed = 99;
  CHECK(split_dataset(subj, 30, opt).validation != s.validation);

  CHECK_THROWS_AS(split_dataset(subjects_of(1, 10), 1, opt), std::invalid_argument);
  CHECK_THROWS_AS(split_dataset({0, 3}, 2, opt), std::invalid_argument);  // subject out of range
}
