// The train/validation split and the seeded shuffle under it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <vector>

#include "engine/random.h"
#include "io/permutation.h"
#include "io/split.h"
#include "io/subject_map.h"
#include "tests/io/io_test_util.h"

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

TEST_CASE("subject-wise split keeps volumes of one subject together") {
  // Four volumes of 10 slices; volumes 0 and 1 are one person (Colin27 and its brain-extracted copy).
  const auto volume_of = subjects_of(4, 10);
  SplitOptions opt;
  opt.mode = SplitMode::Subjects;
  opt.volume_subject = {0, 0, 1, 2};
  int held_out_colin = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    opt.seed = seed;
    const Split s = split_dataset(volume_of, 4, opt);
    std::set<int32_t> valid_volumes;
    for (int64_t i : s.validation) valid_volumes.insert(volume_of[size_t(i)]);
    // ceil(0.2 * 3 subjects) = 1 subject held out: one volume, or both of subject 0 and nothing else.
    const bool colin = valid_volumes.count(0) || valid_volumes.count(1);
    if (colin) {
      CHECK(valid_volumes == std::set<int32_t>{0, 1});
      CHECK(s.validation.size() == 20);
      ++held_out_colin;
    } else {
      CHECK(valid_volumes.size() == 1);
      CHECK(s.validation.size() == 10);
    }
    CHECK(s.train.size() + s.validation.size() == 40);
  }
  // Each of the 3 subjects is held out about a third of the time, so subject 0 is neither always nor never.
  CHECK(held_out_colin > 5);
  CHECK(held_out_colin < 25);

  // Without grouping the same volumes are 4 subjects, and ceil(0.2 * 4) = 1 volume is held out.
  opt.volume_subject.clear();
  opt.seed = 13;
  CHECK(split_dataset(volume_of, 4, opt).validation.size() == 10);

  // The slice-wise split ignores the grouping: the same slices as without it.
  SplitOptions slices;
  const Split plain = split_dataset(volume_of, 4, slices);
  slices.volume_subject = {0, 0, 1, 2};
  CHECK(split_dataset(volume_of, 4, slices).validation == plain.validation);

  opt.volume_subject = {0, 0, 1};  // three labels for four volumes
  CHECK_THROWS_WITH(split_dataset(volume_of, 4, opt), doctest::Contains("3 volumes"));
  opt.volume_subject = {0, 0, 2, 2};  // subject 1 has no volume
  CHECK_THROWS_WITH(split_dataset(volume_of, 4, opt), doctest::Contains("gap"));
  opt.volume_subject = {0, 0, 0, 0};  // one subject: nothing left to train on
  CHECK_THROWS_AS(split_dataset(volume_of, 4, opt), std::invalid_argument);
}

TEST_CASE("subject table: files matched by path relative to the table, errors name the table or volume") {
  mriae::io::testing::TempDir dir;
  std::filesystem::create_directories(dir.file("data"));
  const std::string table = dir.file("data/manifest.tsv");
  auto write = [&](const std::string& text) { std::ofstream(table) << text; };
  // Columns in another order than fetch-data's manifest, a comment and a blank line, an absolute path.
  write("# written by hand\nsubject\tsha256\tfile\n\ncolin27\t00\tch2.nii.gz\nS1\t11\tpycortex_S1.nii.gz\ncolin27\t22\t" +
        dir.file("data/ch2bet.nii.gz") + "\n");
  const std::vector<std::string> volumes = {dir.file("data/ch2bet.nii.gz"), dir.file("data/../data/pycortex_S1.nii.gz"),
                                            dir.file("data/ch2.nii.gz")};
  const auto labels = read_subject_labels(table, volumes);
  CHECK(labels == std::vector<std::string>{"colin27", "S1", "colin27"});
  CHECK(subject_numbers(labels) == std::vector<int32_t>{0, 1, 0});
  CHECK(subject_numbers({"b", "a", "b", "c"}) == std::vector<int32_t>{0, 1, 0, 2});

  CHECK_THROWS_WITH(read_subject_labels(table, {dir.file("data/other.nii.gz")}),
                    doctest::Contains("other.nii.gz: not listed in the subject table"));
  CHECK_THROWS_WITH(read_subject_labels(dir.file("absent.tsv"), volumes), doctest::Contains("absent.tsv"));
  write("file\tname\nch2.nii.gz\tcolin27\n");
  CHECK_THROWS_WITH(read_subject_labels(table, volumes), doctest::Contains("'subject' column"));
  write("file\tsubject\nch2.nii.gz\n");
  CHECK_THROWS_WITH(read_subject_labels(table, volumes), doctest::Contains("manifest.tsv:2: the row has 1 fields"));
  write("file\tsubject\nch2.nii.gz\tcolin27\nch2.nii.gz\tsomeone\n");
  CHECK_THROWS_WITH(read_subject_labels(table, volumes), doctest::Contains("two subjects"));
  write("# nothing\n");
  CHECK_THROWS_WITH(read_subject_labels(table, volumes), doctest::Contains("empty"));
}
