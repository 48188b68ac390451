#include "apps/trace.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "engine/dtype.h"
#include "engine/rmsprop.h"
#include "io/slice_dataset.h"
#include "model/autoencoder.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"

namespace mriae {

namespace {

std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

void put(SafetensorsFile& f, const std::string& name, const Tensor& t) {
  const Tensor host = t.device() == Device::CPU ? t : t.to(Device::CPU);
  if (host.dtype() == DType::Float64)
    f.add_f64(name, host.shape(), host.data<double>());
  else
    f.add_f32(name, host.shape(), host.data<float>());
}

void put_i64(SafetensorsFile& f, const std::string& name, int64_t v) { f.add_i64(name, {}, &v); }

// Parameters, RMSprop accumulators (per parameter, in the parameter's shape) and batchnorm state, under
// `prefix` with the checkpoint's names.
void put_state(SafetensorsFile& f, const std::string& prefix, const Autoencoder& model, const RMSprop& opt) {
  const ParameterSet& ps = model.parameters();
  const Tensor& acc = opt.accumulators();
  int64_t offset = 0;
  for (auto& e : ps.entries()) {
    put(f, prefix + e.name, e.var.value());
    const int64_t n = e.var.value().numel();
    put(f, prefix + "optimizer.accumulator." + e.name, acc.view(offset, e.var.shape()));
    offset += n;
  }
  put_i64(f, prefix + "optimizer.steps", opt.steps());
  const auto& bns = model.bn_states();
  for (size_t i = 0; i < bns.size(); ++i) {
    const std::string bn = "bn" + std::to_string(i + 1);
    put(f, prefix + bn + ".running_mean", bns[i].moving_mean);
    put(f, prefix + bn + ".running_var", bns[i].moving_var);
    put_i64(f, prefix + bn + ".num_batches_tracked", bns[i].steps);
    put(f, prefix + "bn_ema." + bn + ".hidden_mean", bns[i].hidden_mean);
    put(f, prefix + "bn_ema." + bn + ".hidden_var", bns[i].hidden_var);
  }
}

// The batches as one host tensor [steps * batch, 1, H, W] of float32 (or float64 from an F64 --input).
Tensor read_input(const TraceOptions& o, DType dtype) {
  const int64_t need = o.batch * o.steps;
  if (!o.input.empty()) {
    const SafetensorsFile f = SafetensorsFile::read(o.input);
    if (!f.tensors.count("input"))
      throw std::invalid_argument("--input " + o.input + ": no tensor named 'input' (want [N, 1, H, W])");
    const SafeTensor& t = f.tensors.at("input");
    if (t.shape.size() != 4 || t.shape[1] != 1 || t.shape[2] % 4 || t.shape[3] % 4 || t.shape[2] == 0 || t.shape[3] == 0)
      throw std::invalid_argument("--input " + o.input + ": 'input' must be [N, 1, H, W] with H and W multiples of 4");
    if (t.shape[0] != o.batch && t.shape[0] < need)
      throw std::invalid_argument("--input " + o.input + ": " + std::to_string(t.shape[0]) + " images, but --batch " +
                                  std::to_string(o.batch) + " --steps " + std::to_string(o.steps) + " needs " +
                                  std::to_string(need) + " (or exactly " + std::to_string(o.batch) +
                                  ", the same batch every step)");
    if (t.dtype == "F64" && dtype != DType::Float64)
      throw std::invalid_argument("--input " + o.input + ": float64 images for a float32 trace (use --dtype float64)");
    const Shape s(t.shape.begin(), t.shape.end());
    Tensor x = t.dtype == "F64" ? Tensor::from_vector(s, f.f64("input", t.shape)) : Tensor::from_vector(s, f.f32("input", t.shape));
    const Tensor d = x.to(DType::Float64);
    const double* p = d.data<double>();
    for (int64_t i = 0; i < d.numel(); ++i)
      if (!std::isfinite(p[i])) throw std::invalid_argument("--input " + o.input + ": 'input' holds NaN or infinite values");
    return x;
  }
  io::DatasetOptions dopt;
  dopt.normalize = io::NormalizeMethod::Percentile;
  dopt.conform = io::ConformOptions{};
  dopt.split.validation_fraction = 0;
  const io::SliceDataset ds = io::build_slice_dataset(o.data, dopt);
  const int64_t count = ds.slices.count(), h = ds.slices.height(), w = ds.slices.width();
  if (count < need)
    throw std::invalid_argument("--data: " + std::to_string(count) + " slices, but --batch " + std::to_string(o.batch) +
                                " --steps " + std::to_string(o.steps) + " needs " + std::to_string(need));
  std::vector<float> v(size_t(need * h * w));
  for (int64_t i = 0; i < need; ++i) ds.slices.copy_slice(i, v.data() + i * h * w);
  return Tensor::from_vector({need, 1, h, w}, v);
}

}  // namespace

void write_trace(const TraceOptions& o) {
  if (o.out.empty()) throw std::invalid_argument("--out: a trace file is required");
  if (o.batch < 1) throw std::invalid_argument("--batch must be at least 1, got " + std::to_string(o.batch));
  if (o.batch < 2)
    throw std::invalid_argument("--batch 1: the Bessel-corrected variance of the moving statistics needs 2 images");
  if (o.steps < 1 || o.steps > 100) throw std::invalid_argument("--steps must be 1 to 100, got " + std::to_string(o.steps));
  if (!o.weights.empty() && o.seed_given) throw std::invalid_argument("give --weights or --seed, not both");
  if (o.data.empty() == o.input.empty()) throw std::invalid_argument("give --data or --input (one of them)");
  DType dtype;
  try {
    dtype = parse_dtype(o.dtype);
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("--dtype: ") + e.what());
  }
  const std::filesystem::path out_dir = std::filesystem::path(o.out).parent_path();
  if (!out_dir.empty() && !std::filesystem::is_directory(out_dir))
    throw std::invalid_argument("--out " + o.out + ": folder " + out_dir.string() + " does not exist");

  const Tensor all = read_input(o, dtype);

  AutoencoderConfig cfg;
  cfg.seed = o.seed;
  cfg.device = Device::CPU;
  cfg.dtype = dtype;
  Autoencoder model(cfg);
  std::string source = "seed " + std::to_string(o.seed);
  if (!o.weights.empty()) {
    const CheckpointMetadata meta = load_checkpoint(o.weights, model, nullptr);
    const std::string note = dtype_note(o.weights, meta, dtype);
    if (!note.empty()) std::fprintf(stderr, "%s\n", note.c_str());
    source = "weights " + o.weights;
  }
  RMSprop opt(model.parameters(), RMSpropOptions{});

  SafetensorsFile f;
  const BatchNormOptions& bn = model.config().bn;
  const RMSpropOptions& ro = opt.options();
  f.metadata = {
      {"format", "mriae-trace"},
      {"format_version", kTraceFormatVersion},
      {"dtype", dtype_name(dtype)},
      {"device", "cpu"},
      {"steps", std::to_string(o.steps)},
      {"batch", std::to_string(o.batch)},
      {"source", source},
      {"layers", "conv1,bn1,conv2,bn2,pool1,conv3,bn3,conv4,bn4,pool2,conv5,bn5,conv6,bn6,conv7,bn7,conv8,bn8,up1,"
                 "conv9,bn9,conv10,bn10,up2,conv11,sigmoid"},
      {"block", "convN = conv 3x3 same with bias (before ReLU); bnN = batchnorm(relu(convN)), training mode: batch "
                "mean and biased batch variance"},
      {"bn_eps", num(bn.eps)},
      {"bn_momentum", num(bn.momentum)},
      {"bn_moving_stats", "keras-2.2: zero-debiased EMA (hidden = m*hidden + (1-m)*value, published = hidden / "
                          "(1 - m^t)) of the batch mean and the Bessel-corrected batch variance var*n/(n-1)"},
      {"rmsprop", "keras-2.2: a = rho*a + (1-rho)*g^2; p -= lr*g / (sqrt(a) + eps), eps outside the square root, "
                  "a from 0"},
      {"rmsprop_lr", num(ro.lr)},
      {"rmsprop_rho", num(ro.rho)},
      {"rmsprop_eps", num(ro.eps)},
      {"maxpool", "2x2 stride 2; gradient to the first maximum in row-major order"},
      {"upsample", "nearest, x2"},
      {"loss", "mse: mean over all N*H*W elements, target = input"},
      {"names", "init/* and stepK/after/*: state_dict names, optimizer.accumulator.<param>, optimizer.steps, "
                "bn_ema.bnN.hidden_mean|hidden_var; stepK/input, stepK/act/<layer>, stepK/loss, "
                "stepK/act_grad/<layer> (dloss/d layer output), stepK/grad/<param>"},
  };
  put_state(f, "init/", model, opt);

  const int64_t h = all.dim(2), w = all.dim(3), plane = h * w;
  for (int k = 1; k <= o.steps; ++k) {
    const std::string p = "step" + std::to_string(k) + "/";
    const int64_t first = all.dim(0) == o.batch ? 0 : (k - 1) * o.batch;
    const Tensor x = all.to(dtype).view(first * plane, {o.batch, 1, h, w}).clone();
    put(f, p + "input", x);

    Tape tape;
    model.parameters().zero_grad();
    std::vector<std::pair<std::string, Var>> acts;
    const LayerObserver observe = [&acts](const std::string& name, const Var& v) { acts.emplace_back(name, v); };
    Var loss = mse_loss(&tape, model.forward(&tape, Var(x), true, &observe), x);
    tape.backward(loss);
    if (!std::isfinite(loss.value().item()))
      throw std::runtime_error("step " + std::to_string(k) + ": the loss is not finite; no trace written");
    for (auto& [name, v] : acts) put(f, p + "act/" + name, v.value());
    put(f, p + "loss", loss.value());
    for (auto& [name, v] : acts) {
      if (!v.has_grad()) throw std::logic_error("trace: layer " + name + " has no gradient after backward");
      put(f, p + "act_grad/" + name, v.grad());
    }
    for (auto& e : model.parameters().entries()) put(f, p + "grad/" + e.name, e.var.grad());
    opt.step();
    put_state(f, p + "after/", model, opt);
  }
  f.write_atomic(o.out);
}

}  // namespace mriae
