#pragma once
// What a training run is made of, as the command line gives it, and its round trip through checkpoint
// metadata: evaluate, reconstruct and --resume rebuild exactly the data set a run trained on.
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "engine/lr_schedule.h"
#include "io/slice_dataset.h"
#include "model/checkpoint.h"

namespace mriae {

struct DataOptions {
  std::vector<std::string> paths;
  int axis = 1;
  std::string slices;      // "start:stop", or empty for the central `central` slices
  int64_t central = 51;
  // "percentile" (each volume clipped to its own `percentiles`, then scaled: the default, chosen by the
  // held-out scan's PSNR, see the README), "volume" (each by its own min and max), "train" (one min and max
  // over the training slices) or "all" (over every slice: the tutorial).
  std::string normalize = "percentile";
  std::string percentiles = "0.5,99.5";
  bool strict = false;  // a volume whose normalised voxels fall well outside [0, 1] is an error, not a warning
  std::string pad = "top-left";     // "top-left" (the tutorial) or "centre"
  std::string split = "slices";     // "slices" (the tutorial) or "subjects"
  double val_fraction = 0.2;
  uint64_t seed = 13;
  // Every volume reoriented to RAS and resampled to `voxel` mm before slicing (io/conform.h); false: the
  // arrays as stored, the tutorial's slicing. Checkpoints from before conforming existed read as false.
  bool conform = true;
  double voxel = 1.0;              // mm
  std::string interp = "linear";   // "linear" (trilinear) or "nearest"
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
  // The conform settings as dataset_options() passes them on; unset without conform.
  std::optional<io::ConformOptions> conform_options() const;
};

struct TrainOptions {
  DataOptions data;
  std::string out_dir;
  int64_t epochs = 300;
  int64_t batch = 128;
  double lr = 1e-3;
  // The lr of each step (engine/lr_schedule.h): "constant" (the tutorial) or "cosine", decaying from lr to
  // lr_floor * lr over the whole run.
  std::string lr_schedule = "constant";
  double lr_floor = 0;
  std::string device = "auto";
  std::string dtype = "float32";  // or "float64" (CPU only)
  bool deterministic = false;  // GPU: bit-identical runs
  bool tf32 = false;           // GPU: TF32 tensor cores in the convolutions
  std::string resume;     // checkpoint to continue from
  bool quiet = false;
  std::string log_file;   // epoch lines appended here too
  // Denoising: Gaussian noise of this sigma on every input slice (training and validation), the clean
  // slice as the target; 0 trains the tutorial's plain autoencoder. See apps/input_noise.h.
  double train_noise = 0;
  // Data parallelism (mpirun): batchnorm statistics over the "global" batch (all ranks together, as one
  // process computes them) or over each rank's "per-rank" share (PyTorch DDP's default).
  std::string bn = "global";
  // Random crops (io/crop.h): nonzero trains on crop x crop windows of the training slices, crops_per_slice
  // of each slice an epoch (0: as many as cover a slice's pixels, io::default_crops_per_slice); validation
  // and evaluation stay on whole slices. A multiple of 4, as the slices are (two 2x2 poolings).
  int64_t crop = 0;
  int64_t crops_per_slice = 0;

  void validate() const;
  // The schedule of a run whose epochs each have `steps_per_epoch` steps.
  LrSchedule schedule(int64_t steps_per_epoch) const;
};

// The data set's description for checkpoint metadata (options, the normalisation method, padded size).
// The method is what new data needs: data.normalize names it, data.percentiles gives the percentile
// method's bounds, and only the global methods (train, all) add the scaling they fixed, data.norm_min and
// data.norm_max.
void put_data_metadata(CheckpointMetadata& meta, const DataOptions& options, const io::SliceDataset& dataset);
// The options a checkpoint's run used. Checkpoints written before the per-volume methods carry
// data.normalize "train" or "all" with their min and max, and read as they always did.
DataOptions data_options_from_metadata(const CheckpointMetadata& meta);
// The global methods' scaling as the run fixed it (data.norm_min, data.norm_max); nullopt for the per-volume
// methods, which scale each volume by its own statistics. Throws on an empty or non-finite range.
std::optional<io::Normalisation> trained_normalisation(const CheckpointMetadata& meta);
// How new data is prepared for a checkpoint's model: its run's dataset options, with the trained scaling
// filled in for the global methods, so that every volume is scaled by the method the model was trained with.
io::DatasetOptions dataset_options_from_metadata(const CheckpointMetadata& meta);

// A volume whose normalised voxels fall well outside [0, 1] (io::RangeCheck): a warning on `console`, or an
// io::DatasetError naming the file with strict.
void check_normalised_ranges(const io::SliceDataset& dataset, bool strict, std::FILE* console);

// Exact text for doubles and floats in metadata.
std::string exact(double v);
// Short text (%g) for messages.
std::string short_number(double v);

}  // namespace mriae
