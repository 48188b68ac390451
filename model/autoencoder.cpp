#include "model/autoencoder.h"

#include <cmath>
#include <stdexcept>

#include "engine/random.h"

namespace mriae {

const std::vector<LayerSpec>& Autoencoder::layers() {
  static const std::vector<LayerSpec> specs = [] {
    std::vector<LayerSpec> l;
    int conv = 0, bn = 0, pool = 0, up = 0, c = 1;
    auto block = [&](int out) {
      l.push_back({LayerSpec::Conv, ++conv, c, out});
      l.push_back({LayerSpec::BatchNorm, ++bn, out, out});
      c = out;
    };
    block(32), block(32), l.push_back({LayerSpec::MaxPool, ++pool, c, c});
    block(64), block(64), l.push_back({LayerSpec::MaxPool, ++pool, c, c});
    block(128), block(128);
    block(64), block(64), l.push_back({LayerSpec::Upsample, ++up, c, c});
    block(32), block(32), l.push_back({LayerSpec::Upsample, ++up, c, c});
    l.push_back({LayerSpec::Conv, ++conv, c, 1});
    return l;
  }();
  return specs;
}

int64_t Autoencoder::trainable_count() {
  int64_t n = 0;
  for (auto& s : layers()) {
    if (s.kind == LayerSpec::Conv) n += int64_t(s.channels) * s.in_channels * 9 + s.channels;
    if (s.kind == LayerSpec::BatchNorm) n += 2 * s.channels;
  }
  return n;
}

int64_t Autoencoder::non_trainable_count() {
  int64_t n = 0;
  for (auto& s : layers())
    if (s.kind == LayerSpec::BatchNorm) n += 2 * s.channels;
  return n;
}

Autoencoder::Autoencoder(const AutoencoderConfig& config) : config_(config) {
  for (auto& s : layers()) {
    const std::string i = std::to_string(s.index);
    if (s.kind == LayerSpec::Conv) {
      params_.declare("conv" + i + ".weight", {s.channels, s.in_channels, 3, 3});
      params_.declare("conv" + i + ".bias", {s.channels});
    } else if (s.kind == LayerSpec::BatchNorm) {
      params_.declare("bn" + i + ".weight", {s.channels});
      params_.declare("bn" + i + ".bias", {s.channels});
    }
  }
  params_.allocate(config.device, config.dtype);

  // Glorot uniform with fan_in = 9*Cin and fan_out = 9*Cout, drawn on the host in declaration order.
  Rng rng(config.seed);
  for (auto& e : params_.entries()) {
    const Tensor& v = e.var.value();
    std::vector<float> host(size_t(v.numel()), 0.0f);
    if (e.name.rfind("conv", 0) == 0 && v.ndim() == 4) {
      const double limit = std::sqrt(6.0 / (9.0 * double(v.dim(1) + v.dim(0))));
      for (float& h : host) h = float(rng.uniform(-limit, limit));
    } else if (e.name.rfind("bn", 0) == 0 && e.name.size() > 7 && e.name.compare(e.name.size() - 7, 7, ".weight") == 0) {
      std::fill(host.begin(), host.end(), 1.0f);
    }
    Tensor(v).copy_from(Tensor::from_vector(v.shape(), host).to(config.dtype));
  }
  for (auto& s : layers())
    if (s.kind == LayerSpec::BatchNorm) bn_.push_back(BatchNormState::create(s.channels, config.device, config.dtype));
}

Tensor Autoencoder::input(const Tensor& batch) const {
  if (batch.dtype() == config_.dtype) return batch.device() == config_.device ? batch : batch.to(config_.device);
  // Convert on the host: a float64 model is CPU only.
  const Tensor host = batch.device() == Device::CPU ? batch : batch.to(Device::CPU);
  return host.to(config_.dtype).to(config_.device);
}

Var Autoencoder::forward(Tape* tape, const Var& x, bool training, const LayerObserver* observer) {
  const Shape& s = x.shape();
  if (s.size() != 4 || s[1] != 1 || s[2] % 4 != 0 || s[3] % 4 != 0 || s[2] == 0 || s[3] == 0)
    throw std::invalid_argument("autoencoder input must be [N, 1, H, W] with H and W divisible by 4, got " +
                                shape_str(s));
  if (x.device() != config_.device)
    throw std::invalid_argument(std::string("autoencoder input is on ") + device_name(x.device()) +
                                " but the model is on " + device_name(config_.device));
  if (x.dtype() != config_.dtype)
    throw std::invalid_argument(std::string("autoencoder input is ") + dtype_name(x.dtype()) + " but the model is " +
                                dtype_name(config_.dtype) + " (convert the batch with Autoencoder::input)");
  Var h = x;
  // Every conv but the last is followed by its ReLU and batchnorm, run as one op (conv_relu_batchnorm) so
  // that on the GPU the bias add happens in the batchnorm's reads; the conv waits here for its batchnorm.
  // An upsampling waits for the conv after it, which reads it (ConvInput::Upsampled2), and a block followed by
  // a max pooling takes the pooling in (BlockOutput::MaxPooled2): in inference on the CPU neither the
  // upsampled tensor nor the block's full-size output is then written out whole. An observer sees every op.
  std::string pending_conv;
  bool pending_upsample = false;
  ConvInput pending_input = ConvInput::AsIs;
  const std::vector<LayerSpec>& specs = layers();
  for (size_t li = 0; li < specs.size(); ++li) {
    const LayerSpec& l = specs[li];
    const std::string i = std::to_string(l.index);
    switch (l.kind) {
      case LayerSpec::Conv:
        pending_input = pending_upsample ? ConvInput::Upsampled2 : ConvInput::AsIs;
        pending_upsample = false;
        if (l.index < kConvs) {
          pending_conv = i;
          break;
        }
        h = conv2d3x3(tape, h, params_.at("conv" + i + ".weight"), params_.at("conv" + i + ".bias"), pending_input);
        if (observer) (*observer)("conv" + i, h);
        h = sigmoid(tape, h);
        if (observer) (*observer)("sigmoid", h);
        break;
      case LayerSpec::BatchNorm:
        if (pending_conv.empty()) throw std::logic_error("autoencoder: batchnorm " + i + " follows no convolution");
        if (observer) {
          h = conv2d3x3(tape, h, params_.at("conv" + pending_conv + ".weight"), params_.at("conv" + pending_conv + ".bias"));
          (*observer)("conv" + pending_conv, h);
          h = relu_batchnorm(tape, h, params_.at("bn" + i + ".weight"), params_.at("bn" + i + ".bias"), bn_[l.index - 1],
                             training, config_.bn);
          (*observer)("bn" + i, h);
        } else {
          const bool pool_next = li + 1 < specs.size() && specs[li + 1].kind == LayerSpec::MaxPool;
          h = conv_relu_batchnorm(tape, h, params_.at("conv" + pending_conv + ".weight"),
                                  params_.at("conv" + pending_conv + ".bias"), params_.at("bn" + i + ".weight"),
                                  params_.at("bn" + i + ".bias"), bn_[l.index - 1], training, config_.bn,
                                  pending_input, pool_next ? BlockOutput::MaxPooled2 : BlockOutput::AsIs);
          if (pool_next) ++li;  // that pooling is done
        }
        pending_conv.clear();
        break;
      case LayerSpec::MaxPool:
        if (pending_upsample) h = upsample2(tape, h);
        pending_upsample = false;
        h = maxpool2(tape, h);
        if (observer) (*observer)("pool" + i, h);
        break;
      case LayerSpec::Upsample:
        if (!observer) {
          pending_upsample = true;
          break;
        }
        h = upsample2(tape, h);
        (*observer)("up" + i, h);
        break;
    }
  }
  if (pending_upsample) h = upsample2(tape, h);
  return h;
}

}  // namespace mriae
