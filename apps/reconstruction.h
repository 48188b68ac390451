#pragma once
// What `mriae reconstruct` does, apart from its command line: every slice of a volume through a trained
// autoencoder, prepared exactly as the checkpoint's training run prepared its slices (axis, normalisation
// method, padding), then mapped back to the input's own intensity units and geometry.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "apps/weights_file.h"
#include "io/conform.h"
#include "io/nifti_volume.h"
#include "io/slice_dataset.h"
#include "model/autoencoder.h"
#include "model/checkpoint.h"

namespace mriae {

struct ReconstructOptions {
  std::string weights;  // a checkpoint written by mriae train, or Keras weights (apps/weights_file.h)
  KerasPipeline keras;  // the data pipeline for Keras weights
  std::string input;    // NIfTI volume
  std::string output;   // .nii, .nii.gz, .hdr or .img (a pair)
  std::optional<int64_t> frame;  // for 4-D input
  int64_t batch = 32;
  std::string device = "auto";
  std::string dtype = "float32";  // the model's; "float64" runs on the CPU only
  bool strict = false;  // an input outside the model's intensity range is an error, not a warning

  // Throws std::invalid_argument naming the option for an impossible value.
  void validate() const;
};

// How slices go into the model and come back: the training run's choices, from its checkpoint.
struct SlicePipeline {
  int axis = 1;
  io::NormalizeMethod method = io::NormalizeMethod::Volume;
  io::PercentileBounds percentiles;          // of the percentile method
  std::optional<io::Normalisation> trained;  // the global methods' scaling, fixed by the training data
  io::PadPlacement pad = io::PadPlacement::TopLeft;
  int64_t pad_multiple = 4;
  int64_t batch = 32;  // slices per forward pass
  // The run's conform settings: the input is conformed before slicing and the output mapped back onto the
  // input's grid. Unset: sliced as stored.
  std::optional<io::ConformOptions> conform;
};

// The pipeline a checkpoint's training run used (its metadata, as load_checkpoint returns it). Throws when
// the metadata is not mriae train's or holds an unusable normalisation.
SlicePipeline pipeline_from_metadata(const CheckpointMetadata& metadata);

// The scaling p's method gives this volume: the trained one for the global methods, the volume's own
// (min and max, or percentiles) for the others. Throws io::DatasetError naming the file for a volume
// that cannot be normalised so.
io::Normalisation volume_scaling(const io::Volume& volume, const SlicePipeline& p);

struct Reconstruction {
  std::vector<float> data;  // intensity units, the volume's dims, x fastest
  // Mean over the volume's voxels of (output - normalised input)^2 in the model's [0, 1] scale: the
  // training loss's measure, but without the padding, which the loss also counts.
  double mse_normalised = 0;
  io::Normalisation scaling;  // what the volume was normalised with, and its output mapped back with
  io::RangeCheck range_check;  // where its normalised voxels fell
};

// Runs every slice of `volume` along p.axis through `model` in inference mode (moving batchnorm
// statistics), p.batch slices at a time on the model's device. Each slice is normalised, zero-padded to a
// multiple of p.pad_multiple in both directions with p.pad's placement, and cropped back after the model,
// then mapped back by the inverse of the volume's scaling (volume_scaling): into its own intensity units.
// Normalised values outside [0, 1] (a global scaling meeting a brighter volume) go through as they are.
Reconstruction reconstruct_volume(Autoencoder& model, const io::Volume& volume, const SlicePipeline& p);
// The same with the volume's scaling already worked out (volume_scaling), so a caller that checked it first
// need not sort the volume again for its percentiles.
Reconstruction reconstruct_volume(Autoencoder& model, const io::Volume& volume, const SlicePipeline& p,
                                  const io::Normalisation& scaling);

// The inverse of io::extract_slice: writes a rows x cols slice (row-major, io::slice_shape's layout) into
// slice `index` along `axis` of an x-fastest volume of size dims.
void store_slice(const float* slice, int axis, int64_t index, const std::array<int64_t, 3>& dims, float* volume);

struct ReconstructResult {
  std::array<int64_t, 3> dims{};  // of the volume the model saw (conformed when the run conformed)
  bool conformed = false;
  std::string warning;  // the input could not be conformed as asked (io::ConformedVolume::warning)
  int axis = 1;
  int64_t slices = 0;
  std::array<int64_t, 2> slice_size{}, padded_size{};
  Device device = Device::CPU;
  double mse_normalised = 0;
  io::NormalizeMethod method = io::NormalizeMethod::Volume;
  io::Normalisation scaling;
  double rmse = 0;          // root mean squared error against the input, in its intensity units
  double model_seconds = 0;  // the forward passes
  double seconds = 0;        // everything: loading, reading, the model, writing
};

// The whole command: loads the checkpoint's weights onto the chosen device, reads the input (one frame of a
// 4-D series with options.frame), reconstructs it and writes it with the input's header and affine. When the
// run conformed its volumes, the input is conformed the same way, reconstructed on that grid and resampled
// back onto its own voxels (io::unconform, the run's interpolation); the RMS error is on the input's voxels. The
// output's name and folder are checked before any work. Throws with the file's name on bad input: a missing
// or foreign checkpoint, an unreadable input, a 4-D input without a frame, NaN or infinite voxels, and with
// options.strict a volume whose normalised voxels fall well outside [0, 1] (io::RangeCheck), which is
// otherwise a warning on stderr.
ReconstructResult reconstruct(const ReconstructOptions& options);

// One line for the console: slices, sizes, device, time and error.
std::string summary_line(const ReconstructResult& result, const std::string& output);

}  // namespace mriae
