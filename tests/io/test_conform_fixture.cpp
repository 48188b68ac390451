// Conforming against nibabel through tests/io/conform_fixture.json (written by tests/io/make_conform_fixture.py
// from the same files), in float64; and every reoriented copy of a real volume conformed back onto the original.
// A file the fixture names but this machine lacks (mricron-data, python3-nibabel) is skipped with a message.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "io/conform.h"
#include "tests/io/json_fixture.h"
#include "io/nifti_volume.h"
#include "io/orientation.h"
#include "io/resample.h"

using namespace mriae::io;
using nlohmann::json;

namespace {

json load_fixture() { return mriae::io::testing::load_json_fixture("conform_fixture.json"); }

bool present(const std::string& path) { return mriae::io::testing::fixture_file_present(path); }

double affine_distance(const Affine& a, const json& b) {
  double d = 0;
  for (size_t r = 0; r < 4; ++r)
    for (size_t c = 0; c < 4; ++c) d = std::max(d, std::abs(a[r][c] - b[r][c].get<double>()));
  return d;
}

float voxel(const std::vector<float>& data, const std::array<int64_t, 3>& dims, const json& s) {
  const int64_t i = s[0], j = s[1], k = s[2];
  return data[size_t(i + dims[0] * (j + dims[1] * k))];
}

}  // namespace

TEST_CASE("orientation, canonical array and affine, resampled grid and values match nibabel") {
  const json fx = load_fixture();
  for (const json& img : fx["images"]) {
    const std::string path = img["path"];
    CAPTURE(path);
    if (!present(path)) continue;
    ReadOptions opt;
    if (!img["frame"].is_null()) opt.frame = img["frame"].get<int64_t>();
    const Volume v = read_volume(path, opt);
    const auto best = best_affine(v.header);
    REQUIRE(best.has_value());
    CHECK(affine_distance(best->affine, img["affine"]) <= 1e-9);  // the same float32 fields, read in double

    const AxisOrientationMap o = io_orientation(best->affine);
    CHECK(axis_codes(o) == img["axcodes"].get<std::string>());
    for (size_t a = 0; a < 3; ++a) {
      CHECK(o.out_axis[a] == img["ornt"][a][0].get<int>());
      CHECK(o.flip[a] == img["ornt"][a][1].get<int>());
    }

    const CanonicalVolume c = as_closest_canonical(v.data, v.dims, best->affine);
    for (size_t a = 0; a < 3; ++a) CHECK(c.dims[a] == img["canonical_shape"][a].get<int64_t>());
    CHECK(affine_distance(c.affine, img["canonical_affine"]) <= 1e-9);
    for (const json& s : img["canonical_voxels"]) CHECK(voxel(c.data, c.dims, s) == doctest::Approx(s[3].get<double>()).epsilon(1e-6));
    // Round trip: the canonical affine times the reorientation's inverse is the input's affine again.
    const Affine back = multiply(c.affine, inverse(inverse_orientation_affine(o, v.dims)));
    CHECK(affine_distance(back, img["affine"]) <= 1e-9);

    ConformOptions co;
    co.voxel = img["voxel"];
    const ConformedVolume cv = conform_volume(v, co);
    CHECK(cv.resampled);
    for (size_t a = 0; a < 3; ++a) CHECK(cv.grid.dims[a] == img["resampled_shape"][a].get<int64_t>());
    CHECK(affine_distance(cv.grid.affine, img["resampled_affine"]) <= 1e-9);
    const double limit = 1e-5 * img["range"].get<double>();
    double worst = 0;
    for (const json& s : img["resampled_voxels"])
      worst = std::max(worst, std::abs(double(voxel(cv.volume.data, cv.grid.dims, s)) - s[3].get<double>()));
    CHECK(worst <= limit);
  }
}

TEST_CASE("every reoriented copy of a real volume conforms back onto the original, array and affine") {
  const std::string path = "/usr/share/mricron/templates/ch2.nii.gz";
  if (!present(path)) return;
  const Volume full = read_volume(path);
  // Every third voxel (61 x 73 x 61), 3 mm: small enough for 48 copies.
  const std::array<int64_t, 3> dims{61, 73, 61};
  std::vector<float> data(size_t(dims[0] * dims[1] * dims[2]));
  size_t n = 0;
  for (int64_t k = 0; k < dims[2]; ++k)
    for (int64_t j = 0; j < dims[1]; ++j)
      for (int64_t i = 0; i < dims[0]; ++i) data[n++] = full.at(3 * i, 3 * j, 3 * k);
  Affine base = full.header.sto_xyz;
  for (size_t r = 0; r < 3; ++r)
    for (size_t c = 0; c < 3; ++c) base[r][c] *= 3;

  std::array<int, 3> perm{0, 1, 2};
  int copies = 0;
  do {
    for (int flips = 0; flips < 8; ++flips) {
      // Copy axis a is original axis perm[a], reversed when bit a of flips is set: its voxel (c0, c1, c2) is
      // the original's voxel with index perm[a] = c_a (or n - 1 - c_a); m maps copy voxels to original voxels.
      std::array<int64_t, 3> cd{};
      Affine m{};
      m[3][3] = 1;
      for (size_t a = 0; a < 3; ++a) {
        const size_t p = size_t(perm[a]);
        cd[a] = dims[p];
        const bool flip = (flips >> a) & 1;
        m[p][a] = flip ? -1 : 1;
        m[p][3] = flip ? double(dims[p] - 1) : 0;
      }
      std::vector<float> copy(data.size());
      size_t q = 0;
      for (int64_t k = 0; k < cd[2]; ++k)
        for (int64_t j = 0; j < cd[1]; ++j)
          for (int64_t i = 0; i < cd[0]; ++i) {
            const auto o = mriae::io::apply(m, {double(i), double(j), double(k)});
            copy[q++] = data[size_t(int64_t(o[0]) + dims[0] * (int64_t(o[1]) + dims[1] * int64_t(o[2])))];
          }
      const Affine a = multiply(base, m);
      const CanonicalVolume c = as_closest_canonical(copy, cd, a);
      CAPTURE(axis_codes(a));
      REQUIRE(c.dims == dims);
      CHECK(c.data == data);
      double d = 0;
      for (size_t r = 0; r < 4; ++r)
        for (size_t col = 0; col < 4; ++col) d = std::max(d, std::abs(c.affine[r][col] - base[r][col]));
      CHECK(d <= 1e-12);
      ++copies;
    }
  } while (std::next_permutation(perm.begin(), perm.end()));
  CHECK(copies == 48);
}

TEST_CASE("affine round trips: inverse, and world -> voxel -> world") {
  Affine a = identity_affine();
  const double m[3][4] = {{-1.9, 0.2, 0.1, 90}, {0.3, 2.1, -0.4, -120}, {-0.05, 0.5, 2.4, -60}};
  for (size_t r = 0; r < 3; ++r)
    for (size_t c = 0; c < 4; ++c) a[r][c] = m[r][c];
  const Affine i = multiply(inverse(a), a);
  for (size_t r = 0; r < 4; ++r)
    for (size_t c = 0; c < 4; ++c) CHECK(i[r][c] == doctest::Approx(r == c ? 1.0 : 0.0).epsilon(1e-12));
  const auto w = mriae::io::apply(a, {3, 4, 5});
  const auto v = mriae::io::apply(inverse(a), w);
  CHECK(v[0] == doctest::Approx(3).epsilon(1e-12));
  CHECK(v[1] == doctest::Approx(4).epsilon(1e-12));
  CHECK(v[2] == doctest::Approx(5).epsilon(1e-12));
  Affine singular = a;
  for (size_t r = 0; r < 3; ++r) singular[r][2] = 2 * singular[r][0];
  CHECK_THROWS_AS(inverse(singular), std::invalid_argument);
}
