#pragma once
#include <string>

namespace mriae {

// A Keras-style table of the autoencoder at an H x W input: layer, output shape (channels first, as the
// engine stores it), parameter count, and the totals.
std::string model_summary(int height, int width);

}  // namespace mriae
