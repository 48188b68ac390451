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

Tensor Tensor::empty(const Shape& shape, Device device) {
  Tensor t;
  t.shape_ = shape;
  t.device_ = device;
  t.storage_ = std::make_shared<Storage>(size_t(shape_numel(shape)) * sizeof(float), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, Device device) {
  Tensor t = empty(shape, device);
  t.zero_();
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  return from_vector(shape, std::vector<float>(size_t(shape_numel(shape)), value), device);
}

Tensor Tensor::from_vector(const Shape& shape, const std::vector<float>& values, Device device) {
  if (int64_t(values.size()) != shape_numel(shape))
    throw std::invalid_argument("from_vector: " + std::to_string(values.size()) + " values for shape " +
                                shape_str(shape));
  Tensor t = empty(shape, device);
  copy_bytes(t.data(), device, values.data(), Device::CPU, t.bytes());
  return t;
}

Tensor Tensor::view(int64_t offset, const Shape& shape) const {
  const int64_t n = shape_numel(shape);
  if (offset < 0 || offset + n > int64_t(storage_->bytes() / sizeof(float)) - offset_)
    throw std::out_of_range("view of " + std::to_string(n) + " elements at offset " + std::to_string(offset) +
                            " does not fit a tensor of shape " + shape_str(shape_));
  Tensor t = *this;
  t.offset_ = offset_ + offset;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::to(Device device) const {
  Tensor t = empty(shape_, device);
  copy_bytes(t.data(), device, data(), device_, bytes());
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  if (src.numel() != numel())
    throw std::invalid_argument("copy_from: shape " + shape_str(src.shape()) + " into " + shape_str(shape_));
  copy_bytes(data(), device_, src.data(), src.device(), bytes());
}

void Tensor::zero_() { zero_bytes(data(), device_, bytes()); }

std::vector<float> Tensor::to_vector() const {
  std::vector<float> v(static_cast<size_t>(numel()));
  copy_bytes(v.data(), Device::CPU, data(), device_, bytes());
  return v;
}

float Tensor::item(int64_t i) const {
  if (device_ != Device::CPU) return to(Device::CPU).item(i);
  if (i < 0 || i >= numel()) throw std::out_of_range("item index out of range");
  return data()[i];
}

}  // namespace mriae
