#pragma once
// Reverse-mode autograd on an explicit tape. Each op computes its forward result and, when given a tape
// and an input that needs a gradient, records a closure holding what its backward needs. Recording
// order is a topological order, so Tape::backward runs the closures in reverse.
#include <functional>
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace mriae {

class Var {
 public:
  Var() = default;
  explicit Var(Tensor value, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  const Tensor& value() const { return impl_->value; }
  bool requires_grad() const { return impl_->requires_grad; }
  const Shape& shape() const { return impl_->value.shape(); }
  Device device() const { return impl_->value.device(); }
  DType dtype() const { return impl_->value.dtype(); }

  bool has_grad() const { return impl_->grad.defined(); }
  const Tensor& grad() const { return impl_->grad; }
  // The gradient buffer to accumulate into, zero-filled on first use.
  Tensor& grad_accumulator() const;
  // The gradient buffer for a backward that can either write or accumulate. On first use it is left
  // unfilled and accumulate is false: the caller must then write every element, which saves the zero fill
  // and the read of zeros (in this model each activation has exactly one consumer).
  struct GradTarget {
    void* ptr;  // of the value's dtype
    bool accumulate;
    template <typename T = float> T* data() const { return static_cast<T*>(ptr); }
  };
  GradTarget grad_target() const;
  // Makes the gradient live in a caller-owned buffer (a parameter's slice of a flat gradient).
  void bind_grad(Tensor grad);
  void drop_grad();

 private:
  struct Impl {
    Tensor value;
    Tensor grad;
    bool requires_grad = false;
    bool grad_bound = false;
  };
  std::shared_ptr<Impl> impl_;
};

class Tape {
 public:
  void record(std::function<void()> backward) { steps_.push_back(std::move(backward)); }
  // Seeds d(loss)/d(loss) = 1 for a one-element loss, runs every recorded backward in reverse and
  // empties the tape, releasing the activations it held. `seed` replaces the 1: the weight of this
  // process's loss in a loss shared by several (data parallelism: its share of the global batch).
  void backward(Var& loss, double seed = 1.0);
  void clear() { steps_.clear(); }
  size_t size() const { return steps_.size(); }

 private:
  std::vector<std::function<void()>> steps_;
};

}  // namespace mriae
