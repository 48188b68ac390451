#pragma once
// Reader for the parity state files that tests/parity/make_state.py writes (little-endian): magic
// "MRIAEST1", uint32 version, uint32 tensor count, then per tensor uint32 name length, utf-8 name, [v2 only:
// uint32 dtype code, 1 float32 or 2 float64,] uint32 ndim, int64 dims[ndim], data (v1: float32). Tensors
// come back in the dtype stored. Every malformation is an error naming the file, so a bad checkout (a Git
// LFS pointer, a half-written file) fails loudly instead of comparing against garbage.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace mriae::parity {

class StateFile {
 public:
  static constexpr uint32_t kVersion = 1;     // float32 data
  static constexpr uint32_t kVersionF64 = 2;  // a dtype per tensor

  // Throws std::runtime_error on a missing, truncated, over-long or otherwise malformed file.
  static StateFile load(const std::string& path);

  const std::string& path() const { return path_; }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws std::out_of_range naming the file and the tensor when it is absent.
  const Tensor& at(const std::string& name) const;
  // Names in file order.
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::string path_;
  std::vector<std::string> names_;
  std::map<std::string, Tensor> tensors_;
};

}  // namespace mriae::parity
