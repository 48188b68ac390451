#include "apps/export_command.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

#include "apps/weights_file.h"
#include "model/keras_weights.h"

namespace mriae {

namespace {

struct ExportOptions {
  std::string weights, keras, format;
};

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Keras 3's load_weights reads its own layout only from a name ending in .weights.h5 and takes any other
// .h5 for Keras 2's, so the name decides the layout; --format only confirms it.
KerasFormat format_for(const ExportOptions& o) {
  const bool keras3_name = ends_with(o.keras, ".weights.h5");
  if (!keras3_name && !ends_with(o.keras, ".h5"))
    throw std::invalid_argument("--keras: '" + o.keras + "' should end in .h5 (Keras 2) or .weights.h5 (Keras 3)");
  const KerasFormat f = o.format.empty() ? (keras3_name ? KerasFormat::Keras3 : KerasFormat::Keras2)
                                         : parse_keras_format(o.format);
  if ((f == KerasFormat::Keras3) != keras3_name)
    throw std::invalid_argument("--keras: Keras reads " + std::string(f == KerasFormat::Keras3 ? "its Keras 3 layout only "
                                "from a name ending in .weights.h5" : "a name ending in .weights.h5 as Keras 3's layout") +
                                ", so '" + o.keras + "' cannot hold --format " + keras_format_name(f));
  return f;
}

void run_export(const ExportOptions& o) {
  const KerasFormat format = format_for(o);
  // In the weights' own dtype: a float64 model loads either exactly, then says which the file held.
  AutoencoderConfig c;
  c.dtype = DType::Float64;
  auto model = std::make_unique<Autoencoder>(c);
  const KerasPipeline none;
  const CheckpointMetadata meta = load_weights(o.weights, *model, none);
  if (meta.at("dtype") == "float32") {
    c.dtype = DType::Float32;
    model = std::make_unique<Autoencoder>(c);
    load_weights(o.weights, *model, none);
  }
  save_keras_weights(o.keras, *model, format);
  std::printf("wrote %s (%s, %s): load it into the tutorial's model with model.load_weights(\"%s\")\n", o.keras.c_str(),
              keras_format_name(format), dtype_name(c.dtype), o.keras.c_str());
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto opt = std::make_shared<ExportOptions>();
  CLI::App* cmd = app.add_subcommand("export", "Write trained weights as a Keras weights file (HDF5)");
  cmd->add_option("--weights", opt->weights, "Checkpoint written by mriae train (or Keras weights, to convert)")
      ->required();
  cmd->add_option("--keras", opt->keras, "Output: FILE.h5 (Keras 2 layout) or FILE.weights.h5 (Keras 3); replaced if present")
      ->required();
  cmd->add_option("--format", opt->format, "keras2 or keras3 (default: from the file name)");
  cmd->callback([opt] { run_export(*opt); });
}

}  // namespace mriae
