#pragma once
// Small real volumes for the end-to-end tests: crops of Colin27 (mricron-data's ch2.nii.gz) taking every
// second voxel in x and z, written by niftilib (not by the code under test).
#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "apps/run_config.h"
#include "io/nifti_volume.h"
#include "tests/io/io_test_util.h"

namespace mriae::testing {

inline const char* kColin = "/usr/share/mricron/templates/ch2.nii.gz";

struct ColinCrop {
  int nx = 40, ny = 12, nz = 40;  // output dims
  int x0 = 50, z0 = 50;           // first voxel in x and z of the source
  std::vector<int> y0s = {90};    // one volume per entry: its first source voxel in y
  std::string extension = ".nii";
  std::function<void(nifti_image&)> tweak;  // header changes (geometry) before writing
};

// Writes subject0<ext>, subject1<ext>, ... into dir. False, with a visible message, when the real data is
// not installed, so the calling test can end early.
inline bool write_colin_crops(const io::testing::TempDir& dir, const ColinCrop& crop, std::vector<std::string>* paths) {
  if (!std::filesystem::exists(kColin)) {
    MESSAGE("skipped: " << kColin << " is missing (Debian package mricron-data)");
    return false;
  }
  const io::Volume v = io::read_volume(kColin);
  for (size_t s = 0; s < crop.y0s.size(); ++s) {
    std::vector<float> sub(size_t(crop.nx) * crop.ny * crop.nz);
    for (int k = 0; k < crop.nz; ++k)
      for (int j = 0; j < crop.ny; ++j)
        for (int i = 0; i < crop.nx; ++i)
          sub[size_t(i + crop.nx * (j + crop.ny * k))] = v.at(crop.x0 + 2 * i, crop.y0s[s] + j, crop.z0 + 2 * k);
    const std::string p = dir.file("subject" + std::to_string(s) + crop.extension);
    io::testing::write_image(p, {crop.nx, crop.ny, crop.nz}, NIFTI_TYPE_FLOAT32, sub.data(), 1, crop.tweak);
    paths->push_back(p);
  }
  return true;
}

// A short CPU run on such crops: every slice of each volume (`slices` of them), batch 4.
inline TrainOptions tiny_run(const std::vector<std::string>& paths, const std::string& out, int64_t slices,
                             int64_t epochs) {
  TrainOptions o;
  o.data.paths = paths;
  o.data.central = slices;
  o.data.conform = false;  // the subsets are sliced as stored (conforming: tests/io/test_conform.cpp)
  o.out_dir = out;
  o.epochs = epochs;
  o.batch = 4;
  o.device = "cpu";
  return o;
}

}  // namespace mriae::testing
