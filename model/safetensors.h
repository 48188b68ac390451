#pragma once
// The safetensors format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range, then the raw little-endian data. Readable by the `safetensors` package from
// PyTorch and NumPy. Only F32, F64 and I64 tensors are used here.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mriae {

struct SafeTensor {
  std::string dtype;  // "F32", "F64" or "I64"
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

class SafetensorsFile {
 public:
  std::map<std::string, SafeTensor> tensors;
  std::map<std::string, std::string> metadata;

  void add_f32(const std::string& name, const std::vector<int64_t>& shape, const float* data);
  void add_f64(const std::string& name, const std::vector<int64_t>& shape, const double* data);
  void add_i64(const std::string& name, const std::vector<int64_t>& shape, const int64_t* data);
  // Throws naming the tensor when it is absent.
  const std::string& dtype(const std::string& name) const;
  // Throws naming the tensor when it is absent or of another dtype or shape.
  std::vector<float> f32(const std::string& name, const std::vector<int64_t>& shape) const;
  std::vector<double> f64(const std::string& name, const std::vector<int64_t>& shape) const;
  std::vector<int64_t> i64(const std::string& name, const std::vector<int64_t>& shape) const;

  // Writes to PATH.tmp, flushes it to disk, then renames it over PATH: a crash or a full disk never leaves
  // a half-written file at PATH, and the previous file stays intact until the new one is complete.
  void write_atomic(const std::string& path) const;
  // Throws std::runtime_error naming the file and the problem (missing, truncated, bad header, bad ranges).
  static SafetensorsFile read(const std::string& path);
};

}  // namespace mriae
