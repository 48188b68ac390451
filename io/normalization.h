#pragma once
// Intensity normalisation: how voxel values in a scanner's arbitrary units become the model's [0, 1].
// T1 intensities differ by scanner, sequence and software (0-254, 0-9999, -21 to 305 in common volumes), so
// the method, not a pair of numbers, is what a trained model carries: per-volume methods scale every new
// volume by its own statistics; the global ones (the tutorial's) scale every volume by the training data's.
#include <cstdint>
#include <cstdio>
#include <string>

#include "io/dataset_error.h"

namespace mriae::io {

enum class NormalizeMethod {
  Training,    // global: min and max of the training slices only (no validation data leaks into the scaling)
  All,         // global: min and max of every selected slice, as the tutorial does
  Volume,      // each volume by its own min and max
  Percentile,  // each volume clipped to its own lower and upper percentiles, then scaled
};

// "train", "all", "volume", "percentile": the names of --normalize and of checkpoint metadata.
std::string method_name(NormalizeMethod method);
// Throws std::invalid_argument naming --normalize for anything else.
NormalizeMethod parse_method(const std::string& name);
// True for the methods whose scaling comes from the training data rather than from each volume.
bool is_global(NormalizeMethod method);

// Percentiles in [0, 100], lower < upper: the bounds of NormalizeMethod::Percentile.
struct PercentileBounds {
  double lower = 0.5, upper = 99.5;
};
// "0.5,99.5" -> {0.5, 99.5}; throws std::invalid_argument naming --percentiles on anything else.
PercentileBounds parse_percentiles(const std::string& text);
// The inverse of parse_percentiles, exact.
std::string percentiles_text(const PercentileBounds& bounds);

// The affine map to [0, 1]: kept so that inference and reconstruction can scale new data the same way
// and map outputs back to intensities. With clip, values outside [min, max] are clipped first (the
// percentile method), so apply() never leaves [0, 1].
struct Normalisation {
  float min = 0, max = 1;
  bool clip = false;
  float apply(float x) const {
    const float y = (x - min) / (max - min);
    return clip ? (y < 0 ? 0.0f : y > 1 ? 1.0f : y) : y;
  }
  float invert(float y) const { return y * (max - min) + min; }
};

// The value below which `percent` % of the n values lie, interpolated linearly between the two nearest
// order statistics (numpy.percentile's default rule). n > 0; reorders `values`.
double percentile(float* values, int64_t n, double percent);

// The scaling a per-volume method gives one volume's n finite voxels (Volume: its min and max; Percentile:
// its percentiles, with clipping). Throws std::invalid_argument for a global method, and DatasetError
// naming `path` when the bounds coincide (a constant volume, or one whose percentiles are equal).
Normalisation volume_normalisation(const std::string& path, const float* values, int64_t n, NormalizeMethod method,
                                   const PercentileBounds& bounds);

// Where a volume's normalised voxels fall. A model trained on [0, 1] inputs gives meaningless output far
// outside it, which happens when a global scaling meets a volume of another intensity range.
struct RangeCheck {
  int64_t voxels = 0, below = 0, above = 0;  // below kLow, above kHigh
  float lowest = 0, highest = 0;             // normalised
  static constexpr float kLow = -0.05f, kHigh = 1.05f;
  static constexpr double kMaxOutsideFraction = 0.01;
  void add(float normalised);
  double outside_fraction() const { return voxels ? double(below + above) / double(voxels) : 0.0; }
  bool suspicious() const { return outside_fraction() > kMaxOutsideFraction; }
};

// "PATH: 97.1% of its voxels normalise outside [-0.05, 1.05] (to -0.02 .. 39.37) under the 'train'
// scaling (intensities 0 .. 9999 mapped by 0 .. 254) ...": what went wrong and what to do.
std::string range_message(const std::string& path, const RangeCheck& check, NormalizeMethod method,
                          const Normalisation& scaling, float volume_min, float volume_max);

// A suspicious check: with strict, throws DatasetError with range_message; otherwise prints it as a
// warning to `warnings` (when not null). Does nothing for a check within range.
void enforce_range(const std::string& path, const RangeCheck& check, NormalizeMethod method,
                   const Normalisation& scaling, float volume_min, float volume_max, bool strict,
                   std::FILE* warnings);

}  // namespace mriae::io
