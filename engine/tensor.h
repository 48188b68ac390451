#pragma once
// A float32 NCHW tensor: a shape, a device tag and a contiguous range of a shared Storage.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/memory.h"

namespace mriae {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;

  static Tensor empty(const Shape& shape, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, Device device = Device::CPU);
  static Tensor full(const Shape& shape, float value, Device device = Device::CPU);
  static Tensor from_vector(const Shape& shape, const std::vector<float>& values, Device device = Device::CPU);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return int(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t bytes() const { return size_t(numel()) * sizeof(float); }
  Device device() const { return device_; }

  float* data() const { return static_cast<float*>(storage_->data()) + offset_; }

  // A tensor sharing this one's memory: numel(shape) elements starting `offset` elements in.
  Tensor view(int64_t offset, const Shape& shape) const;
  Tensor reshape(const Shape& shape) const { return view(0, shape); }

  Tensor to(Device device) const;
  Tensor clone() const { return to(device_); }
  void copy_from(const Tensor& src);
  void zero_();
  std::vector<float> to_vector() const;
  // Only for CPU tensors: element i of the flat data.
  float item(int64_t i = 0) const;

 private:
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;
  Shape shape_;
  Device device_ = Device::CPU;
};

}  // namespace mriae
