#include "model/checkpoint.h"

#include <stdexcept>

#include "model/safetensors.h"

namespace mriae {

namespace {

constexpr const char* kFormat = "mriae-checkpoint";
constexpr const char* kFormatVersion = "1";

void put(SafetensorsFile& f, const std::string& name, const Tensor& t) {
  const Tensor host = t.device() == Device::CPU ? t : t.to(Device::CPU);
  if (t.dtype() == DType::Float64)
    f.add_f64(name, t.shape(), host.data<double>());
  else
    f.add_f32(name, t.shape(), host.data<float>());
}

const char* safetensors_dtype(DType d) { return d == DType::Float64 ? "F64" : "F32"; }

// The tensor `name` as a host tensor of `want`. A tensor of the other float dtype is converted when
// `convert`, refused otherwise.
Tensor get(const SafetensorsFile& f, const std::string& name, const Shape& shape, DType want, bool convert) {
  const std::string& have = f.dtype(name);
  if (have != safetensors_dtype(want) && !convert && (have == "F32" || have == "F64"))
    throw std::runtime_error("tensor '" + name + "' is " + have + " but the model is " + dtype_name(want) +
                             "; resume with --dtype " + (have == "F64" ? "float64" : "float32"));
  const Tensor t = have == "F64" ? Tensor::from_vector(shape, f.f64(name, shape))
                                 : Tensor::from_vector(shape, f.f32(name, shape));  // f32() names a bad dtype
  return t.to(want);
}

void put_i64(SafetensorsFile& f, const std::string& name, int64_t v) { f.add_i64(name, {}, &v); }

std::string bn_name(size_t i) { return "bn" + std::to_string(i + 1); }

}  // namespace

void save_checkpoint(const std::string& path, const Autoencoder& model, const RMSprop* optimizer,
                     const CheckpointMetadata& metadata) {
  SafetensorsFile f;
  f.metadata = metadata;
  f.metadata["format"] = kFormat;
  f.metadata["format_version"] = kFormatVersion;
  f.metadata["dtype"] = dtype_name(model.config().dtype);
  for (auto& e : model.parameters().entries()) put(f, e.name, e.var.value());
  const auto& bns = model.bn_states();
  for (size_t i = 0; i < bns.size(); ++i) {
    put(f, bn_name(i) + ".running_mean", bns[i].moving_mean);
    put(f, bn_name(i) + ".running_var", bns[i].moving_var);
    put_i64(f, bn_name(i) + ".num_batches_tracked", bns[i].steps);
    put(f, "bn_ema." + bn_name(i) + ".hidden_mean", bns[i].hidden_mean);
    put(f, "bn_ema." + bn_name(i) + ".hidden_var", bns[i].hidden_var);
  }
  if (optimizer) {
    put(f, "optimizer.accumulator", optimizer->accumulators());
    put_i64(f, "optimizer.steps", optimizer->steps());
  }
  f.write_atomic(path);
}

CheckpointMetadata load_checkpoint(const std::string& path, Autoencoder& model, RMSprop* optimizer) {
  const SafetensorsFile f = SafetensorsFile::read(path);
  auto meta = f.metadata.find("format");
  if (meta == f.metadata.end() || meta->second != kFormat)
    throw std::runtime_error(path + ": not an mriae checkpoint (no format metadata)");
  if (f.metadata.at("format_version") != kFormatVersion)
    throw std::runtime_error(path + ": checkpoint format version " + f.metadata.at("format_version") +
                             " is not supported (this build reads " + kFormatVersion + ")");
  if (optimizer && !f.tensors.count("optimizer.accumulator"))
    throw std::runtime_error(path + ": holds weights only, no optimiser state to resume from");

  // Read and check everything before touching the model.
  struct Pending {
    Tensor target;
    Tensor values;  // on the host, in the target's dtype
  };
  std::vector<Pending> pending;
  CheckpointMetadata loaded = f.metadata;
  try {
    const DType dt = model.config().dtype;
    const bool convert = optimizer == nullptr;
    auto read = [&](const Tensor& target, const std::string& name) {
      pending.push_back({target, get(f, name, target.shape(), dt, convert)});
    };
    for (auto& e : model.parameters().entries()) read(e.var.value(), e.name);
    loaded["dtype"] = f.dtype(model.parameters().entries().front().name) == "F64" ? "float64" : "float32";
    auto& bns = model.bn_states();
    std::vector<int64_t> steps;
    for (size_t i = 0; i < bns.size(); ++i) {
      read(bns[i].moving_mean, bn_name(i) + ".running_mean");
      read(bns[i].moving_var, bn_name(i) + ".running_var");
      read(bns[i].hidden_mean, "bn_ema." + bn_name(i) + ".hidden_mean");
      read(bns[i].hidden_var, "bn_ema." + bn_name(i) + ".hidden_var");
      steps.push_back(f.i64(bn_name(i) + ".num_batches_tracked", {})[0]);
    }
    int64_t opt_steps = 0;
    if (optimizer) {
      read(optimizer->accumulators(), "optimizer.accumulator");
      opt_steps = f.i64("optimizer.steps", {})[0];
    }
    for (auto& p : pending) p.target.copy_from(p.values);
    for (size_t i = 0; i < bns.size(); ++i) bns[i].steps = steps[i];
    if (optimizer) optimizer->set_steps(opt_steps);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  return loaded;
}

std::string dtype_note(const std::string& path, const CheckpointMetadata& loaded, DType model_dtype) {
  auto it = loaded.find("dtype");
  if (it == loaded.end() || it->second == dtype_name(model_dtype)) return "";
  return path + " holds " + it->second + " weights; converted to " + dtype_name(model_dtype) +
         (model_dtype == DType::Float32 ? " (rounded) for this run; --dtype float64 keeps them exact"
                                        : " (exactly) for this run");
}

}  // namespace mriae
