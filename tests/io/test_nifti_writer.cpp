// The NIfTI writer: geometry and values survive a round trip through every file kind it writes, and a
// failed write leaves the target as it was.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "io/nifti_volume.h"
#include "io/nifti_writer.h"
#include "tests/io/io_test_util.h"

using namespace mriae::io;
using mriae::io::testing::read_bytes;
using mriae::io::testing::TempDir;
using mriae::io::testing::write_image;
namespace fs = std::filesystem;

namespace {

// An oblique, non-trivial geometry written by niftilib itself: a rotated qform with qfac -1 and a
// sheared sform, so a writer that dropped or recomputed any of them would be caught.
void oblique_geometry(nifti_image& nim) {
  nim.pixdim[1] = nim.dx = 1.5f;
  nim.pixdim[2] = nim.dy = 2.0f;
  nim.pixdim[3] = nim.dz = 2.5f;
  nim.xyz_units = NIFTI_UNITS_MM;
  nim.time_units = NIFTI_UNITS_SEC;
  nim.qform_code = NIFTI_XFORM_SCANNER_ANAT;
  nim.quatern_b = 0.1;
  nim.quatern_c = -0.2;
  nim.quatern_d = 0.3;
  nim.qoffset_x = -90.5;
  nim.qoffset_y = 126.25;
  nim.qoffset_z = -72;
  nim.qfac = -1;
  nim.pixdim[0] = -1;
  nim.qto_xyz = nifti_quatern_to_dmat44(nim.quatern_b, nim.quatern_c, nim.quatern_d, nim.qoffset_x, nim.qoffset_y,
                                        nim.qoffset_z, nim.dx, nim.dy, nim.dz, nim.qfac);
  nim.sform_code = NIFTI_XFORM_MNI_152;
  nifti_dmat44 m{};
  const double rows[3][4] = {{-1.5, 0.1, 0, 90.25}, {0.05, 2, -0.2, -126}, {0, 0.3, 2.5, -72.5}};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) m.m[r][c] = rows[r][c];
  m.m[3][3] = 1;
  nim.sto_xyz = m;
  nim.slice_code = NIFTI_SLICE_SEQ_INC;
  nim.slice_dim = 3;
  nim.slice_duration = 0.05f;
  std::strcpy(nim.descrip, "writer test input");
  nim.intent_code = NIFTI_INTENT_ZSCORE;
  nim.cal_min = 0;
  nim.cal_max = 7;
}

void check_same_geometry(const NiftiHeader& a, const NiftiHeader& b) {
  for (int i = 1; i <= 3; ++i) CHECK(a.pixdim[size_t(i)] == b.pixdim[size_t(i)]);
  CHECK(a.qform_code == b.qform_code);
  CHECK(a.sform_code == b.sform_code);
  CHECK(a.quatern_b == b.quatern_b);
  CHECK(a.quatern_c == b.quatern_c);
  CHECK(a.quatern_d == b.quatern_d);
  CHECK(a.qoffset_x == b.qoffset_x);
  CHECK(a.qoffset_y == b.qoffset_y);
  CHECK(a.qoffset_z == b.qoffset_z);
  CHECK(a.qfac == b.qfac);
  CHECK(a.qto_xyz == b.qto_xyz);
  CHECK(a.sto_xyz == b.sto_xyz);
  CHECK(a.xyz_units == b.xyz_units);
  CHECK(a.time_units == b.time_units);
  CHECK(a.slice_code == b.slice_code);
  CHECK(a.slice_dim == b.slice_dim);
  CHECK(a.slice_duration == b.slice_duration);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Values a writer could get wrong: NaN, infinities, -0, a denormal, the extremes.
std::vector<float> awkward_values(size_t n) {
  const float special[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity(), -0.0f, std::numeric_limits<float>::denorm_min(),
                           std::numeric_limits<float>::max(), std::numeric_limits<float>::lowest(), 0.1f};
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i < 8 ? special[i] : float(i) * 0.37f - 11.0f;
  return v;
}

std::vector<std::string> folder_listing(const TempDir& dir) {
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(fs::path(dir.file("")))) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("write_volume keeps the geometry and the exact values in every file kind") {
  TempDir dir;
  const std::vector<int16_t> raw(6 * 7 * 8, 3);
  write_image(dir.file("in.nii"), {6, 7, 8}, NIFTI_TYPE_INT16, raw.data(), 1, oblique_geometry);
  const Volume in = read_volume(dir.file("in.nii"));
  REQUIRE(in.header.qfac == -1);
  const std::vector<float> values = awkward_values(in.data.size());

  for (const char* name : {"out.nii", "out.nii.gz", "pair.hdr", "pairz.hdr.gz", "byimg.img"}) {
    CAPTURE(name);
    write_volume(dir.file(name), in.header, in.dims, values);
    const Volume out = read_volume(dir.file(name));
    CHECK(out.dims == in.dims);
    CHECK(out.header.dim[0] == 3);
    CHECK(out.header.version == 1);
    CHECK(out.header.datatype == NIFTI_TYPE_FLOAT32);
    CHECK_FALSE(out.header.has_scaling());
    CHECK(same_bits(out.data, values));
    check_same_geometry(out.header, in.header);
    CHECK(out.header.descrip == "writer test input");
    // The values are no longer z-scores in 0..7: intent and display range are not carried over.
    CHECK(out.header.intent_code == NIFTI_INTENT_NONE);
    CHECK(out.header.cal_max == 0);
  }
  CHECK(read_volume(dir.file("out.nii.gz")).header.gzipped);
  CHECK(read_volume(dir.file("pair.hdr")).header.two_files);
  CHECK(fs::exists(dir.file("pair.img")));
  CHECK(fs::exists(dir.file("pairz.img.gz")));
  CHECK(fs::exists(dir.file("byimg.hdr")));
  // Nothing else: every temporary file was renamed into place or removed.
  CHECK(folder_listing(dir) == std::vector<std::string>{"byimg.hdr", "byimg.img", "in.nii", "out.nii", "out.nii.gz",
                                                        "pair.hdr", "pair.img", "pairz.hdr.gz", "pairz.img.gz"});
  // An uncompressed single file: the 352-byte header block, then the float32 voxels.
  CHECK(fs::file_size(dir.file("out.nii")) == 352 + in.data.size() * sizeof(float));
}

TEST_CASE("a 4-D or NIfTI-2 input gives a 3-D NIfTI-1 output with its geometry") {
  TempDir dir;
  SUBCASE("one frame of a 4-D series") {
    const std::vector<float> raw = mriae::io::testing::ramp_volume(4, 5, 3 * 2);
    write_image(dir.file("series.nii.gz"), {4, 5, 3, 2}, NIFTI_TYPE_FLOAT32, raw.data(), 1, [](nifti_image& nim) {
      oblique_geometry(nim);
      nim.pixdim[4] = nim.dt = 2;
    });
    ReadOptions ro;
    ro.frame = 1;
    const Volume in = read_volume(dir.file("series.nii.gz"), ro);
    write_volume(dir.file("frame.nii.gz"), in.header, in.dims, in.data);
    const Volume out = read_volume(dir.file("frame.nii.gz"));
    CHECK(out.header.dim[0] == 3);
    CHECK(out.dims == in.dims);
    CHECK(same_bits(out.data, in.data));
    check_same_geometry(out.header, in.header);
  }
  SUBCASE("NIfTI-2") {
    const std::vector<float> raw = mriae::io::testing::ramp_volume(4, 5, 3);
    write_image(dir.file("in2.nii"), {4, 5, 3}, NIFTI_TYPE_FLOAT32, raw.data(), 2, oblique_geometry);
    const Volume in = read_volume(dir.file("in2.nii"));
    REQUIRE(in.header.version == 2);
    write_volume(dir.file("out.nii"), in.header, in.dims, in.data);
    const Volume out = read_volume(dir.file("out.nii"));
    CHECK(out.header.version == 1);
    CHECK(same_bits(out.data, in.data));
    // NIfTI-2 keeps the geometry in doubles; NIfTI-1 rounds it to float32.
    for (int i = 1; i <= 3; ++i) CHECK(out.header.pixdim[size_t(i)] == in.header.pixdim[size_t(i)]);
    CHECK(out.header.qform_code == in.header.qform_code);
    CHECK(out.header.sform_code == in.header.sform_code);
    CHECK(out.header.qfac == in.header.qfac);
    for (size_t r = 0; r < 4; ++r)
      for (size_t c = 0; c < 4; ++c) {
        CHECK(out.header.qto_xyz[r][c] == doctest::Approx(in.header.qto_xyz[r][c]).epsilon(1e-6));
        CHECK(out.header.sto_xyz[r][c] == doctest::Approx(in.header.sto_xyz[r][c]).epsilon(1e-6));
      }
  }
}

TEST_CASE("an existing output is replaced whole, and left untouched when the write fails") {
  TempDir dir;
  const std::vector<float> a = mriae::io::testing::ramp_volume(4, 5, 6);
  std::vector<float> b = a;
  for (float& x : b) x = -x;
  write_image(dir.file("like.nii"), {4, 5, 6}, NIFTI_TYPE_FLOAT32, a.data(), 1, oblique_geometry);
  const Volume like = read_volume(dir.file("like.nii"));
  const std::string target = dir.file("t.nii.gz");
  write_volume(target, like.header, like.dims, a);
  const std::vector<char> before = read_bytes(target);

  SUBCASE("overwriting") {
    write_volume(target, like.header, like.dims, b);
    CHECK(same_bits(read_volume(target).data, b));
  }
  SUBCASE("wrong number of values") {
    CHECK_THROWS_WITH(write_volume(target, like.header, like.dims, std::vector<float>(7)),
                      doctest::Contains(target.c_str()));
    CHECK(read_bytes(target) == before);
  }
  SUBCASE("a dimension NIfTI-1 cannot hold") {
    const std::array<int64_t, 3> huge{40000, 1, 1};
    CHECK_THROWS_WITH(write_volume(target, like.header, huge, std::vector<float>(40000)),
                      doctest::Contains(target.c_str()));
    CHECK(read_bytes(target) == before);
  }
  SUBCASE("the data file of a pair cannot be renamed into place") {
    // A folder where the pair's image file must go: the header is written and checked under its
    // temporary name, the rename of the image fails, and both targets stay as they were.
    const std::string hdr = dir.file("p.hdr");
    write_volume(hdr, like.header, like.dims, a);
    const std::vector<char> hdr_before = read_bytes(hdr);
    fs::remove(dir.file("p.img"));
    fs::create_directories(dir.file("p.img/inside"));
    CHECK_THROWS_WITH(write_volume(hdr, like.header, like.dims, b), doctest::Contains(hdr.c_str()));
    CHECK(read_bytes(hdr) == hdr_before);
    CHECK(fs::is_directory(dir.file("p.img/inside")));
    fs::remove_all(dir.file("p.img"));
  }
  // In every case no temporary file is left behind.
  for (const std::string& name : folder_listing(dir)) CHECK_MESSAGE(name[0] != '.', name);
}

TEST_CASE("output names and folders are checked before anything is written") {
  TempDir dir;
  const std::vector<float> v(2 * 2 * 2, 1);
  write_image(dir.file("like.nii"), {2, 2, 2}, NIFTI_TYPE_FLOAT32, v.data());
  const NiftiHeader like = read_volume(dir.file("like.nii")).header;
  const std::array<int64_t, 3> dims{2, 2, 2};

  const std::string missing = dir.file("no/such/folder/out.nii.gz");
  CHECK_THROWS_AS(write_volume(missing, like, dims, v), NiftiError);
  CHECK_THROWS_WITH(write_volume(missing, like, dims, v), doctest::Contains("does not exist"));
  CHECK_THROWS_WITH(check_output_path(missing), doctest::Contains(missing.c_str()));
  CHECK_FALSE(fs::exists(dir.file("no")));

  CHECK_THROWS_WITH(write_volume(dir.file("out.png"), like, dims, v), doctest::Contains(".nii.gz"));
  CHECK_THROWS_WITH(check_output_path(dir.file("out")), doctest::Contains(dir.file("out").c_str()));
  fs::create_directories(dir.file("d.nii"));
  CHECK_THROWS_WITH(check_output_path(dir.file("d.nii")), doctest::Contains("is a folder"));
  CHECK_NOTHROW(check_output_path(dir.file("fine.nii.gz")));
  CHECK(folder_listing(dir) == std::vector<std::string>{"d.nii", "like.nii"});
}
