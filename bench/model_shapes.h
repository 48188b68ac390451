#pragma once
// The shapes the model gives each kernel, each shape once with the layers that share it: the row list of
// the kernel benchmarks (bench_cuda_ops on the GPU, cpu_ops on the CPU). Host-only, from the model's layer
// table, so both walk the same layers.
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/common/nchw_dims.h"
#include "model/autoencoder.h"

namespace mriae::bench {

inline std::string str(const NchwDims& d) {
  return std::to_string(d.n) + "x" + std::to_string(d.c) + "x" + std::to_string(d.h) + "x" + std::to_string(d.w);
}

struct Use {
  NchwDims d;         // the op's input (for a convolution: x)
  std::string layers;  // "relu1, relu2"
  int k = 0;           // convolutions: output channels
  bool input_grad = true;  // convolutions: the first layer's input needs no gradient, so no backward data
};

inline void add_use(std::vector<Use>& uses, const Use& u) {
  for (Use& e : uses)
    if (e.d.n == u.d.n && e.d.c == u.d.c && e.d.h == u.d.h && e.d.w == u.d.w && e.k == u.k) {
      e.layers += ", " + u.layers;
      return;
    }
  uses.push_back(u);
}

// Merges by channel count alone; the first layer's shape is kept.
inline void add_channels_use(std::vector<Use>& uses, const Use& u) {
  for (Use& e : uses)
    if (e.d.c == u.d.c) {
      e.layers += ", " + u.layers;
      return;
    }
  uses.push_back(u);
}

struct ModelShapes {
  std::vector<Use> conv, relu, bn, pool, upsample;
  std::vector<Use> bn_moving;  // by channel count only: the update's work is one element per channel
  NchwDims output;            // the last convolution's output: sigmoid and loss
};

inline ModelShapes model_shapes(int batch, int size) {
  // Two poolings halve the input twice and the upsamplings must give it back.
  if (batch <= 0 || size <= 0 || size % 4 != 0)
    throw std::invalid_argument("model_shapes: batch " + std::to_string(batch) + ", size " + std::to_string(size) +
                                ": need a positive batch and a positive size divisible by 4");
  ModelShapes m;
  int h = size, c = 1;
  for (const LayerSpec& l : Autoencoder::layers()) {
    const NchwDims d{batch, c, h, h};
    const std::string i = std::to_string(l.index);
    switch (l.kind) {
      case LayerSpec::Conv: {
        m.conv.push_back({d, "conv" + i, l.channels, l.index != 1});
        const NchwDims y{batch, l.channels, h, h};
        if (l.index == Autoencoder::kConvs) m.output = y;
        else add_use(m.relu, {y, "relu" + i});
        c = l.channels;
        break;
      }
      case LayerSpec::BatchNorm:
        add_use(m.bn, {d, "bn" + i});
        add_channels_use(m.bn_moving, {d, "bn" + i});
        break;
      case LayerSpec::MaxPool:
        add_use(m.pool, {d, "maxpool" + i});
        h /= 2;
        break;
      case LayerSpec::Upsample:
        add_use(m.upsample, {d, "upsample" + i});
        h *= 2;
        break;
    }
  }
  return m;
}

}  // namespace mriae::bench
