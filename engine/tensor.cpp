#include "engine/tensor.h"

#include <sstream>
#include <stdexcept>

namespace mriae {

std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << '(';
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << ')';
  return o.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw std::invalid_argument("negative dimension in shape " + shape_str(s));
    n *= d;
  }
  return n;
}

Tensor Tensor::empty(const Shape& shape, Device device, DType dtype) {
  if (device == Device::CUDA && dtype != DType::Float32)
    throw std::invalid_argument(std::string("a ") + dtype_name(dtype) + " tensor of shape " + shape_str(shape) +
                                " on cuda: the CUDA backend computes in float32 only (use the cpu device for " +
                                dtype_name(dtype) + ")");
  Tensor t;
  t.shape_ = shape;
  t.device_ = device;
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dtype), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, Device device, DType dtype) {
  Tensor t = empty(shape, device, dtype);
  t.zero_();
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, Device device, DType dtype) {
  const size_t n = size_t(shape_numel(shape));
  if (dtype == DType::Float64) return from_vector(shape, std::vector<double>(n, value), device);
  return from_vector(shape, std::vector<float>(n, float(value)), device);
}

namespace {

template <typename T> Tensor tensor_of(const Shape& shape, const std::vector<T>& values, Device device) {
  if (int64_t(values.size()) != shape_numel(shape))
    throw std::invalid_argument("from_vector: " + std::to_string(values.size()) + " values for shape " +
                                shape_str(shape));
  Tensor t = Tensor::empty(shape, device, dtype_of<T>);
  copy_bytes(t.data<T>(), device, values.data(), Device::CPU, t.bytes());
  return t;
}

}  // namespace

Tensor Tensor::from_vector(const Shape& shape, const std::vector<float>& values, Device device) {
  return tensor_of(shape, values, device);
}

template <typename T> Tensor Tensor::from_vector(const Shape& shape, const std::vector<T>& values, Device device) {
  return tensor_of(shape, values, device);
}
template Tensor Tensor::from_vector<double>(const Shape&, const std::vector<double>&, Device);

void Tensor::wrong_dtype(DType asked) const {
  throw std::logic_error(std::string("a ") + dtype_name(dtype_) + " tensor of shape " + shape_str(shape_) +
                         " read as " + dtype_name(asked));
}

Tensor Tensor::view(int64_t offset, const Shape& shape) const {
  const int64_t n = shape_numel(shape);
  if (offset < 0 || offset + n > int64_t(storage_->bytes() / dtype_size(dtype_)) - offset_)
    throw std::out_of_range("view of " + std::to_string(n) + " elements at offset " + std::to_string(offset) +
                            " does not fit a tensor of shape " + shape_str(shape_));
  Tensor t = *this;
  t.offset_ = offset_ + offset;
  t.shape_ = shape;
  return t;
}

void* Tensor::raw_data() const { return static_cast<char*>(storage_->data()) + size_t(offset_) * dtype_size(dtype_); }

Tensor Tensor::to(Device device) const {
  Tensor t = empty(shape_, device, dtype_);
  copy_bytes(t.raw_data(), device, raw_data(), device_, bytes());
  return t;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  if (device_ != Device::CPU) return to(Device::CPU).to(dtype).to(device_);
  Tensor t = empty(shape_, Device::CPU, dtype);
  const int64_t n = numel();
  if (dtype == DType::Float64) {
    const float* s = data<float>();
    double* d = t.data<double>();
    for (int64_t i = 0; i < n; ++i) d[i] = s[i];
  } else {
    const double* s = data<double>();
    float* d = t.data<float>();
    for (int64_t i = 0; i < n; ++i) d[i] = float(s[i]);
  }
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  if (src.numel() != numel())
    throw std::invalid_argument("copy_from: shape " + shape_str(src.shape()) + " into " + shape_str(shape_));
  if (src.dtype() != dtype_)
    throw std::invalid_argument(std::string("copy_from: a ") + dtype_name(src.dtype()) + " tensor into a " +
                                dtype_name(dtype_) + " one (convert it with to(DType) first)");
  copy_bytes(raw_data(), device_, src.raw_data(), src.device(), bytes());
}

void Tensor::zero_() { zero_bytes(raw_data(), device_, bytes()); }

template <typename T> std::vector<T> Tensor::to_vector() const {
  std::vector<T> v(static_cast<size_t>(numel()));
  copy_bytes(v.data(), Device::CPU, data<T>(), device_, bytes());
  return v;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;

double Tensor::item(int64_t i) const {
  if (device_ != Device::CPU) return to(Device::CPU).item(i);
  if (i < 0 || i >= numel()) throw std::out_of_range("item index out of range");
  return dtype_ == DType::Float64 ? data<double>()[i] : double(data<float>()[i]);
}

}  // namespace mriae
