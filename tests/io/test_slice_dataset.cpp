// Slicing, normalisation, padding and data-set errors, on small volumes whose every value is known:
// v(i, j, k) = 1000 k + 100 j + i + 1.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "io/slice_dataset.h"
#include "tests/io/io_test_util.h"

using namespace mriae::io;
using mriae::io::testing::ramp_volume;
using mriae::io::testing::TempDir;
using mriae::io::testing::write_image;

namespace {

float ramp(int64_t i, int64_t j, int64_t k) { return float(1000 * k + 100 * j + i + 1); }

std::string write_ramp(const TempDir& dir, const std::string& name, int64_t nx, int64_t ny, int64_t nz) {
  const std::vector<float> v = ramp_volume(nx, ny, nz);
  write_image(dir.file(name), {nx, ny, nz}, NIFTI_TYPE_FLOAT32, v.data());
  return dir.file(name);
}

float pixel(const SliceDataset& ds, int64_t n, int64_t r, int64_t c) {
  return ds.slices.slice(n)[r * ds.slices.width() + c];
}

}  // namespace

TEST_CASE("slice geometry: central range, padding, range syntax") {
  CHECK(central_range(207, 51).start == 78);  // the tutorial's a[:, 78:129, :]
  CHECK(central_range(207, 51).stop == 129);
  CHECK(central_range(217, 51).start == 83);
  CHECK(central_range(52, 51).start == 0);
  CHECK(central_range(51, 51).stop == 51);
  CHECK_THROWS_AS(central_range(50, 51), std::invalid_argument);

  CHECK(padded_size(173, 4) == 176);
  CHECK(padded_size(176, 4) == 176);
  CHECK(padded_size(181, 4) == 184);
  CHECK(pad_before(173, 176, PadPlacement::TopLeft) == 3);  // temp[:, 3:, 3:] = images
  CHECK(pad_before(173, 176, PadPlacement::Centred) == 1);
  CHECK(pad_before(170, 176, PadPlacement::Centred) == 3);

  CHECK(parse_slice_range("78:129").start == 78);
  CHECK(parse_slice_range("78:129").stop == 129);
  for (const char* bad : {"78", "78:", ":129", "a:b", "9:3", "-1:4", "1:2:3", "1 :4"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_slice_range(bad), std::invalid_argument);
  }
}

TEST_CASE("slices follow numpy's vol[:, j, :] on every axis") {
  TempDir dir;
  const Volume v = read_volume(write_ramp(dir, "r.nii", 4, 5, 6));
  CHECK(slice_shape(v.dims, 0) == std::array<int64_t, 2>{5, 6});
  CHECK(slice_shape(v.dims, 1) == std::array<int64_t, 2>{4, 6});
  CHECK(slice_shape(v.dims, 2) == std::array<int64_t, 2>{4, 5});
  std::vector<float> s(30);
  extract_slice(v, 0, 2, s.data());  // vol[2, :, :]: rows j, cols k
  CHECK(s[size_t(3 * 6 + 4)] == ramp(2, 3, 4));
  extract_slice(v, 1, 2, s.data());  // vol[:, 2, :]: rows i, cols k
  CHECK(s[size_t(3 * 6 + 5)] == ramp(3, 2, 5));
  extract_slice(v, 2, 2, s.data());  // vol[:, :, 2]: rows i, cols j
  CHECK(s[size_t(1 * 5 + 4)] == ramp(1, 4, 2));
  CHECK_THROWS_AS(extract_slice(v, 1, 5, s.data()), std::out_of_range);
  CHECK_THROWS_AS(extract_slice(v, 3, 0, s.data()), std::invalid_argument);
}

TEST_CASE("normalised to [0, 1] and zero-padded at the top-left, as the tutorial") {
  TempDir dir;
  const std::string a = write_ramp(dir, "a.nii", 5, 6, 7);
  DatasetOptions opt;
  opt.range = SliceRange{1, 4};
  opt.normalize = NormalizeMethod::All;
  const SliceDataset ds = build_slice_dataset({a}, opt);

  REQUIRE(ds.slices.count() == 3);
  CHECK(ds.slices.height() == 8);  // nx 5 -> 8
  CHECK(ds.slices.width() == 8);   // nz 7 -> 8
  // Over the selected slices j = 1..3 only.
  CHECK(ds.normalisation.min == ramp(0, 1, 0));
  CHECK(ds.normalisation.max == ramp(4, 3, 6));
  const SubjectInfo& s = ds.subjects[0];
  CHECK(s.pad_top == 3);
  CHECK(s.pad_left == 1);
  CHECK(s.min == ramp(0, 0, 0));  // the whole volume's range, kept for reference
  CHECK(s.max == ramp(4, 5, 6));
  for (int64_t n = 0; n < 3; ++n) {
    CHECK(ds.refs[size_t(n)].index == n + 1);
    for (int64_t r = 0; r < 8; ++r)
      for (int64_t c = 0; c < 8; ++c) {
        const bool data = r >= 3 && c >= 1;
        const float expect =
            data ? (ramp(r - 3, n + 1, c - 1) - ramp(0, 1, 0)) / (ramp(4, 3, 6) - ramp(0, 1, 0)) : 0.0f;
        CHECK(pixel(ds, n, r, c) == doctest::Approx(expect).epsilon(1e-6));
      }
  }
  const auto [lo, hi] = std::minmax_element(ds.slices.slice(0), ds.slices.slice(0) + 3 * 64);
  CHECK(*lo == 0.0f);
  CHECK(*hi == 1.0f);
  CHECK(ds.normalisation.invert(ds.normalisation.apply(1234.0f)) == doctest::Approx(1234.0f));
}

TEST_CASE("centred padding, and volumes of different sizes padded to one size") {
  TempDir dir;
  const std::string a = write_ramp(dir, "a.nii", 5, 6, 7);  // in-plane 5 x 7
  const std::string b = write_ramp(dir, "b.nii", 9, 4, 3);  // in-plane 9 x 3
  DatasetOptions opt;
  opt.central_count = 2;
  opt.pad = PadPlacement::Centred;
  opt.normalize = NormalizeMethod::All;
  const SliceDataset ds = build_slice_dataset({a, b}, opt);
  CHECK(ds.slices.count() == 4);
  CHECK(ds.slices.height() == 12);  // max(5, 9) -> 12
  CHECK(ds.slices.width() == 8);    // max(7, 3) -> 8
  REQUIRE(ds.subjects.size() == 2);
  CHECK(ds.subjects[0].range.start == 2);  // central 2 of 6
  CHECK(ds.subjects[1].range.start == 1);  // central 2 of 4
  CHECK(ds.subjects[0].pad_top == 3);
  CHECK(ds.subjects[0].pad_left == 0);
  CHECK(ds.subjects[1].pad_top == 1);
  CHECK(ds.subjects[1].pad_left == 2);
  CHECK(ds.subjects[1].first_slice == 2);
  CHECK(ds.refs[2].subject == 1);
  CHECK(ds.refs[2].index == 1);
  const Normalisation& nm = ds.normalisation;
  CHECK(nm.min == ramp(0, 1, 0));  // from b's j = 1
  CHECK(nm.max == ramp(4, 3, 6));  // from a's j = 3
  // b's slice j = 2 (stack index 3), voxel (i = 8, k = 2) at row 1 + 8, col 2 + 2.
  CHECK(pixel(ds, 3, 9, 4) == doctest::Approx(nm.apply(ramp(8, 2, 2))));
  CHECK(pixel(ds, 3, 0, 4) == 0.0f);
  CHECK(pixel(ds, 3, 10, 4) == 0.0f);
  // a's slice j = 3 (stack index 1), voxel (i = 0, k = 6) at row 3, col 6.
  CHECK(pixel(ds, 1, 3, 6) == doctest::Approx(nm.apply(ramp(0, 3, 6))));
  CHECK(pixel(ds, 1, 8, 6) == 0.0f);
}

TEST_CASE("by default min and max come from the training slices only") {
  TempDir dir;
  std::vector<std::string> paths;
  for (int s = 0; s < 5; ++s) {
    // Subject s's values are offset by 10000 s, so the held-out subject's range is visible.
    std::vector<float> v = ramp_volume(4, 6, 4);
    for (float& x : v) x += float(10000 * s);
    paths.push_back(dir.file("s" + std::to_string(s) + ".nii"));
    write_image(paths.back(), {4, 6, 4}, NIFTI_TYPE_FLOAT32, v.data());
  }
  DatasetOptions opt;
  opt.central_count = 4;
  opt.split.mode = SplitMode::Subjects;
  const SliceDataset ds = build_slice_dataset(paths, opt);
  REQUIRE(ds.split.validation.size() == 4);  // ceil(0.2 * 5) = 1 subject of 4 slices
  const int32_t held = ds.refs[size_t(ds.split.validation[0])].subject;
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (int32_t s = 0; s < 5; ++s) {
    if (s == held) continue;
    lo = std::min(lo, ramp(0, 1, 0) + float(10000 * s));  // central 4 of 6: j = 1..4
    hi = std::max(hi, ramp(3, 4, 3) + float(10000 * s));
  }
  CHECK(ds.normalisation.min == lo);
  CHECK(ds.normalisation.max == hi);

  DatasetOptions all = opt;
  all.normalize = NormalizeMethod::All;
  const SliceDataset da = build_slice_dataset(paths, all);
  CHECK(da.normalisation.min == ramp(0, 1, 0));
  CHECK(da.normalisation.max == ramp(3, 4, 3) + 40000.0f);

  DatasetOptions fixed = opt;
  fixed.normalisation = Normalisation{-100.0f, 900.0f};
  const SliceDataset df = build_slice_dataset({paths[0]}, [&] {
    DatasetOptions o = fixed;
    o.split.validation_fraction = 0;
    return o;
  }());
  CHECK(df.normalisation.min == -100.0f);
  CHECK(df.split.validation.empty());
  CHECK(pixel(df, 0, 0, 0) == doctest::Approx((ramp(0, 1, 0) + 100.0f) / 1000.0f));
}

TEST_CASE("data set errors name the file and the problem") {
  TempDir dir;
  const std::string good = write_ramp(dir, "good.nii", 5, 6, 7);
  DatasetOptions opt;
  opt.central_count = 3;

  SUBCASE("slice range outside the volume") {
    DatasetOptions o = opt;
    o.range = SliceRange{4, 7};
    CHECK_THROWS_WITH_AS(build_slice_dataset({good}, o), doctest::Contains((good + ": slice range 4:7").c_str()),
                         DatasetError);
    o.central_count = 7;
    o.range.reset();
    CHECK_THROWS_WITH_AS(build_slice_dataset({good}, o), doctest::Contains("central 7"), DatasetError);
    o = opt;
    o.axis = 3;
    CHECK_THROWS_AS(build_slice_dataset({good}, o), std::invalid_argument);
  }
  SUBCASE("constant volume") {
    const std::vector<float> flat(5 * 6 * 7, 42.0f);
    write_image(dir.file("flat.nii"), {5, 6, 7}, NIFTI_TYPE_FLOAT32, flat.data());
    CHECK_THROWS_WITH_AS(build_slice_dataset({good, dir.file("flat.nii")}, opt),
                         doctest::Contains((dir.file("flat.nii") + ": the volume is constant").c_str()),
                         DatasetError);
  }
  SUBCASE("NaN voxels") {
    std::vector<float> v = ramp_volume(5, 6, 7);
    v[17] = NAN;
    write_image(dir.file("nan.nii"), {5, 6, 7}, NIFTI_TYPE_FLOAT32, v.data());
    CHECK_THROWS_WITH_AS(build_slice_dataset({dir.file("nan.nii")}, opt),
                         doctest::Contains((dir.file("nan.nii") + ": 1 voxels are NaN").c_str()), DatasetError);
  }
  SUBCASE("constant training slices in a non-constant volume") {
    std::vector<float> v(5 * 6 * 7, 3.0f);
    v[0] = 9.0f;  // only slice j = 0 differs
    write_image(dir.file("slab.nii"), {5, 6, 7}, NIFTI_TYPE_FLOAT32, v.data());
    CHECK_THROWS_WITH_AS(build_slice_dataset({dir.file("slab.nii")}, opt), doctest::Contains("constant"),
                         DatasetError);
  }
  SUBCASE("unreadable file among good ones") {
    CHECK_THROWS_WITH_AS(build_slice_dataset({good, dir.file("nope.nii")}, opt),
                         doctest::Contains(dir.file("nope.nii").c_str()), NiftiError);
  }
  SUBCASE("no input") { CHECK_THROWS_AS(build_slice_dataset({}, opt), std::invalid_argument); }
}
