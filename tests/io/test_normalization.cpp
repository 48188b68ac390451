// Intensity normalisation methods, checked against hand-computed values (numpy.percentile's linear rule
// worked out by hand) and on data sets whose volumes differ only by an affine change of intensity units.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "io/normalization.h"
#include "io/slice_dataset.h"
#include "tests/io/io_test_util.h"

using namespace mriae::io;
using mriae::io::testing::ramp_volume;
using mriae::io::testing::TempDir;
using mriae::io::testing::write_image;

TEST_CASE("normalisation method names and percentile bounds parse, and bad ones name the option") {
  for (const char* name : {"train", "all", "volume", "percentile"}) CHECK(method_name(parse_method(name)) == name);
  CHECK(is_global(NormalizeMethod::Training));
  CHECK(is_global(NormalizeMethod::All));
  CHECK_FALSE(is_global(NormalizeMethod::Volume));
  CHECK_FALSE(is_global(NormalizeMethod::Percentile));
  CHECK_THROWS_WITH_AS(parse_method("minmax"), doctest::Contains("--normalize"), std::invalid_argument);

  const PercentileBounds b = parse_percentiles("0.5,99.5");
  CHECK(b.lower == 0.5);
  CHECK(b.upper == 99.5);
  CHECK(parse_percentiles(percentiles_text({0.1, 99.9})).upper == 99.9);
  for (const char* bad : {"", "1", "5,1", "1,1", "-1,50", "1,101", "a,b", "1,99x", "nan,50"})
    CHECK_THROWS_WITH_AS(parse_percentiles(bad), doctest::Contains("--percentiles"), std::invalid_argument);
}

TEST_CASE("percentile follows numpy's linear interpolation between order statistics") {
  // 1..10 shuffled. numpy.percentile(range(1, 11), p): position p/100 * 9 in the sorted values.
  const std::vector<float> values = {7, 3, 10, 1, 9, 2, 8, 5, 4, 6};
  auto p = [&](double q) {
    std::vector<float> v(values);
    return percentile(v.data(), int64_t(v.size()), q);
  };
  CHECK(p(0) == 1.0);
  CHECK(p(100) == 10.0);
  CHECK(p(50) == doctest::Approx(5.5));    // position 4.5: halfway between 5 and 6
  CHECK(p(25) == doctest::Approx(3.25));   // position 2.25
  CHECK(p(99.5) == doctest::Approx(9.955));  // position 8.955
  CHECK(p(0.5) == doctest::Approx(1.045));   // position 0.045
  std::vector<float> one = {42};
  CHECK(percentile(one.data(), 1, 99.5) == 42.0);
}

TEST_CASE("per-volume scalings: min and max, or clipped percentiles, and constant data names the file") {
  // 1000 values 0..999 and one bright outlier, as a few hot voxels in a scan.
  std::vector<float> v(1001);
  for (int i = 0; i < 1000; ++i) v[size_t(i)] = float(i);
  v[1000] = 1e6f;
  const Normalisation mm = volume_normalisation("v.nii", v.data(), 1001, NormalizeMethod::Volume, {});
  CHECK(mm.min == 0.0f);
  CHECK(mm.max == 1e6f);
  CHECK_FALSE(mm.clip);
  // 1st and 99th percentiles: positions 10 and 990 of 0..1000 sorted (the outlier is the last).
  const Normalisation pc = volume_normalisation("v.nii", v.data(), 1001, NormalizeMethod::Percentile, {1, 99});
  CHECK(pc.min == doctest::Approx(10.0));
  CHECK(pc.max == doctest::Approx(990.0));
  CHECK(pc.clip);
  CHECK(pc.apply(1e6f) == 1.0f);
  CHECK(pc.apply(-5.0f) == 0.0f);
  CHECK(pc.apply(500.0f) == doctest::Approx(490.0 / 980.0));
  CHECK(pc.invert(pc.apply(500.0f)) == doctest::Approx(500.0f));
  CHECK(v[1000] == 1e6f);  // the caller's data is not reordered

  std::vector<float> flat(100, 3.0f);
  flat[99] = 50.0f;  // one voxel differs: min-max works, the 1st..99th percentiles coincide
  CHECK_NOTHROW(volume_normalisation("flat.nii", flat.data(), 100, NormalizeMethod::Volume, {}));
  CHECK_THROWS_WITH_AS(volume_normalisation("flat.nii", flat.data(), 100, NormalizeMethod::Percentile, {1, 98}),
                       doctest::Contains("flat.nii: its 1th and 98th percentiles are both 3"), DatasetError);
  CHECK_THROWS_AS(volume_normalisation("x", flat.data(), 100, NormalizeMethod::Training, {}), std::invalid_argument);
}

TEST_CASE("the range check: more than 1% of voxels beyond [-0.05, 1.05] is suspicious") {
  RangeCheck c;
  for (int i = 0; i < 990; ++i) c.add(0.5f);
  for (int i = 0; i < 10; ++i) c.add(1.2f);  // exactly 1%: not more than 1%
  CHECK(c.voxels == 1000);
  CHECK(c.above == 10);
  CHECK(c.outside_fraction() == doctest::Approx(0.01));
  CHECK_FALSE(c.suspicious());
  c.add(-0.06f);
  c.add(1.05f);  // on the bound: inside
  CHECK(c.below == 1);
  CHECK(c.above == 10);
  CHECK(c.suspicious());
  CHECK(c.lowest == -0.06f);
  CHECK(c.highest == 1.2f);

  const Normalisation s{0, 254};
  const std::string msg = range_message("/data/t1w_1mm.nii.gz", c, NormalizeMethod::Training, s, 500, 9898);
  CHECK(msg.find("/data/t1w_1mm.nii.gz: 1.1% of its voxels") == 0);
  CHECK(msg.find("-0.06 .. 1.2") != std::string::npos);
  CHECK(msg.find("'train'") != std::string::npos);
  CHECK(msg.find("500 .. 9898") != std::string::npos);
  CHECK_THROWS_WITH_AS(enforce_range("/data/t1w_1mm.nii.gz", c, NormalizeMethod::Training, s, 500, 9898, true, nullptr),
                       doctest::Contains("/data/t1w_1mm.nii.gz"), DatasetError);

  // Without --strict: a warning on the given stream, nothing thrown; a check within range prints nothing.
  std::FILE* f = std::tmpfile();
  REQUIRE(f);
  enforce_range("/data/t1w_1mm.nii.gz", c, NormalizeMethod::Training, s, 500, 9898, false, f);
  enforce_range("/data/ok.nii.gz", RangeCheck{}, NormalizeMethod::Training, s, 0, 254, true, f);
  std::rewind(f);
  char buf[1024] = {};
  const size_t got = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  const std::string text(buf, got);
  CHECK(text.find("mriae: warning: /data/t1w_1mm.nii.gz: 1.1%") == 0);
  CHECK(text.find("ok.nii.gz") == std::string::npos);
}

namespace {

// v(i, j, k) = ramp, and the same volume in other units: a * ramp + b (what another scanner might store).
std::string write_scaled(const TempDir& dir, const std::string& name, float a, float b) {
  std::vector<float> v = ramp_volume(6, 5, 7);
  for (float& x : v) x = a * x + b;
  write_image(dir.file(name), {6, 5, 7}, NIFTI_TYPE_FLOAT32, v.data());
  return dir.file(name);
}

}  // namespace

TEST_CASE("per-volume methods give the same slices for one volume in different intensity units") {
  TempDir dir;
  const std::string a = write_scaled(dir, "a.nii", 1, 0), b = write_scaled(dir, "b.nii", 37, 500);
  for (NormalizeMethod m : {NormalizeMethod::Volume, NormalizeMethod::Percentile}) {
    CAPTURE(method_name(m));
    DatasetOptions opt;
    opt.central_count = 3;
    opt.normalize = m;
    opt.percentiles = {2, 98};
    opt.split.validation_fraction = 0.5;
    const SliceDataset ds = build_slice_dataset({a, b}, opt);
    REQUIRE(ds.subjects.size() == 2);
    CHECK(ds.method == m);
    // Each volume's own range: b's is a's mapped by 37 x + 500.
    CHECK(ds.subjects[1].scaling.min == doctest::Approx(37 * ds.subjects[0].scaling.min + 500).epsilon(1e-6));
    CHECK(ds.subjects[1].scaling.max == doctest::Approx(37 * ds.subjects[0].scaling.max + 500).epsilon(1e-6));
    if (m == NormalizeMethod::Volume) {
      CHECK(ds.subjects[0].scaling.min == ramp_volume(6, 5, 7).front());
      CHECK(ds.subjects[0].scaling.max == ramp_volume(6, 5, 7).back());
    }
    const int64_t per = ds.slices.height() * ds.slices.width();
    for (int64_t s = 0; s < 3; ++s) {
      const float* x = ds.slices.slice(s);
      const float* y = ds.slices.slice(3 + s);
      for (int64_t i = 0; i < per; ++i) {
        REQUIRE(x[i] == doctest::Approx(y[i]).epsilon(1e-5));
        REQUIRE(x[i] >= 0.0f);  // the volume's own range, whole volume: never outside [0, 1]
        REQUIRE(x[i] <= 1.0f);
      }
    }
    CHECK_FALSE(ds.subjects[0].range_check.suspicious());
    CHECK_FALSE(ds.subjects[1].range_check.suspicious());
    // A fixed range belongs to the global methods only.
    opt.normalisation = Normalisation{0, 1};
    CHECK_THROWS_AS(build_slice_dataset({a}, opt), std::invalid_argument);
  }

  // A global method: b's slices far outside a's range, counted per volume for the caller to report.
  DatasetOptions opt;
  opt.central_count = 3;
  opt.normalisation = Normalisation{ramp_volume(6, 5, 7).front(), ramp_volume(6, 5, 7).back()};
  const SliceDataset ds = build_slice_dataset({a, b}, opt);
  CHECK_FALSE(ds.subjects[0].range_check.suspicious());
  CHECK(ds.subjects[1].range_check.suspicious());
  CHECK(ds.subjects[1].range_check.voxels == 3 * 6 * 7);
  CHECK(ds.subjects[1].range_check.below == 0);
  CHECK(ds.subjects[1].range_check.above > 3 * 6 * 7 / 2);
  // The brightest selected voxel, ramp(5, 3, 6) of the central slices j = 1..3, in b's units, on a's scale.
  const float lo = opt.normalisation->min, hi = opt.normalisation->max;
  CHECK(ds.subjects[1].range_check.highest == doctest::Approx((37 * (6000 + 300 + 5 + 1) + 500 - lo) / (hi - lo)));
}
