#pragma once
// The tutorial's convolutional autoencoder. Every block is Conv2D 3x3 'same' + ReLU, then BatchNorm
// (Keras order). Encoder 32,32 - maxpool - 64,64 - maxpool - 128,128; decoder 64,64 - upsample - 32,32 -
// upsample - conv 3x3 to one channel + sigmoid. Parameter names follow a PyTorch state_dict of the same model.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/parameters.h"

namespace mriae {

struct AutoencoderConfig {
  uint64_t seed = 13;  // Glorot-uniform initialisation of the conv kernels
  Device device = Device::CPU;
  // float64 is CPU only. Its starting values are the float32 ones (the same seed draws the same weights in
  // either dtype), so a float64 run is the exact-arithmetic twin of the float32 run it is compared with.
  DType dtype = DType::Float32;
  BatchNormOptions bn;
};

// One row of the model's structure, for summaries and checks.
struct LayerSpec {
  enum Kind { Conv, BatchNorm, MaxPool, Upsample } kind;
  int index;        // 1-based within its kind (conv1..conv11, bn1..bn10)
  int in_channels;  // conv only
  int channels;     // output channels
};

// Sees each layer's output Var during a forward pass (mriae trace), named after the PyTorch module that
// computes it: conv1..conv11 (convolution outputs, before their ReLU), bn1..bn10 (ReLU then batchnorm),
// pool1, pool2, up1, up2, sigmoid. Keeping the Var keeps its gradient after Tape::backward.
using LayerObserver = std::function<void(const std::string& name, const Var& output)>;

class Autoencoder {
 public:
  static constexpr int kConvs = 11;
  static constexpr int kBatchNorms = 10;

  explicit Autoencoder(const AutoencoderConfig& config);

  // x is [N, 1, H, W] with H and W divisible by 4. training: batch statistics (and moving-statistics
  // updates); otherwise the moving statistics.
  // observer: null in training. When given, each block runs as conv2d3x3 then relu_batchnorm so that the
  // convolution's output can be seen; on the CPU that is exactly what the fused op computes.
  Var forward(Tape* tape, const Var& x, bool training, const LayerObserver* observer = nullptr);
  // A batch (float32 from the data path, on any device) as the model takes it: on its device, in its dtype.
  // The data path (slice stack, batch loader) stays float32 for either model: the slices are float32 data,
  // so the conversion is exact and a float64 model sees exactly the numbers a float32 one does, at half the
  // memory, with one loader (and one pinned GPU staging path) for both.
  Tensor input(const Tensor& batch) const;

  ParameterSet& parameters() { return params_; }
  const ParameterSet& parameters() const { return params_; }
  std::vector<BatchNormState>& bn_states() { return bn_; }
  const std::vector<BatchNormState>& bn_states() const { return bn_; }
  const AutoencoderConfig& config() const { return config_; }

  // The layers in forward order.
  static const std::vector<LayerSpec>& layers();
  // Trainable and non-trainable (moving mean and variance) parameter counts.
  static int64_t trainable_count();
  static int64_t non_trainable_count();

 private:
  AutoencoderConfig config_;
  ParameterSet params_;
  std::vector<BatchNormState> bn_;
};

}  // namespace mriae
