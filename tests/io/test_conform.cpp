// Reorientation, resampling and conforming against hand-computed geometry (tests/io/check_conform.py compares
// the same code with nibabel and scipy on real files). Trilinear interpolation reproduces a function that is
// linear in world coordinates exactly, so resampled values are checked against the function itself.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "apps/run_config.h"
#include "io/conform.h"
#include "tests/io/io_test_util.h"
#include "io/orientation.h"
#include "io/resample.h"
#include "io/slice_dataset.h"

using namespace mriae::io;

namespace {

Affine affine_of(const std::array<std::array<double, 3>, 3>& m, const std::array<double, 3>& t) {
  Affine a = identity_affine();
  for (size_t r = 0; r < 3; ++r) {
    for (size_t c = 0; c < 3; ++c) a[r][c] = m[r][c];
    a[r][3] = t[r];
  }
  return a;
}

double linear(const std::array<double, 3>& w) { return 3 * w[0] - 2 * w[1] + 0.5 * w[2] + 7; }

// A volume whose value at each voxel is linear() of its world position under `affine`, with sform code 1.
Volume linear_volume(const std::array<int64_t, 3>& dims, const Affine& affine) {
  Volume v;
  v.path = "synthetic.nii";
  v.dims = dims;
  v.header.sform_code = 1;
  v.header.sto_xyz = affine;
  v.data.resize(size_t(dims[0] * dims[1] * dims[2]));
  size_t n = 0;
  for (int64_t k = 0; k < dims[2]; ++k)
    for (int64_t j = 0; j < dims[1]; ++j)
      for (int64_t i = 0; i < dims[0]; ++i) v.data[n++] = float(linear(apply(affine, {double(i), double(j), double(k)})));
  return v;
}

Affine oblique() {  // 20 degrees about z, then 10 about x; voxels 1.5 x 2 x 2.5 with the last axis reversed
  const double a = 20 * M_PI / 180, b = 10 * M_PI / 180;
  const double rz[3][3] = {{std::cos(a), -std::sin(a), 0}, {std::sin(a), std::cos(a), 0}, {0, 0, 1}};
  const double rx[3][3] = {{1, 0, 0}, {0, std::cos(b), -std::sin(b)}, {0, std::sin(b), std::cos(b)}};
  const double zoom[3] = {1.5, 2.0, -2.5};
  std::array<std::array<double, 3>, 3> m{};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) {
      double s = 0;
      for (int k = 0; k < 3; ++k) s += rz[r][k] * rx[k][c];
      m[size_t(r)][size_t(c)] = s * zoom[c];
    }
  return affine_of(m, {-20, 10, 30});
}

}  // namespace

TEST_CASE("io_orientation and axis codes: flips, permutations and an oblique affine") {
  // LAS, 2 mm: the first axis runs to the left.
  const Affine las = affine_of({{{-2, 0, 0}, {0, 2, 0}, {0, 0, 2}}}, {90, -126, -72});
  const AxisOrientationMap o = io_orientation(las);
  CHECK(o.out_axis == std::array<int, 3>{0, 1, 2});
  CHECK(o.flip == std::array<int, 3>{-1, 1, 1});
  CHECK(axis_codes(o) == "LAS");
  // i -> -z, j -> +x, k -> -y: an axial stack stored inferior-first as rows.
  const Affine perm = affine_of({{{0, 1, 0}, {0, 0, -1}, {-1, 0, 0}}}, {0, 0, 0});
  CHECK(axis_codes(perm) == "IRP");
  CHECK(io_orientation(perm).out_axis == std::array<int, 3>{2, 0, 1});
  CHECK(axis_codes(oblique()) == "RAI");
  CHECK(axis_codes(identity_affine()) == "RAS");
  // Degenerate: no orientation can be read from them.
  CHECK_THROWS_AS(io_orientation(affine_of({{{1, 0, 0}, {0, 0, 0}, {0, 0, 1}}}, {0, 0, 0})), std::invalid_argument);
  CHECK_THROWS_AS(io_orientation(affine_of({{{1, 1, 0}, {0, 0, 0}, {0, 0, 1}}}, {0, 0, 0})), std::invalid_argument);
}

TEST_CASE("best_affine prefers the sform, then the qform, as nibabel") {
  NiftiHeader h;
  CHECK_FALSE(best_affine(h).has_value());
  h.qform_code = 1;
  h.qto_xyz = affine_of({{{2, 0, 0}, {0, 2, 0}, {0, 0, 2}}}, {1, 2, 3});
  REQUIRE(best_affine(h).has_value());
  CHECK_FALSE(best_affine(h)->from_sform);
  CHECK(best_affine(h)->affine[0][0] == 2);
  h.sform_code = 4;
  h.sto_xyz = identity_affine();
  CHECK(best_affine(h)->from_sform);
  CHECK(best_affine(h)->code == 4);
  CHECK(best_affine(h)->affine[0][0] == 1);
}

TEST_CASE("as_closest_canonical: every voxel keeps its world position, the axes run R, A, S") {
  const std::array<int64_t, 3> dims{4, 3, 5};
  for (const Affine& a : {affine_of({{{0, 1, 0}, {0, 0, -1}, {-1, 0, 0}}}, {5, 6, 7}),
                          affine_of({{{-2, 0, 0}, {0, 2, 0}, {0, 0, -3}}}, {9, -1, 4}), oblique()}) {
    const Volume v = linear_volume(dims, a);
    const CanonicalVolume c = as_closest_canonical(v.data, v.dims, a);
    CHECK(axis_codes(c.affine) == "RAS");
    CHECK(c.dims[0] * c.dims[1] * c.dims[2] == 60);
    // The value stored at each canonical voxel is linear() of where the canonical affine puts it.
    size_t n = 0;
    double worst = 0;
    for (int64_t k = 0; k < c.dims[2]; ++k)
      for (int64_t j = 0; j < c.dims[1]; ++j)
        for (int64_t i = 0; i < c.dims[0]; ++i, ++n)
          worst = std::max(worst, std::abs(double(c.data[n]) - linear(apply(c.affine, {double(i), double(j), double(k)}))));
    CHECK(worst < 1e-4);
  }
  // Hand-computed: LAS 2 x 1 x 1 -> the two voxels swap and the origin moves to the other one.
  const Affine las = affine_of({{{-2, 0, 0}, {0, 1, 0}, {0, 0, 1}}}, {10, 0, 0});
  const CanonicalVolume c = as_closest_canonical({1.0f, 2.0f}, {2, 1, 1}, las);
  CHECK(c.data == std::vector<float>{2.0f, 1.0f});
  CHECK(c.affine[0][0] == 2);
  CHECK(c.affine[0][3] == 8);
}

TEST_CASE("output_grid is resample_to_output's bounding box of the voxel centres") {
  // LAS 2 mm, 10 voxels a side: x from 90 - 18 = 72 to 90; at 1 mm 19 voxels from 72.
  const Grid g = output_grid({{10, 10, 10}, affine_of({{{-2, 0, 0}, {0, 2, 0}, {0, 0, 2}}}, {90, -126, -72})}, 1.0);
  CHECK(g.dims == std::array<int64_t, 3>{19, 19, 19});
  CHECK(g.affine[0][3] == 72);
  CHECK(g.affine[1][3] == -126);
  CHECK(g.affine[0][0] == 1);
  // 3 voxels of 2 mm (4 mm between the outer centres) at 1.5 mm: ceil(4 / 1.5) + 1 = 4.
  CHECK(output_grid({{3, 1, 1}, affine_of({{{2, 0, 0}, {0, 1, 0}, {0, 0, 1}}}, {0, 0, 0})}, 1.5).dims[0] == 4);
  CHECK_THROWS_AS(output_grid({{3, 1, 1}, identity_affine()}, 0.0), std::invalid_argument);
}

TEST_CASE("trilinear resampling reproduces a linear function; nearest picks input values; outside is 0") {
  const Volume v = linear_volume({20, 16, 12}, oblique());
  const Grid from{v.dims, oblique()};
  const Grid to = output_grid(from, 1.25);
  const std::vector<float> lin = resample(v.data, from, to, Interpolation::Linear);
  const Affine back = multiply(inverse(from.affine), to.affine);
  double worst = 0;
  int64_t inside = 0, outside_nonzero = 0;
  size_t n = 0;
  for (int64_t k = 0; k < to.dims[2]; ++k)
    for (int64_t j = 0; j < to.dims[1]; ++j)
      for (int64_t i = 0; i < to.dims[0]; ++i, ++n) {
        const std::array<double, 3> p{double(i), double(j), double(k)};
        const auto s = apply(back, p);
        bool in = true;
        for (size_t a = 0; a < 3; ++a) in = in && s[a] >= 1e-3 && s[a] <= double(v.dims[a] - 1) - 1e-3;
        bool out = false;
        for (size_t a = 0; a < 3; ++a) out = out || s[a] < -1e-3 || s[a] > double(v.dims[a] - 1) + 1e-3;
        if (in) {
          ++inside;
          worst = std::max(worst, std::abs(double(lin[n]) - linear(apply(to.affine, p))));
        } else if (out && lin[n] != 0) {
          ++outside_nonzero;
        }
      }
  CHECK(inside > 1000);
  CHECK(worst < 2e-4);  // float32 values around 100
  CHECK(outside_nonzero == 0);
  const std::vector<float> near = resample(v.data, from, to, Interpolation::Nearest);
  std::vector<float> sorted = v.data;
  std::sort(sorted.begin(), sorted.end());
  for (float x : near)
    if (x != 0) REQUIRE(std::binary_search(sorted.begin(), sorted.end(), x));
}

TEST_CASE("conform then unconform gives the input back on its own voxels") {
  for (Interpolation interp : {Interpolation::Linear, Interpolation::Nearest}) {
    const Volume v = linear_volume({18, 14, 10}, oblique());
    ConformOptions opt;
    opt.voxel = interp == Interpolation::Linear ? 1.0 : 0.5;
    opt.interpolation = interp;
    const ConformedVolume c = conform_volume(v, opt);
    CHECK(c.oriented);
    CHECK(c.resampled);
    CHECK(c.warning.empty());
    CHECK(c.orientation_codes == "RAI");
    CHECK(c.volume.header.sform_code == 1);
    CHECK(c.volume.header.qform_code == 1);
    CHECK(c.volume.spacing == std::array<double, 3>{opt.voxel, opt.voxel, opt.voxel});
    const std::vector<float> back = unconform(c.volume.data, c, interp);
    REQUIRE(back.size() == v.data.size());
    // Linear both ways: exact but for rounding. Nearest at 0.5 mm: within half a conformed voxel's diagonal of
    // the point (|gradient| about 3.6 per mm, so under 0.5 * sqrt(3) * 0.5 * 3.6). Two input voxels from the
    // edge and more, where no conformed neighbour lies outside the input (those hold 0).
    double worst = 0, edge_worst = 0;
    size_t n = 0;
    for (int64_t k = 0; k < v.dims[2]; ++k)
      for (int64_t j = 0; j < v.dims[1]; ++j)
        for (int64_t i = 0; i < v.dims[0]; ++i, ++n) {
          const double e = std::abs(double(back[n]) - double(v.data[n]));
          const bool interior = i >= 2 && j >= 2 && k >= 2 && i < v.dims[0] - 2 && j < v.dims[1] - 2 && k < v.dims[2] - 2;
          (interior ? worst : edge_worst) = std::max(interior ? worst : edge_worst, e);
        }
    CHECK(worst < (interp == Interpolation::Linear ? 2e-4 : 1.6));
    CHECK(edge_worst > 1);  // the check can see an error: at the edge the zeros outside do come in
  }
}

TEST_CASE("conform: an already canonical grid is kept; no orientation warns and keeps the array order") {
  Volume v = linear_volume({5, 4, 3}, affine_of({{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}, {-2, -3, -4}));
  ConformedVolume c = conform_volume(v, {});
  CHECK_FALSE(c.resampled);
  CHECK(c.volume.data == v.data);
  CHECK(unconform(c.volume.data, c, Interpolation::Linear) == v.data);

  v.header.sform_code = 0;
  v.spacing = {2, 2, 2};
  c = conform_volume(v, {});
  CHECK_FALSE(c.oriented);
  CHECK(c.warning.find("synthetic.nii") == 0);
  CHECK(c.warning.find("no usable orientation") != std::string::npos);
  CHECK(c.grid.dims == std::array<int64_t, 3>{9, 7, 5});  // 2 mm -> 1 mm along the array axes
  CHECK(c.volume.data[0] == v.data[0]);                   // same corner first: the array order
  CHECK(c.volume.data[2] == v.data[1]);
  CHECK(c.volume.data[1] == doctest::Approx(0.5 * (v.data[0] + v.data[1])));
  CHECK_THROWS_AS(conform_volume(v, {-1.0, Interpolation::Linear}), std::invalid_argument);
}

TEST_CASE("slice sets from a LAS and a RAS copy of one volume are the same when conformed") {
  using mriae::io::testing::TempDir;
  using mriae::io::testing::write_image;
  TempDir dir;
  const int64_t nx = 12, ny = 10, nz = 8;
  std::vector<float> ras(size_t(nx * ny * nz)), las(ras.size());
  for (int64_t k = 0; k < nz; ++k)
    for (int64_t j = 0; j < ny; ++j)
      for (int64_t i = 0; i < nx; ++i) {
        const float x = float((i * 7 + j * 3 + k * 11) % 17 + i);
        ras[size_t(i + nx * (j + ny * k))] = x;
        las[size_t((nx - 1 - i) + nx * (j + ny * k))] = x;
      }
  auto geometry = [](double sx) {
    return [sx](nifti_image& nim) {
      nim.sform_code = NIFTI_XFORM_MNI_152;
      nim.sto_xyz = nifti_dmat44{{{sx, 0, 0, sx > 0 ? -10.0 : 1.0}, {0, 1, 0, -5}, {0, 0, 1, -4}, {0, 0, 0, 1}}};
    };
  };
  write_image(dir.file("ras.nii"), {nx, ny, nz}, NIFTI_TYPE_FLOAT32, ras.data(), 1, geometry(1));
  write_image(dir.file("las.nii"), {nx, ny, nz}, NIFTI_TYPE_FLOAT32, las.data(), 1, geometry(-1));
  DatasetOptions opt;
  opt.axis = 0;
  opt.central_count = 4;
  opt.conform = ConformOptions{};
  const SliceDataset ds = build_slice_dataset({dir.file("ras.nii"), dir.file("las.nii")}, opt);
  REQUIRE(ds.slices.count() == 8);
  CHECK(ds.warnings.empty());
  const int64_t plane = ds.slices.height() * ds.slices.width();
  for (int64_t s = 0; s < 4; ++s)
    for (int64_t p = 0; p < plane; ++p) REQUIRE(ds.slices.slice(s)[p] == ds.slices.slice(s + 4)[p]);
  opt.conform.reset();  // the arrays as stored: sagittal slices mirrored
  const SliceDataset raw = build_slice_dataset({dir.file("ras.nii"), dir.file("las.nii")}, opt);
  bool differ = false;
  for (int64_t p = 0; p < plane; ++p) differ = differ || raw.slices.slice(0)[p] != raw.slices.slice(4)[p];
  CHECK(differ);
}

TEST_CASE("conform settings round-trip through checkpoint metadata; older checkpoints read as unconformed") {
  mriae::DataOptions o;
  o.paths = {"a.nii"};
  o.voxel = 1.5;
  o.interp = "nearest";
  mriae::CheckpointMetadata meta;
  SliceDataset ds;
  mriae::put_data_metadata(meta, o, ds);
  mriae::DataOptions back = mriae::data_options_from_metadata(meta);
  CHECK(back.conform);
  CHECK(back.voxel == 1.5);
  CHECK(back.interp == "nearest");
  REQUIRE(back.dataset_options().conform.has_value());
  CHECK(back.dataset_options().conform->interpolation == Interpolation::Nearest);
  meta.erase("data.conform");
  meta.erase("data.voxel");
  meta.erase("data.interp");
  CHECK_FALSE(mriae::data_options_from_metadata(meta).conform);
  o.voxel = 0;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("--voxel"), std::invalid_argument);
  o.voxel = 1;
  o.interp = "cubic";
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("--interp"), std::invalid_argument);
}
