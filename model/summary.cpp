#include "model/summary.h"

#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "model/autoencoder.h"

namespace mriae {

namespace {

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v);
  for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
  return s;
}

}  // namespace

std::string model_summary(int height, int width) {
  if (height <= 0 || width <= 0 || height % 4 || width % 4)
    throw std::invalid_argument("summary: height and width must be positive multiples of 4, got " +
                                std::to_string(height) + "x" + std::to_string(width));
  std::ostringstream o;
  char line[160];
  const char* rule = "_______________________________________________________________________________\n";
  const char* dbl = "===============================================================================\n";
  o << rule;
  std::snprintf(line, sizeof line, "%-46s%-24s%s\n", "Layer (type)", "Output Shape", "Param #");
  o << line << dbl;
  auto row = [&](const std::string& name, int c, int h, int w, int64_t params) {
    const std::string shape = "(None, " + std::to_string(c) + ", " + std::to_string(h) + ", " + std::to_string(w) + ")";
    std::snprintf(line, sizeof line, "%-46s%-24s%s\n", name.c_str(), shape.c_str(), with_commas(params).c_str());
    o << line;
  };
  int h = height, w = width;
  row("input_1 (InputLayer)", 1, h, w, 0);
  for (auto& l : Autoencoder::layers()) {
    const std::string i = std::to_string(l.index);
    switch (l.kind) {
      case LayerSpec::Conv:
        row("conv2d_" + i + " (Conv2D)", l.channels, h, w, int64_t(l.channels) * l.in_channels * 9 + l.channels);
        break;
      case LayerSpec::BatchNorm:
        row("batch_normalization_" + i + " (BatchNormalization)", l.channels, h, w, 4 * int64_t(l.channels));
        break;
      case LayerSpec::MaxPool:
        h /= 2, w /= 2;
        row("max_pooling2d_" + i + " (MaxPooling2D)", l.channels, h, w, 0);
        break;
      case LayerSpec::Upsample:
        h *= 2, w *= 2;
        row("up_sampling2d_" + i + " (UpSampling2D)", l.channels, h, w, 0);
        break;
    }
  }
  const int64_t trainable = Autoencoder::trainable_count(), fixed = Autoencoder::non_trainable_count();
  o << dbl << "Total params: " << with_commas(trainable + fixed) << "\n"
    << "Trainable params: " << with_commas(trainable) << "\n"
    << "Non-trainable params: " << with_commas(fixed) << "\n"
    << rule;
  return o.str();
}

}  // namespace mriae
