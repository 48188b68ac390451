#pragma once
// Trainable parameters held in one flat value buffer and one flat gradient buffer, so the optimiser
// updates all of them in one pass (one kernel launch on the GPU) and checkpoints are one copy.
#include <string>
#include <vector>

#include "engine/autograd.h"

namespace mriae {

class ParameterSet {
 public:
  struct Entry {
    std::string name;
    Var var;
  };

  // Shapes are declared first, then allocate() makes the flat buffers and the Vars viewing them.
  void declare(const std::string& name, const Shape& shape);
  void allocate(Device device, DType dtype = DType::Float32);

  const std::vector<Entry>& entries() const { return entries_; }
  const Var& at(const std::string& name) const;
  const Var& operator[](size_t i) const { return entries_.at(i).var; }
  size_t size() const { return entries_.size(); }
  int64_t numel() const { return total_; }

  const Tensor& flat_values() const { return values_; }
  const Tensor& flat_grads() const { return grads_; }
  void zero_grad() { grads_.zero_(); }

 private:
  std::vector<std::pair<std::string, Shape>> declared_;
  std::vector<Entry> entries_;
  Tensor values_, grads_;
  int64_t total_ = 0;
};

}  // namespace mriae
