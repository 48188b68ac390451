#include "io/nifti_writer.h"

#include <nifti2_io.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <system_error>

namespace mriae::io {

namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& path, const std::string& problem) { throw NiftiError(path + ": " + problem); }

struct NimDeleter {
  void operator()(nifti_image* p) const { nifti_image_free(p); }
};
using NimPtr = std::unique_ptr<nifti_image, NimDeleter>;

// The NIfTI extension `path` ends with, as written there ("" when none): it is kept on the temporary name
// because niftilib decides from it between one file and a pair, and whether to compress.
std::string nifti_extension(const std::string& path) {
  const std::string name = fs::path(path).filename().string();
  for (const char* ext : {".nii.gz", ".hdr.gz", ".img.gz", ".nii", ".hdr", ".img"}) {
    const size_t n = std::strlen(ext);
    if (name.size() > n && name.compare(name.size() - n, n, ext) == 0) return ext;
  }
  return "";
}

// Copies text into a fixed-size header field, cut to fit with its terminating NUL.
template <size_t N>
void set_text(char (&field)[N], const std::string& text) {
  std::memset(field, 0, N);
  std::memcpy(field, text.data(), std::min(text.size(), N - 1));
}

nifti_dmat44 to_dmat44(const std::array<std::array<double, 4>, 4>& a) {
  nifti_dmat44 m;
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) m.m[r][c] = a[size_t(r)][size_t(c)];
  return m;
}

void copy_geometry(const NiftiHeader& like, nifti_image& nim) {
  nim.dx = nim.pixdim[1] = like.pixdim[1];
  nim.dy = nim.pixdim[2] = like.pixdim[2];
  nim.dz = nim.pixdim[3] = like.pixdim[3];
  // niftilib writes the quaternion fields as they are (not derived from qto_xyz); the matrices are set too so
  // the nifti_image is consistent in itself.
  nim.qform_code = like.qform_code;
  nim.quatern_b = like.quatern_b;
  nim.quatern_c = like.quatern_c;
  nim.quatern_d = like.quatern_d;
  nim.qoffset_x = like.qoffset_x;
  nim.qoffset_y = like.qoffset_y;
  nim.qoffset_z = like.qoffset_z;
  nim.qfac = like.qfac < 0 ? -1 : 1;
  nim.pixdim[0] = nim.qfac;
  nim.qto_xyz = nifti_quatern_to_dmat44(nim.quatern_b, nim.quatern_c, nim.quatern_d, nim.qoffset_x, nim.qoffset_y,
                                        nim.qoffset_z, nim.dx, nim.dy, nim.dz, nim.qfac);
  nim.qto_ijk = nifti_dmat44_inverse(nim.qto_xyz);
  nim.sform_code = like.sform_code;
  nim.sto_xyz = to_dmat44(like.sto_xyz);
  nim.sto_ijk = like.sform_code > 0 ? nifti_dmat44_inverse(nim.sto_xyz) : nim.sto_xyz;
  nim.xyz_units = like.xyz_units;
  nim.time_units = like.time_units;
  nim.freq_dim = like.freq_dim;
  nim.phase_dim = like.phase_dim;
  nim.slice_dim = like.slice_dim;
  nim.slice_code = like.slice_code;
  nim.slice_start = like.slice_start;
  nim.slice_end = like.slice_end;
  nim.slice_duration = like.slice_duration;
  nim.toffset = like.toffset;
  set_text(nim.descrip, like.descrip);
  set_text(nim.aux_file, like.aux_file);
}

// Removes the temporary files unless the write got as far as renaming them.
struct TempFiles {
  std::vector<std::string> paths;
  ~TempFiles() {
    std::error_code ec;
    for (const std::string& p : paths) fs::remove(p, ec);
  }
};

// A name in the target's folder that no other writer uses: hidden, so a folder scan for inputs (mriae
// train --data DIR) never picks up one left behind by a killed process.
std::string temporary_base(const std::string& path, const std::string& ext) {
  const fs::path p(path);
  const std::string name = p.filename().string();
  std::random_device rd;
  const std::string base = "." + name.substr(0, name.size() - ext.size()) + ".tmp-" + std::to_string(::getpid()) +
                           "-" + std::to_string(rd());
  return (p.parent_path() / base).string();
}

}  // namespace

void check_output_path(const std::string& path) {
  if (nifti_extension(path).empty())
    fail(path, "the output name must end in .nii, .nii.gz, .hdr, .hdr.gz, .img or .img.gz");
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !fs::is_directory(parent, ec)) fail(path, "the folder " + parent.string() + " does not exist");
  if (fs::is_directory(path, ec)) fail(path, "is a folder");
}

void write_volume(const std::string& path, const NiftiHeader& like, const std::array<int64_t, 3>& dims,
                  const std::vector<float>& data) {
  check_output_path(path);
  int64_t voxels = 1;
  for (int64_t d : dims) {
    // NIfTI-1 stores each dimension as a 16-bit integer.
    if (d < 1 || d > std::numeric_limits<int16_t>::max())
      fail(path, "dimension of size " + std::to_string(d) + " cannot be written as NIfTI-1");
    voxels *= d;
  }
  if (int64_t(data.size()) != voxels)
    throw std::invalid_argument(path + ": write_volume got " + std::to_string(data.size()) + " values for " +
                                std::to_string(voxels) + " voxels");

  const int64_t nim_dims[8] = {3, dims[0], dims[1], dims[2], 1, 1, 1, 1};
  NimPtr nim(nifti_make_new_nim(nim_dims, NIFTI_TYPE_FLOAT32, 1));
  if (!nim) fail(path, "niftilib could not make an image (out of memory?)");
  std::memcpy(nim->data, data.data(), data.size() * sizeof(float));
  copy_geometry(like, *nim);
  // Slope 0 means "no scaling" (NIfTI-1), so readers take the floats as stored; slope 1 with intercept 0
  // would be the same map but for x * 1 + 0 turning -0 into +0.
  nim->scl_slope = 0;
  nim->scl_inter = 0;
  nim->cal_min = nim->cal_max = 0;
  nim->intent_code = NIFTI_INTENT_NONE;
  nim->intent_p1 = nim->intent_p2 = nim->intent_p3 = 0;
  set_text(nim->intent_name, "");

  const std::string ext = nifti_extension(path);
  const std::string tmp_base = temporary_base(path, ext);
  // Picks one file or a pair (and sets nifti_type to NIfTI-1 accordingly) and compression from the extension.
  if (nifti_set_filenames(nim.get(), (tmp_base + ext).c_str(), 0, 1) != 0 || !nim->fname || !nim->iname)
    fail(path, "niftilib could not make file names from " + tmp_base + ext);
  const std::string tmp_header = nim->fname, tmp_image = nim->iname;
  const bool pair = tmp_header != tmp_image;
  TempFiles temps;
  temps.paths = {tmp_header};
  if (pair) temps.paths.push_back(tmp_image);

  nifti_image_write(nim.get());
  nim.reset();

  // nifti_image_write reports failures (an unwritable folder, a full disk) only on stderr: the files are
  // read back, which checks that they exist, are complete and hold exactly these values.
  std::error_code ec;
  for (const std::string& t : temps.paths)
    if (!fs::exists(t, ec)) fail(path, "niftilib did not write " + t + " (see its message above)");
  Volume back;
  try {
    back = read_volume(tmp_header);
  } catch (const NiftiError& e) {
    fail(path, std::string("the written file does not read back: ") + e.what());
  }
  if (back.dims != dims || back.header.datatype != NIFTI_TYPE_FLOAT32 ||
      std::memcmp(back.data.data(), data.data(), data.size() * sizeof(float)) != 0)
    fail(path, "the written file " + tmp_header + " does not read back as the volume written");

  // Final names: the target's folder and stem with the suffix niftilib gave each temporary file.
  const std::string stem = path.substr(0, path.size() - ext.size());
  auto target_of = [&](const std::string& t) { return stem + t.substr(tmp_base.size()); };
  if (pair) {
    fs::rename(tmp_image, target_of(tmp_image), ec);
    if (ec) fail(path, "cannot rename " + tmp_image + " to " + target_of(tmp_image) + ": " + ec.message());
  }
  fs::rename(tmp_header, target_of(tmp_header), ec);
  if (ec) fail(path, "cannot rename " + tmp_header + " to " + target_of(tmp_header) + ": " + ec.message());
  temps.paths.clear();
}

}  // namespace mriae::io
