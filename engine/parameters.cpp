#include "engine/parameters.h"

#include <stdexcept>

namespace mriae {

void ParameterSet::declare(const std::string& name, const Shape& shape) {
  if (values_.defined()) throw std::logic_error("ParameterSet: declare after allocate");
  for (auto& d : declared_)
    if (d.first == name) throw std::invalid_argument("ParameterSet: duplicate parameter '" + name + "'");
  declared_.emplace_back(name, shape);
  total_ += shape_numel(shape);
}

void ParameterSet::allocate(Device device, DType dtype) {
  values_ = Tensor::zeros({total_}, device, dtype);
  grads_ = Tensor::zeros({total_}, device, dtype);
  int64_t off = 0;
  for (auto& [name, shape] : declared_) {
    Var v(values_.view(off, shape), true);
    v.bind_grad(grads_.view(off, shape));
    entries_.push_back({name, v});
    off += shape_numel(shape);
  }
}

const Var& ParameterSet::at(const std::string& name) const {
  for (auto& e : entries_)
    if (e.name == name) return e.var;
  throw std::out_of_range("no parameter named '" + name + "'");
}

}  // namespace mriae
