#include "engine/dtype.h"

#include <stdexcept>

namespace mriae {

const char* dtype_name(DType d) { return d == DType::Float64 ? "float64" : "float32"; }

DType parse_dtype(const std::string& name) {
  if (name == "float32") return DType::Float32;
  if (name == "float64") return DType::Float64;
  throw std::invalid_argument("unknown dtype '" + name + "' (expected float32 or float64)");
}

}  // namespace mriae
