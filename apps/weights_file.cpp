#include "apps/weights_file.h"

#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "io/normalization.h"
#include "model/keras_weights.h"

namespace mriae {

DataOptions KerasPipeline::defaults() {
  DataOptions d;
  d.normalize = "volume";
  d.axis = 1;
  d.pad = "top-left";
  d.conform = false;
  return d;
}

void add_keras_pipeline_options(CLI::App* cmd, KerasPipeline& k) {
  const std::string g = "Keras weights' data pipeline";
  auto mark = [&k](auto&&...) { k.given = true; };
  DataOptions& d = k.data;
  auto given = [&](CLI::Option* o) { o->group(g)->capture_default_str()->each(mark); };
  given(cmd->add_option("--normalize", d.normalize,
                        "Keras weights: 'volume' (each volume by its min and max) or 'percentile' (by its --percentiles)"));
  given(cmd->add_option("--percentiles", d.percentiles, "Keras weights: the percentile method's bounds"));
  given(cmd->add_option("--axis", d.axis, "Keras weights: the slice axis (0, 1 or 2)"));
  given(cmd->add_option("--pad", d.pad, "Keras weights: 'top-left' (the tutorial) or 'centre'"));
  given(cmd->add_option("--slices", d.slices, "Keras weights: slices start:stop of every volume (default: the central --central)"));
  given(cmd->add_option("--central", d.central, "Keras weights: the central slices taken"));
  cmd->add_flag("--conform,!--no-conform", d.conform, "Keras weights: reorient to RAS and resample before slicing")
      ->group(g)
      ->capture_default_str()
      ->each(mark);
  given(cmd->add_option("--voxel", d.voxel, "Keras weights, with --conform: voxel size in mm"));
  given(cmd->add_option("--interp", d.interp, "Keras weights, with --conform: 'linear' or 'nearest'"));
}

bool is_keras_metadata(const CheckpointMetadata& meta) {
  auto it = meta.find("format");
  return it != meta.end() && (it->second == "keras2" || it->second == "keras3");
}

namespace {

bool has_hdf5_name(const std::string& path) {
  for (const char* ext : {".h5", ".hdf5", ".H5"}) {
    const std::string e(ext);
    if (path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0) return true;
  }
  return false;
}

}  // namespace

CheckpointMetadata load_weights(const std::string& path, Autoencoder& model, const KerasPipeline& keras) {
  // By content; a file named as Keras weights that is not HDF5 goes to the Keras reader for its message.
  if (!is_hdf5_file(path) && !has_hdf5_name(path)) {
    if (keras.given)
      throw std::invalid_argument(path + " is an mriae checkpoint, which carries its training run's data pipeline; "
                                  "--normalize, --axis, --pad, --slices, --central, --conform, --voxel, --interp "
                                  "and --percentiles are for Keras weights only");
    return load_checkpoint(path, model, nullptr);
  }
  const DataOptions& d = keras.data;
  DataOptions check = d;
  check.paths = {"-"};  // validated apart from the volumes, which come with --data or --in
  check.validate();
  if (io::is_global(io::parse_method(d.normalize)))
    throw std::invalid_argument("--normalize " + d.normalize + " needs the training data's range, which Keras weights "
                                "do not carry: use 'volume' or 'percentile'");
  const KerasWeightsInfo info = load_keras_weights(path, model);
  CheckpointMetadata m;
  m["format"] = keras_format_name(info.format);
  m["dtype"] = dtype_name(info.dtype);
  m["data.paths"] = "[]";
  m["data.axis"] = std::to_string(d.axis);
  m["data.slices"] = d.slices;
  m["data.central"] = std::to_string(d.central);
  m["data.normalize"] = d.normalize;
  m["data.percentiles"] = io::percentiles_text(io::parse_percentiles(d.percentiles));
  m["data.pad"] = d.pad;
  m["data.split"] = d.split;
  m["data.val_fraction"] = exact(d.val_fraction);
  m["data.seed"] = std::to_string(d.seed);
  m["data.conform"] = d.conform ? "1" : "0";
  m["data.voxel"] = exact(d.voxel);
  m["data.interp"] = d.interp;
  return m;
}

}  // namespace mriae
