// The NIfTI reader: every datatype, every file kind, scaling, 4-D frames, and clean failures on bad input.
#include <doctest/doctest.h>
#include <zlib.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "engine/random.h"
#include "io/nifti_volume.h"
#include "tests/io/io_test_util.h"

using namespace mriae::io;
using mriae::io::testing::read_bytes;
using mriae::io::testing::TempDir;
using mriae::io::testing::write_bytes;
using mriae::io::testing::write_image;

namespace {

// Writes `values` (of type T, cycling) into a 3 x 4 x 5 volume of the given datatype, reads it back and
// checks every voxel against `expected` (the float each value must become), in x-fastest order.
template <typename T>
void round_trip(int datatype, const std::vector<T>& values, const std::vector<float>& expected,
                const std::string& name = "v.nii") {
  REQUIRE(values.size() == expected.size());
  TempDir dir;
  const int64_t nx = 3, ny = 4, nz = 5, n = nx * ny * nz;
  std::vector<T> data(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) data[size_t(i)] = values[size_t(i) % values.size()];
  write_image(dir.file(name), {nx, ny, nz}, datatype, data.data());
  const Volume v = read_volume(dir.file(name));
  CHECK(v.header.datatype == datatype);
  REQUIRE(v.dims == std::array<int64_t, 3>{nx, ny, nz});
  for (int64_t k = 0; k < nz; ++k)
    for (int64_t j = 0; j < ny; ++j)
      for (int64_t i = 0; i < nx; ++i) {
        const int64_t flat = i + nx * (j + ny * k);
        CHECK(v.at(i, j, k) == expected[size_t(flat) % expected.size()]);
      }
}

template <typename T>
std::vector<float> as_floats(const std::vector<T>& v) {
  return std::vector<float>(v.begin(), v.end());
}

}  // namespace

TEST_CASE("every integer and float datatype reads back as float32") {
  SUBCASE("uint8") { round_trip<uint8_t>(NIFTI_TYPE_UINT8, {0, 1, 127, 128, 255}, {0, 1, 127, 128, 255}); }
  SUBCASE("int8") { round_trip<int8_t>(NIFTI_TYPE_INT8, {-128, -1, 0, 1, 127}, {-128, -1, 0, 1, 127}); }
  SUBCASE("uint16") { round_trip<uint16_t>(NIFTI_TYPE_UINT16, {0, 1, 40000, 65535}, {0, 1, 40000, 65535}); }
  SUBCASE("int16") {
    round_trip<int16_t>(NIFTI_TYPE_INT16, {-32768, -7, 0, 9, 32767}, {-32768, -7, 0, 9, 32767});
  }
  SUBCASE("uint32") {
    // 4294967295 is not a float; it rounds to 2^32.
    round_trip<uint32_t>(NIFTI_TYPE_UINT32, {0, 16777216, 4294967295u}, {0, 16777216.0f, 4294967296.0f});
  }
  SUBCASE("int32") {
    round_trip<int32_t>(NIFTI_TYPE_INT32, {std::numeric_limits<int32_t>::min(), -5, 2147483647},
                        {-2147483648.0f, -5, 2147483648.0f});
  }
  SUBCASE("uint64") {
    round_trip<uint64_t>(NIFTI_TYPE_UINT64, {0, 3, uint64_t(1) << 40}, {0, 3, 1099511627776.0f});
  }
  SUBCASE("int64") {
    round_trip<int64_t>(NIFTI_TYPE_INT64, {-(int64_t(1) << 50), -3, 12}, {-1125899906842624.0f, -3, 12});
  }
  SUBCASE("float32") {
    const std::vector<float> v{-1.5f, 0.0f, 3.25e-8f, 6.5e30f};
    round_trip<float>(NIFTI_TYPE_FLOAT32, v, v);
  }
  SUBCASE("float64") { round_trip<double>(NIFTI_TYPE_FLOAT64, {-2.5, 0.1, 1e300}, {-2.5f, 0.1f, INFINITY}); }
  SUBCASE("float128") {
    if (sizeof(long double) == 16)
      round_trip<long double>(NIFTI_TYPE_FLOAT128, {-2.5L, 0.125L, 1e10L}, {-2.5f, 0.125f, 1e10f});
    else
      MESSAGE("long double is not 16 bytes here; FLOAT128 is unsupported on this platform");
  }
}

TEST_CASE("file kinds: .nii, .nii.gz, .hdr/.img pair, NIfTI-2, big-endian") {
  TempDir dir;
  const std::vector<float> ramp = mriae::io::testing::ramp_volume(5, 6, 7);
  auto check_ramp = [](const Volume& v) {
    REQUIRE(v.dims == std::array<int64_t, 3>{5, 6, 7});
    CHECK(v.at(0, 0, 0) == 1);
    CHECK(v.at(4, 0, 0) == 5);
    CHECK(v.at(0, 5, 0) == 501);
    CHECK(v.at(3, 2, 6) == 6204);
  };
  SUBCASE("nii") {
    write_image(dir.file("a.nii"), {5, 6, 7}, NIFTI_TYPE_FLOAT32, ramp.data());
    const Volume v = read_volume(dir.file("a.nii"));
    check_ramp(v);
    CHECK(v.header.version == 1);
    CHECK_FALSE(v.header.gzipped);
    CHECK_FALSE(v.header.two_files);
  }
  SUBCASE("nii.gz") {
    write_image(dir.file("a.nii.gz"), {5, 6, 7}, NIFTI_TYPE_FLOAT32, ramp.data());
    const Volume v = read_volume(dir.file("a.nii.gz"));
    check_ramp(v);
    CHECK(v.header.gzipped);
  }
  SUBCASE("hdr/img pair, opened by either name") {
    write_image(dir.file("a.hdr"), {5, 6, 7}, NIFTI_TYPE_FLOAT32, ramp.data());
    REQUIRE(std::filesystem::exists(dir.file("a.img")));
    check_ramp(read_volume(dir.file("a.hdr")));
    const Volume v = read_volume(dir.file("a.img"));
    check_ramp(v);
    CHECK(v.header.two_files);
  }
  SUBCASE("ANALYZE 7.5") {
    write_image(dir.file("an.hdr"), {5, 6, 7}, NIFTI_TYPE_FLOAT32, ramp.data(), 0);
    const auto bytes = read_bytes(dir.file("an.hdr"));
    REQUIRE(bytes.size() == 348);
    CHECK(std::string(bytes.data() + 344, 3) != "ni1");  // no NIfTI magic: really ANALYZE
    const Volume v = read_volume(dir.file("an.img"));
    check_ramp(v);
    CHECK(v.header.version == 0);
  }
  SUBCASE("NIfTI-2") {
    write_image(dir.file("a2.nii"), {5, 6, 7}, NIFTI_TYPE_FLOAT32, ramp.data(), 2);
    const auto bytes = read_bytes(dir.file("a2.nii"));
    REQUIRE(bytes.size() > 540);
    CHECK(std::string(bytes.data() + 4, 3) == "n+2");  // it really is a NIfTI-2 file
    const Volume v = read_volume(dir.file("a2.nii"));
    check_ramp(v);
    CHECK(v.header.version == 2);
  }
  SUBCASE("big-endian") {
    // A little-endian file turned big-endian by hand: header fields and data swapped, magic kept.
    write_image(dir.file("le.nii"), {5, 6, 7}, NIFTI_TYPE_FLOAT32, ramp.data());
    auto bytes = read_bytes(dir.file("le.nii"));
    nifti_1_header h;
    std::memcpy(&h, bytes.data(), sizeof h);
    const int64_t offset = int64_t(h.vox_offset);
    swap_nifti_header(&h, 1);
    std::memcpy(bytes.data(), &h, sizeof h);
    nifti_swap_4bytes(5 * 6 * 7, bytes.data() + offset);
    write_bytes(dir.file("be.nii"), bytes);
    const Volume v = read_volume(dir.file("be.nii"));
    check_ramp(v);
    CHECK(v.header.big_endian);
  }
}

TEST_CASE("scl_slope and scl_inter are applied when the slope is finite and non-zero") {
  TempDir dir;
  const std::vector<int16_t> raw{-4, 0, 6, 100};
  auto read_with = [&](double slope, double inter) {
    write_image(dir.file("s.nii"), {4, 1, 1}, NIFTI_TYPE_INT16, raw.data(), 1, [&](nifti_image& nim) {
      nim.scl_slope = slope;
      nim.scl_inter = inter;
    });
    return read_volume(dir.file("s.nii")).data;
  };
  CHECK(read_with(0.5, -10) == std::vector<float>{-12, -10, -7, 40});
  CHECK(read_with(2, 0) == std::vector<float>{-8, 0, 12, 200});
  CHECK(read_with(0, 7) == std::vector<float>{-4, 0, 6, 100});          // slope 0: stored values as they are
  CHECK(read_with(NAN, 7) == std::vector<float>{-4, 0, 6, 100});        // slope NaN: likewise
  CHECK(read_with(INFINITY, 7) == std::vector<float>{-4, 0, 6, 100});   // slope infinite: likewise
  CHECK(read_with(3, NAN) == std::vector<float>{-12, 0, 18, 300});      // NaN intercept reads as 0

  // Float data is scaled too.
  const std::vector<float> f{1.5f, -2.0f};
  write_image(dir.file("f.nii"), {2, 1, 1}, NIFTI_TYPE_FLOAT32, f.data(), 1, [](nifti_image& nim) {
    nim.scl_slope = 4;
    nim.scl_inter = 1;
  });
  const Volume v = read_volume(dir.file("f.nii"));
  CHECK(v.data == std::vector<float>{7.0f, -7.0f});
  CHECK(v.header.has_scaling());

  const ImageSummary s = summarize_image(dir.file("f.nii"));
  CHECK(s.min == -7.0);
  CHECK(s.max == 7.0);
}

TEST_CASE("4-D images: one frame reads as 3-D, several need a chosen frame") {
  TempDir dir;
  std::vector<float> series(2 * 3 * 2 * 3);
  for (size_t i = 0; i < series.size(); ++i) series[i] = float(i);  // frame f holds 12 f .. 12 f + 11
  write_image(dir.file("one.nii"), {2, 3, 2, 1}, NIFTI_TYPE_FLOAT32, series.data());
  const Volume one = read_volume(dir.file("one.nii"));
  CHECK(one.dims == std::array<int64_t, 3>{2, 3, 2});
  CHECK(one.data == std::vector<float>(series.begin(), series.begin() + 12));

  write_image(dir.file("three.nii"), {2, 3, 2, 3}, NIFTI_TYPE_FLOAT32, series.data());
  CHECK_THROWS_WITH_AS(read_volume(dir.file("three.nii")), doctest::Contains("choose one frame"), NiftiError);
  ReadOptions frame2;
  frame2.frame = 2;
  const Volume f2 = read_volume(dir.file("three.nii"), frame2);
  CHECK(f2.data == std::vector<float>(series.begin() + 24, series.end()));
  ReadOptions frame3;
  frame3.frame = 3;
  CHECK_THROWS_WITH_AS(read_volume(dir.file("three.nii"), frame3), doctest::Contains("frame 3"), NiftiError);

  const ImageSummary s = summarize_image(dir.file("three.nii"));  // info covers every frame
  CHECK(s.voxels == 36);
  CHECK(s.min == 0);
  CHECK(s.max == 35);

  write_image(dir.file("five.nii"), {2, 3, 1, 1, 2}, NIFTI_TYPE_FLOAT32, series.data());
  CHECK_THROWS_WITH_AS(read_volume(dir.file("five.nii")), doctest::Contains("only 3-D volumes and 4-D series"),
                       NiftiError);
}

TEST_CASE("header fields kept for writing outputs, and orientation") {
  TempDir dir;
  const std::vector<uint8_t> data(4 * 5 * 6, 1);
  write_image(dir.file("o.nii"), {4, 5, 6}, NIFTI_TYPE_UINT8, data.data(), 1, [](nifti_image& nim) {
    nim.pixdim[1] = nim.dx = 2;
    nim.pixdim[2] = nim.dy = 3;
    nim.pixdim[3] = nim.dz = 4;
    nim.xyz_units = NIFTI_UNITS_MM;
    // An LPS sform: i runs right-to-left, j anterior-to-posterior, k inferior-to-superior.
    nim.sform_code = NIFTI_XFORM_SCANNER_ANAT;
    nifti_dmat44 m{};
    m.m[0][0] = -2;
    m.m[1][1] = -3;
    m.m[2][2] = 4;
    m.m[0][3] = 10;
    m.m[3][3] = 1;
    nim.sto_xyz = m;
    std::strcpy(nim.descrip, "mriae test");
  });
  const Volume v = read_volume(dir.file("o.nii"));
  CHECK(v.spacing == std::array<double, 3>{2, 3, 4});
  CHECK(v.header.sform_code == NIFTI_XFORM_SCANNER_ANAT);
  CHECK(v.header.sto_xyz[0][0] == -2);
  CHECK(v.header.sto_xyz[0][3] == 10);
  CHECK(v.header.descrip == "mriae test");
  const AxisOrientation o = axis_orientation(v.header.sto_xyz);
  CHECK(o.codes == "LPS");
  CHECK(o.directions[0] == "Right-to-Left");
  CHECK(units_name(v.header.xyz_units) == "mm");
}

TEST_CASE("bad input fails with an exception naming the file and the problem") {
  TempDir dir;
  const std::string missing = dir.file("missing.nii");
  CHECK_THROWS_WITH_AS(read_volume(missing), doctest::Contains((missing + ": no such file").c_str()), NiftiError);

  SUBCASE("not NIfTI") {
    const std::string text = dir.file("notes.nii");
    write_bytes(text, std::vector<char>(1000, 'x'));
    CHECK_THROWS_WITH_AS(read_volume(text), doctest::Contains(text.c_str()), NiftiError);
    write_bytes(text, {'h', 'i', '\n'});
    CHECK_THROWS_WITH_AS(read_volume(text), doctest::Contains("not a NIfTI"), NiftiError);
  }

  // Random data, so gzip cannot shrink it and a cut lands inside the voxel data.
  std::vector<float> noise(32 * 32 * 32);
  mriae::Rng rng(5);
  for (float& x : noise) x = float(rng.uniform());

  SUBCASE("truncated .nii.gz") {
    write_image(dir.file("t.nii.gz"), {32, 32, 32}, NIFTI_TYPE_FLOAT32, noise.data());
    auto bytes = read_bytes(dir.file("t.nii.gz"));
    bytes.resize(bytes.size() * 6 / 10);
    write_bytes(dir.file("t.nii.gz"), bytes);
    CHECK_THROWS_WITH_AS(read_volume(dir.file("t.nii.gz")), doctest::Contains(dir.file("t.nii.gz").c_str()),
                         NiftiError);
    CHECK_THROWS_WITH_AS(summarize_image(dir.file("t.nii.gz")), doctest::Contains("truncated"), NiftiError);
  }
  SUBCASE("truncated just before the gzip trailer: all voxels there, CRC and length missing") {
    write_image(dir.file("t.nii.gz"), {32, 32, 32}, NIFTI_TYPE_FLOAT32, noise.data());
    auto bytes = read_bytes(dir.file("t.nii.gz"));
    bytes.resize(bytes.size() - 8);
    write_bytes(dir.file("t.nii.gz"), bytes);
    CHECK_THROWS_WITH_AS(read_volume(dir.file("t.nii.gz")), doctest::Contains("truncated gzip"), NiftiError);
  }
  SUBCASE("corrupt .nii.gz (only the CRC notices)") {
    write_image(dir.file("c.nii.gz"), {32, 32, 32}, NIFTI_TYPE_UINT8, std::vector<uint8_t>(32 * 32 * 32, 7).data());
    auto bytes = read_bytes(dir.file("c.nii.gz"));
    bytes[bytes.size() - 6] ^= 0x5a;  // inside the CRC-32 of the trailer
    write_bytes(dir.file("c.nii.gz"), bytes);
    CHECK_THROWS_WITH_AS(read_volume(dir.file("c.nii.gz")), doctest::Contains("corrupt gzip"), NiftiError);
  }
  SUBCASE(".nii.gz whose header claims far more data than the stream holds") {
    // 1024^3 float32 voxels (4 GiB) claimed, 64 bytes present: refused after inflating what is there,
    // without allocating what the header claims.
    write_image(dir.file("big.nii"), {4, 4, 1}, NIFTI_TYPE_FLOAT32, noise.data());
    auto bytes = read_bytes(dir.file("big.nii"));
    const int16_t dims[4] = {3, 1024, 1024, 1024};
    std::memcpy(bytes.data() + offsetof(nifti_1_header, dim), dims, sizeof dims);
    gzFile gz = gzopen(dir.file("big.nii.gz").c_str(), "wb");
    REQUIRE(gz != nullptr);
    REQUIRE(gzwrite(gz, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
    REQUIRE(gzclose(gz) == Z_OK);
    CHECK_THROWS_WITH_AS(read_volume(dir.file("big.nii.gz")), doctest::Contains("4294967296 bytes from offset"), NiftiError);
  }
  SUBCASE("truncated .nii and .img") {
    write_image(dir.file("t.nii"), {32, 32, 32}, NIFTI_TYPE_FLOAT32, noise.data());
    auto bytes = read_bytes(dir.file("t.nii"));
    bytes.resize(bytes.size() - 100);
    write_bytes(dir.file("t.nii"), bytes);
    CHECK_THROWS_WITH_AS(read_volume(dir.file("t.nii")), doctest::Contains("truncated"), NiftiError);
    bytes.resize(200);  // not even a whole header
    write_bytes(dir.file("t.nii"), bytes);
    CHECK_THROWS_AS(read_volume(dir.file("t.nii")), NiftiError);

    write_image(dir.file("p.hdr"), {32, 32, 32}, NIFTI_TYPE_FLOAT32, noise.data());
    write_bytes(dir.file("p.img"), std::vector<char>(1000));
    CHECK_THROWS_WITH_AS(read_volume(dir.file("p.hdr")), doctest::Contains("truncated"), NiftiError);
    std::filesystem::remove(dir.file("p.img"));
    CHECK_THROWS_WITH_AS(read_volume(dir.file("p.hdr")), doctest::Contains(dir.file("p.hdr").c_str()), NiftiError);
  }
  SUBCASE("unsupported datatypes") {
    const std::vector<char> zeros(4 * 4 * 4 * 32);
    for (int dt : {NIFTI_TYPE_COMPLEX64, NIFTI_TYPE_COMPLEX128, NIFTI_TYPE_RGB24, NIFTI_TYPE_RGBA32}) {
      CAPTURE(dt);
      write_image(dir.file("u.nii"), {4, 4, 4}, dt, zeros.data());
      CHECK_THROWS_WITH_AS(read_volume(dir.file("u.nii")), doctest::Contains("unsupported datatype"), NiftiError);
    }
  }
  SUBCASE("zero-sized dimension") {
    write_image(dir.file("z.nii"), {3, 2, 4}, NIFTI_TYPE_FLOAT32, noise.data());
    auto bytes = read_bytes(dir.file("z.nii"));
    const int16_t zero = 0;
    std::memcpy(bytes.data() + offsetof(nifti_1_header, dim) + 2 * sizeof(int16_t), &zero, sizeof zero);
    write_bytes(dir.file("z.nii"), bytes);
    CHECK_THROWS_WITH_AS(read_volume(dir.file("z.nii")), doctest::Contains("dimension 2 has size 0"), NiftiError);
  }
  SUBCASE("header whose dim and sizeof_hdr disagree on the byte order") {
    // Found by the fuzzer: niftilib's decoder overran its stack on such a NIfTI-2 header.
    write_image(dir.file("n2.nii"), {3, 2, 4}, NIFTI_TYPE_FLOAT32, noise.data(), 2);
    auto bytes = read_bytes(dir.file("n2.nii"));
    nifti_swap_8bytes(8, bytes.data() + offsetof(nifti_2_header, dim));
    write_bytes(dir.file("n2.nii"), bytes);
    CHECK_THROWS_WITH_AS(read_volume(dir.file("n2.nii")), doctest::Contains("dim[0]"), NiftiError);
    write_image(dir.file("n1.nii"), {3, 2, 4}, NIFTI_TYPE_FLOAT32, noise.data());
    bytes = read_bytes(dir.file("n1.nii"));
    nifti_swap_2bytes(8, bytes.data() + offsetof(nifti_1_header, dim));
    write_bytes(dir.file("n1.nii"), bytes);
    CHECK_THROWS_WITH_AS(read_volume(dir.file("n1.nii")), doctest::Contains("dim[0]"), NiftiError);
  }
  SUBCASE("a directory") {
    CHECK_THROWS_WITH_AS(read_volume(dir.file("")), doctest::Contains("directory"), NiftiError);
  }
}
