// The reader and the slice set against nibabel, through tests/io/nibabel_fixture.json (written by
// tests/io/make_nibabel_fixture.py from the same files). A file the fixture names but this machine lacks
// (mricron-data, python3-nibabel) is skipped with a message.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/io/json_fixture.h"
#include "io/nifti_volume.h"
#include "io/slice_dataset.h"

using namespace mriae::io;
using nlohmann::json;

namespace {

json load_fixture() { return mriae::io::testing::load_json_fixture("nibabel_fixture.json"); }

bool present(const std::string& path) { return mriae::io::testing::fixture_file_present(path); }

// nibabel computes scaled values in float64; the reader keeps float32.
doctest::Approx near(double expected) { return doctest::Approx(expected).epsilon(1e-6); }

}  // namespace

TEST_CASE("voxel values, shapes and orientation match nibabel") {
  const json fx = load_fixture();
  for (const json& img : fx["images"]) {
    const std::string path = img["path"];
    CAPTURE(path);
    if (!present(path)) continue;
    ReadOptions opt;
    if (!img["frame"].is_null()) opt.frame = img["frame"].get<int64_t>();
    const Volume v = read_volume(path, opt);
    const auto& shape = img["shape"];
    for (int a = 0; a < 3; ++a) CHECK(v.dims[size_t(a)] == shape[size_t(a)].get<int64_t>());
    CHECK(v.header.dim[0] == int64_t(shape.size()));
    for (const json& s : img["voxels"]) {
      const int64_t i = s[0], j = s[1], k = s[2];
      CAPTURE(i);
      CAPTURE(j);
      CAPTURE(k);
      CHECK(v.at(i, j, k) == near(s[3].get<double>()));
    }
    const ImageSummary sum = summarize_image(path);
    CHECK(sum.min == near(img["min"].get<double>()));
    CHECK(sum.max == near(img["max"].get<double>()));
    const NiftiHeader& h = v.header;
    const auto& m = h.sform_code > 0 ? h.sto_xyz : h.qto_xyz;
    CHECK(axis_orientation(m).codes == img["axcodes"].get<std::string>());
  }
}

TEST_CASE("the ch2 slice set matches the tutorial's numpy preprocessing") {
  const json fx = load_fixture();
  const json& t = fx["ch2_tutorial"];
  const std::string path = t["path"];
  if (!present(path)) return;

  DatasetOptions opt;  // the defaults: axis 1, central 51 slices, top-left zero padding to a multiple of 4
  opt.normalize = NormalizeMethod::All;  // the tutorial's scaling (over every slice)
  const SliceDataset ds = build_slice_dataset({path}, opt);

  REQUIRE(ds.subjects.size() == 1);
  CHECK(ds.subjects[0].range.start == t["start"].get<int64_t>());
  CHECK(ds.subjects[0].range.stop == t["stop"].get<int64_t>());
  const auto& shape = t["shape"];
  REQUIRE(ds.slices.count() == shape[0].get<int64_t>());
  REQUIRE(ds.slices.height() == shape[1].get<int64_t>());
  REQUIRE(ds.slices.width() == shape[2].get<int64_t>());
  CHECK(ds.normalisation.min == near(t["min"].get<double>()));
  CHECK(ds.normalisation.max == near(t["max"].get<double>()));

  for (const json& s : t["samples"]) {
    const int64_t n = s[0], r = s[1], c = s[2];
    CAPTURE(n);
    CAPTURE(r);
    CAPTURE(c);
    CHECK(ds.slices.slice(n)[r * ds.slices.width() + c] == doctest::Approx(s[3].get<double>()).epsilon(1e-6));
  }
  // Whole-slice checksums weighted by row and by column: a transposed, flipped or shifted slice fails.
  const auto& sums = t["checksums"];
  REQUIRE(int64_t(sums.size()) == ds.slices.count());
  for (int64_t n = 0; n < ds.slices.count(); ++n) {
    CAPTURE(n);
    double total = 0, by_row = 0, by_col = 0;
    const float* x = ds.slices.slice(n);
    for (int64_t r = 0; r < ds.slices.height(); ++r)
      for (int64_t c = 0; c < ds.slices.width(); ++c) {
        const double v = x[r * ds.slices.width() + c];
        total += v;
        by_row += v * double(r);
        by_col += v * double(c);
      }
    CHECK(total == doctest::Approx(sums[size_t(n)][0].get<double>()).epsilon(1e-5));
    CHECK(by_row == doctest::Approx(sums[size_t(n)][1].get<double>()).epsilon(1e-5));
    CHECK(by_col == doctest::Approx(sums[size_t(n)][2].get<double>()).epsilon(1e-5));
  }
}

TEST_CASE("slices along axes 0 and 2 match nibabel's vol[i, :, :] and vol[:, :, k]") {
  const json fx = load_fixture();
  const std::string path = fx["ch2_tutorial"]["path"];
  if (!present(path)) return;
  const Volume v = read_volume(path);
  for (const json& a : fx["ch2_other_axes"]) {
    const int axis = a["axis"];
    const int64_t index = a["index"];
    CAPTURE(axis);
    const auto shape = slice_shape(v.dims, axis);
    CHECK(shape[0] == a["shape"][0].get<int64_t>());
    CHECK(shape[1] == a["shape"][1].get<int64_t>());
    std::vector<float> slice(size_t(shape[0] * shape[1]));
    extract_slice(v, axis, index, slice.data());
    for (const json& p : a["pixels"]) {
      const int64_t r = p[0], c = p[1];
      CHECK(slice[size_t(r * shape[1] + c)] == near(p[2].get<double>()));
    }
  }
}
