#include "apps/slices_command.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "apps/run_config.h"
#include "model/safetensors.h"

namespace mriae {

namespace {

struct SlicesOptions {
  std::string weights, out;
};

void run_slices(const SlicesOptions& o) {
  // Only the metadata is needed: the run's data options are the checkpoint's, unchanged.
  const SafetensorsFile ckpt = SafetensorsFile::read(o.weights);
  if (!ckpt.metadata.count("format") || ckpt.metadata.at("format") != "mriae-checkpoint")
    throw std::runtime_error(o.weights + ": not an mriae checkpoint (Keras weights describe no data to export)");
  DataOptions data;
  io::DatasetOptions dopts;
  try {
    data = data_options_from_metadata(ckpt.metadata);
    dopts = dataset_options_from_metadata(ckpt.metadata);
  } catch (const std::exception& e) {
    throw std::runtime_error(o.weights + ": " + e.what());
  }
  const io::SliceDataset ds = io::build_slice_dataset(data.paths, dopts);
  for (const std::string& w : ds.warnings) std::fprintf(stderr, "mriae: warning: %s\n", w.c_str());

  const int64_t n = ds.slices.count(), h = ds.slices.height(), w = ds.slices.width();
  std::vector<float> all(size_t(n * h * w));
  for (int64_t i = 0; i < n; ++i) ds.slices.copy_slice(i, all.data() + i * h * w);
  std::vector<int64_t> volume(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) volume[size_t(i)] = ds.refs[size_t(i)].subject;
  SafetensorsFile f;
  f.add_f32("slices", {n, 1, h, w}, all.data());
  f.add_i64("train", {int64_t(ds.split.train.size())}, ds.split.train.data());
  f.add_i64("validation", {int64_t(ds.split.validation.size())}, ds.split.validation.data());
  f.add_i64("volume", {n}, volume.data());  // each slice's volume, an index into data.paths
  f.metadata = ckpt.metadata;  // the run's data, training and noise options, for the reader to follow
  for (const char* k : {"format", "format_version", "dtype"}) f.metadata.erase(k);
  f.metadata["format"] = "mriae-slices";
  f.metadata["format_version"] = "1";
  f.write_atomic(o.out);
  std::printf("wrote %s: %lld slices of %lldx%lld (%zu training, %zu validation) from %zu volume(s)\n", o.out.c_str(),
              (long long)n, (long long)h, (long long)w, ds.split.train.size(), ds.split.validation.size(),
              data.paths.size());
}

}  // namespace

void add_slices_command(CLI::App& app) {
  auto opt = std::make_shared<SlicesOptions>();
  CLI::App* cmd = app.add_subcommand("slices", "Write the slices and split a run trained on, as it prepared them");
  cmd->add_option("--weights", opt->weights, "A checkpoint of the run (e.g. RUN/initial.safetensors)")->required();
  cmd->add_option("--out", opt->out, "Output: a safetensors file ('slices' [N, 1, H, W], 'train', 'validation', "
                                     "'volume'); replaced if present")
      ->required();
  cmd->callback([opt] { run_slices(*opt); });
}

}  // namespace mriae
