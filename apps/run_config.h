#pragma once
// What a training run is made of, as the command line gives it, and its round trip through checkpoint
// metadata: evaluate, reconstruct and --resume rebuild exactly the data set a run trained on.
#include <cstdint>
#include <string>
#include <vector>

#include "io/slice_dataset.h"
#include "model/checkpoint.h"

namespace mriae {

struct DataOptions {
  std::vector<std::string> paths;
  int axis = 1;
  std::string slices;      // "start:stop", or empty for the central `central` slices
  int64_t central = 51;
  std::string normalize = "train";  // "train" (min and max of the training slices) or "all" (the tutorial)
  std::string pad = "top-left";     // "top-left" (the tutorial) or "centre"
  std::string split = "slices";     // "slices" (the tutorial) or "subjects"
  double val_fraction = 0.2;
  uint64_t seed = 13;
  // Which volumes are one person (--subjects TABLE, see io/subject_map.h), for --split subjects: the
  // table's path and, once resolve_subjects() has read it, each path's subject label. No labels: every
  // volume is a subject of its own.
  std::string subjects;
  std::vector<std::string> subject_labels;

  // Throws std::invalid_argument naming the option for an impossible value.
  void validate() const;
  // Reads `subjects` (when given and not yet read) into subject_labels; throws naming the table or volume.
  void resolve_subjects();
  io::DatasetOptions dataset_options() const;
};

struct TrainOptions {
  DataOptions data;
  std::string out_dir;
  int64_t epochs = 300;
  int64_t batch = 128;
  float lr = 1e-3f;
  std::string device = "auto";
  bool deterministic = false;  // GPU: bit-identical runs
  bool tf32 = false;           // GPU: TF32 tensor cores in the convolutions
  std::string resume;     // checkpoint to continue from
  bool quiet = false;
  std::string log_file;   // epoch lines appended here too
  // Denoising: Gaussian noise of this sigma on every input slice (training and validation), the clean
  // slice as the target; 0 trains the tutorial's plain autoencoder. See apps/input_noise.h.
  double train_noise = 0;

  void validate() const;
};

// The data set's description for checkpoint metadata (options, normalisation, padded size).
void put_data_metadata(CheckpointMetadata& meta, const DataOptions& options, const io::SliceDataset& dataset);
// The options a checkpoint's run used; its normalisation goes into dataset_options().normalisation so new
// data is scaled as the training data was.
DataOptions data_options_from_metadata(const CheckpointMetadata& meta, io::Normalisation* normalisation);

// Exact text for doubles and floats in metadata.
std::string exact(double v);
// Short text (%g) for messages.
std::string short_number(double v);

}  // namespace mriae
