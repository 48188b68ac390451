#pragma once
// Helpers for the io tests: a temporary directory that removes itself, and writing images with niftilib
// directly (not through the code under test), so that read-back compares against independent files.
#include <nifti2_io.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

namespace mriae::io::testing {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("mriae_io_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Writes an image of the given dims (up to 7) and niftilib datatype; `bytes` must be nvox * nbyper. The
// file kind follows the name (.nii, .nii.gz, .hdr/.img) and `version` (1 or 2). `tweak` may change header
// fields (scaling, qform...) before writing. Version 0 writes an ANALYZE 7.5 .hdr/.img pair.
inline void write_image(const std::string& path, const std::vector<int64_t>& dims, int datatype, const void* bytes,
                        int version = 1, const std::function<void(nifti_image&)>& tweak = {}) {
  int64_t d[8] = {int64_t(dims.size()), 1, 1, 1, 1, 1, 1, 1};
  for (size_t i = 0; i < dims.size(); ++i) d[i + 1] = dims[i];
  nifti_image* nim = nifti_make_new_nim(d, datatype, 1);
  if (!nim) throw std::runtime_error("nifti_make_new_nim failed for " + path);
  std::memcpy(nim->data, bytes, size_t(nim->nvox) * size_t(nim->nbyper));
  if (tweak) tweak(*nim);
  // nifti_set_filenames picks the file type from the name (one file or a pair) and resets nifti_type, so
  // the version is set afterwards.
  if (nifti_set_filenames(nim, path.c_str(), 0, 1) != 0) {
    nifti_image_free(nim);
    throw std::runtime_error("nifti_set_filenames failed for " + path);
  }
  const std::string written = nim->fname;
  if (version == 0) nim->nifti_type = NIFTI_FTYPE_ANALYZE;
  if (version == 2) {
    // niftilib 3.0.1 writes NIfTI-1 whatever nifti_type says (or, for a one-file NIfTI-2, overwrites the
    // header with the data), so a NIfTI-2 .nii is put together here: its header, an empty extension
    // flag, then the data at vox_offset 544.
    if (nim->nifti_type != NIFTI_FTYPE_NIFTI1_1 || nifti_is_gzfile(path.c_str())) {
      nifti_image_free(nim);
      throw std::runtime_error("write_image writes NIfTI-2 only as an uncompressed .nii: " + path);
    }
    nim->nifti_type = NIFTI_FTYPE_NIFTI2_1;
    nim->iname_offset = 544;
    nifti_2_header h;
    const int bad = nifti_convert_nim2n2hdr(nim, &h);
    const size_t data_bytes = size_t(nim->nvox) * size_t(nim->nbyper);
    std::vector<char> file(544 + data_bytes, 0);
    std::memcpy(file.data(), &h, sizeof h);
    std::memcpy(file.data() + 544, nim->data, data_bytes);
    nifti_image_free(nim);
    if (bad || sizeof h != 540) throw std::runtime_error("cannot make a NIfTI-2 header for " + path);
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(file.data(), std::streamsize(file.size()));
    if (!f) throw std::runtime_error("cannot write " + path);
    return;
  }
  nifti_image_write(nim);
  nifti_image_free(nim);
  if (!std::filesystem::exists(written)) throw std::runtime_error("niftilib did not write " + written);
}

inline std::vector<char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

// A float32 volume with distinct values v(i, j, k) = 1000 k + 100 j + i + 1 (x fastest, as on disk).
inline std::vector<float> ramp_volume(int64_t nx, int64_t ny, int64_t nz) {
  std::vector<float> v(size_t(nx * ny * nz));
  for (int64_t k = 0; k < nz; ++k)
    for (int64_t j = 0; j < ny; ++j)
      for (int64_t i = 0; i < nx; ++i) v[size_t(i + nx * (j + ny * k))] = float(1000 * k + 100 * j + i + 1);
  return v;
}

}  // namespace mriae::io::testing
