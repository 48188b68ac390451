#include "model/checkpoint.h"

#include <stdexcept>

#include "model/safetensors.h"

namespace mriae {

namespace {

constexpr const char* kFormat = "mriae-checkpoint";
constexpr const char* kFormatVersion = "1";

void put(SafetensorsFile& f, const std::string& name, const Tensor& t) {
  const std::vector<float> v = t.to_vector();
  f.add_f32(name, t.shape(), v.data());
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
    std::vector<float> values;
  };
  std::vector<Pending> pending;
  try {
    for (auto& e : model.parameters().entries())
      pending.push_back({e.var.value(), f.f32(e.name, e.var.value().shape())});
    auto& bns = model.bn_states();
    std::vector<int64_t> steps;
    for (size_t i = 0; i < bns.size(); ++i) {
      const Shape c = bns[i].moving_mean.shape();
      pending.push_back({bns[i].moving_mean, f.f32(bn_name(i) + ".running_mean", c)});
      pending.push_back({bns[i].moving_var, f.f32(bn_name(i) + ".running_var", c)});
      pending.push_back({bns[i].hidden_mean, f.f32("bn_ema." + bn_name(i) + ".hidden_mean", c)});
      pending.push_back({bns[i].hidden_var, f.f32("bn_ema." + bn_name(i) + ".hidden_var", c)});
      steps.push_back(f.i64(bn_name(i) + ".num_batches_tracked", {})[0]);
    }
    int64_t opt_steps = 0;
    if (optimizer) {
      pending.push_back({optimizer->accumulators(), f.f32("optimizer.accumulator", optimizer->accumulators().shape())});
      opt_steps = f.i64("optimizer.steps", {})[0];
    }
    for (auto& p : pending) p.target.copy_from(Tensor::from_vector(p.target.shape(), p.values));
    for (size_t i = 0; i < bns.size(); ++i) bns[i].steps = steps[i];
    if (optimizer) optimizer->set_steps(opt_steps);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  return f.metadata;
}

}  // namespace mriae
