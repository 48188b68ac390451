#pragma once
// The element types a Tensor can hold. float32 is the engine's working precision on both backends; float64
// (CPU only) makes the engine its own oracle: the same model, ops and optimiser with rounding ~1e-16.
#include <cstddef>
#include <string>

namespace mriae {

enum class DType { Float32, Float64 };

const char* dtype_name(DType d);
// Parses "float32" or "float64"; throws std::invalid_argument naming the bad value.
DType parse_dtype(const std::string& name);
inline size_t dtype_size(DType d) { return d == DType::Float64 ? 8 : 4; }

template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::Float32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::Float64; };
template <typename T> constexpr DType dtype_of = DTypeOf<T>::value;

}  // namespace mriae
