#pragma once
// Keras HDF5 weight files of the tutorial's model, read and written (the one file that calls the HDF5 C
// library). Two layouts:
// - Keras 2 (`model.save_weights("x.h5")` in Keras 2.x / tf_keras; the tutorial's autoencoder_mri.h5):
//   the root attribute layer_names lists every layer in model order; each layer's group has the attribute
//   weight_names (empty for weightless layers) naming its datasets, Conv2D `kernel:0` [3, 3, in, out] (HWIO)
//   and `bias:0`, BatchNormalization `gamma:0`, `beta:0`, `moving_mean:0`, `moving_variance:0`. As Keras's
//   own loader does, the layers with weights are taken in layer_names order and their weights in
//   weight_names order; the names (and the counters in them, which depend on the Keras session) are not
//   used to match. A whole-model file (`model.save("x.h5")`) holds the same under the group model_weights.
// - Keras 3 (`model.save_weights("x.weights.h5")`): layers/<class>[_k]/vars/0..n-1, where <class>_k is the
//   k-th layer of that class in the model's layer list (Keras 3 names them so on saving, whatever the
//   layers were called), conv2d, conv2d_1, ... conv2d_10 and batch_normalization, ... batch_normalization_9.
// Kernels are transposed between HWIO and mriae's OIHW. Float32 and float64 datasets are read into a model
// of either dtype (float64 into float32 rounds); files are written in the model's dtype.
// Keras BatchNormalization with its defaults (epsilon 1e-3, center and scale) is mriae's batchnorm.
#include <map>
#include <string>

#include "model/autoencoder.h"

namespace mriae {

enum class KerasFormat { Keras2, Keras3 };

// "keras2" or "keras3"; parse_keras_format throws std::invalid_argument for anything else.
const char* keras_format_name(KerasFormat f);
KerasFormat parse_keras_format(const std::string& name);

// True when the file starts with the HDF5 signature (as Keras weight files do; mriae checkpoints are
// safetensors). False for a missing or unreadable file.
bool is_hdf5_file(const std::string& path);

struct KerasWeightsInfo {
  KerasFormat format = KerasFormat::Keras2;
  DType dtype = DType::Float32;  // of the file's datasets
};

// Loads the file's weights and moving statistics into model (inference: the Keras file has no optimiser
// state; the batchnorm's hidden EMAs are zeroed with zero steps). Throws std::runtime_error naming the file
// and, where one is at fault, the layer: not an HDF5 file, neither layout, a layer count other than the
// tutorial's 11 Conv2D and 10 BatchNormalization, a layer out of order, a missing dataset, a wrong shape,
// a non-float dataset. The model is only modified once the whole file has been read and checked.
KerasWeightsInfo load_keras_weights(const std::string& path, Autoencoder& model);

// Writes model's weights and moving statistics as Keras would save the tutorial's model, in the model's
// dtype (Keras 2: layer names as a fresh Keras session gives them, input_1, conv2d, batch_normalization,
// ...). Written to PATH.tmp, then renamed over PATH: a failure leaves no half-written file.
void save_keras_weights(const std::string& path, const Autoencoder& model, KerasFormat format);

}  // namespace mriae
