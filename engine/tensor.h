#pragma once
// An NCHW tensor: a shape, an element type, a device tag and a contiguous range of a shared Storage.
// float64 tensors live on the CPU only (the CUDA backend computes in float32): creating one on the GPU is
// an error. data() is the float32 accessor the float32-only code uses; data<T>() checks T against dtype().
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/dtype.h"
#include "engine/memory.h"

namespace mriae {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;

  // Throw std::invalid_argument for a float64 tensor on the GPU.
  static Tensor empty(const Shape& shape, Device device = Device::CPU, DType dtype = DType::Float32);
  static Tensor zeros(const Shape& shape, Device device = Device::CPU, DType dtype = DType::Float32);
  // value is rounded to dtype.
  static Tensor full(const Shape& shape, double value, Device device = Device::CPU, DType dtype = DType::Float32);
  static Tensor from_vector(const Shape& shape, const std::vector<float>& values, Device device = Device::CPU);
  // A float64 tensor from doubles (a template only so that from_vector(shape, {1, 2}) stays float32).
  template <typename T>
  static Tensor from_vector(const Shape& shape, const std::vector<T>& values, Device device = Device::CPU);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return int(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t bytes() const { return size_t(numel()) * dtype_size(dtype_); }
  Device device() const { return device_; }
  DType dtype() const { return dtype_; }

  // Throws std::logic_error when T is not the tensor's element type.
  template <typename T> T* data() const {
    if (dtype_ != dtype_of<T>) wrong_dtype(dtype_of<T>);
    return static_cast<T*>(storage_->data()) + offset_;
  }
  float* data() const { return data<float>(); }
  // The first element, untyped: for code that hands it on by dtype (gradient targets, raw copies).
  void* raw_data() const;

  // A tensor sharing this one's memory: numel(shape) elements starting `offset` elements in.
  Tensor view(int64_t offset, const Shape& shape) const;
  Tensor reshape(const Shape& shape) const { return view(0, shape); }

  Tensor to(Device device) const;
  // A copy converted to dtype (rounded to nearest for float64 to float32); the same tensor when it already
  // is. Converts through the host for a GPU tensor.
  Tensor to(DType dtype) const;
  Tensor clone() const { return to(device_); }
  // Same element count and dtype (convert with to(DType) first); throws otherwise.
  void copy_from(const Tensor& src);
  void zero_();
  // The elements as T, which must be the tensor's dtype.
  template <typename T = float> std::vector<T> to_vector() const;
  // Element i of the flat data, of either dtype (a GPU tensor is copied to the host first).
  double item(int64_t i = 0) const;

 private:
  [[noreturn]] void wrong_dtype(DType asked) const;

  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;
  Shape shape_;
  Device device_ = Device::CPU;
  DType dtype_ = DType::Float32;
};

}  // namespace mriae
