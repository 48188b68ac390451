// `mriae info`'s report, on a file whose header is known field by field.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "apps/info_command.h"
#include "io/nifti_volume.h"
#include "tests/io/io_test_util.h"

using mriae::io::testing::TempDir;
using mriae::io::testing::write_image;

TEST_CASE("mriae info reports dims, voxel size, datatype, scaling, orientation and range") {
  TempDir dir;
  std::vector<int16_t> data(4 * 5 * 6 * 2);
  for (size_t i = 0; i < data.size(); ++i) data[i] = int16_t(i) - 10;  // -10 .. 229
  write_image(dir.file("i.nii.gz"), {4, 5, 6, 2}, NIFTI_TYPE_INT16, data.data(), 1, [](nifti_image& nim) {
    nim.pixdim[1] = nim.dx = 2;
    nim.pixdim[2] = nim.dy = 2;
    nim.pixdim[3] = nim.dz = 3;
    nim.pixdim[4] = nim.dt = 1.5;
    nim.xyz_units = NIFTI_UNITS_MM;
    nim.time_units = NIFTI_UNITS_SEC;
    nim.scl_slope = 0.5;
    nim.scl_inter = 100;
    nim.qform_code = NIFTI_XFORM_SCANNER_ANAT;
    nim.quatern_d = 1;  // the writer stores the quaternion: 180 degrees about z, i.e. LPS
    nim.qfac = 1;
    std::strcpy(nim.descrip, "phantom");
  });
  const std::string text = mriae::describe_image(dir.file("i.nii.gz"));
  CAPTURE(text);
  CHECK(text.find("NIfTI-1, single file, gzip-compressed, little-endian") != std::string::npos);
  CHECK(text.find("4 x 5 x 6 x 2 (4-D, 240 voxels)") != std::string::npos);
  CHECK(text.find("2 x 2 x 3 mm; frame interval 1.5 s") != std::string::npos);
  CHECK(text.find("INT16 (code 4, 2 bytes per voxel)") != std::string::npos);
  CHECK(text.find("value * 0.5 + 100 (applied)") != std::string::npos);
  CHECK(text.find("qform        code 1 (Scanner Anat): LPS") != std::string::npos);
  CHECK(text.find("sform        code 0") != std::string::npos);
  CHECK(text.find("orientation  LPS (from the qform)") != std::string::npos);
  CHECK(text.find("min 95, max 214.5") != std::string::npos);  // -10 * 0.5 + 100, 229 * 0.5 + 100
  CHECK(text.find("description  phantom") != std::string::npos);

  CHECK_THROWS_WITH_AS(mriae::describe_image(dir.file("none.nii")), doctest::Contains("no such file"),
                       mriae::io::NiftiError);
}
