#pragma once
// The --weights of evaluate and reconstruct (and any command that takes trained weights): an mriae
// checkpoint (safetensors, whose metadata describes its run's data pipeline) or Keras HDF5 weights
// (model/keras_weights.h), which describe no pipeline. For Keras weights the pipeline is the tutorial's
// preprocessing, adjustable on the command line (add_keras_pipeline_options): axis 1, each volume min-max
// scaled by itself (the tutorial's min-max, which it took over its whole data set), zeros padded at the top
// and left, the arrays as stored (no conforming), the central 51 slices.
#include <string>

#include "apps/run_config.h"
#include "model/autoencoder.h"
#include "model/checkpoint.h"

namespace CLI {
class App;
}

namespace mriae {

struct KerasPipeline {
  DataOptions data = defaults();
  bool given = false;  // some option was given on the command line (refused with an mriae checkpoint)

  static DataOptions defaults();
};

// --normalize, --percentiles, --axis, --pad, --conform/--no-conform, --voxel, --interp, --slices, --central:
// the pipeline for Keras weights. With an mriae checkpoint they are an error: its run's pipeline is the one
// its model was trained with.
void add_keras_pipeline_options(CLI::App* cmd, KerasPipeline& pipeline);

// Loads `path` into model: an mriae checkpoint (load_checkpoint, without optimiser state), or Keras weights,
// for which it returns metadata as a checkpoint's would carry, from `keras` ("format" keras2 or keras3,
// "dtype" the file's, data.* the pipeline, data.paths empty). Throws naming the file.
CheckpointMetadata load_weights(const std::string& path, Autoencoder& model, const KerasPipeline& keras);

// True when load_weights's metadata came from Keras weights.
bool is_keras_metadata(const CheckpointMetadata& meta);

}  // namespace mriae
