// libFuzzer target for the NIfTI reader: arbitrary bytes as a .nii or .nii.gz file must give a volume
// summary or a NiftiError, never a crash, a hang or an unbounded allocation.
//
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DMRIAE_CUDA=OFF -DMRIAE_FUZZ=ON
//   make -C build-fuzz nifti_reader_fuzzer && build-fuzz/io/nifti_reader_fuzzer -max_len=4096 CORPUS_DIR
#include <nifti2_io.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "io/nifti_volume.h"

namespace {

std::string scratch_path(const char* suffix) {
  return (std::filesystem::temp_directory_path() / ("mriae_fuzz_" + std::to_string(::getpid()) + suffix)).string();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  nifti_set_debug_level(0);  // niftilib's stderr reports would drown the fuzzer's own output
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The first byte picks the file kind, so both the plain and the gzip paths are explored.
  if (size < 1) return 0;
  const bool gz = data[0] & 1;
  const std::string path = scratch_path(gz ? ".nii.gz" : ".nii");
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data + 1), std::streamsize(size - 1));
  }
  try {
    (void)mriae::io::summarize_image(path);
    mriae::io::ReadOptions first;
    first.frame = 0;
    (void)mriae::io::read_volume(path, first);
  } catch (const mriae::io::NiftiError&) {
  }
  std::remove(path.c_str());
  return 0;
}
