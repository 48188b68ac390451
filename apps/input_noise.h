#pragma once
// Seeded Gaussian noise on input slices: the evaluation's noisy inputs and the noisy inputs of denoising
// training (--train-noise). Each batch's noise is a pure function of (seed, epoch, batch), not of a
// generator's running state, so an interrupted run resumed mid-epoch draws exactly the noise the
// uninterrupted run would have.
#include <cstdint>
#include <vector>

#include "engine/tensor.h"
#include "io/crop.h"
#include "io/slice_source.h"

namespace mriae {

// The tutorial's np.random.normal(0, sigma, shape) added to every value (padding included), unclipped,
// from a SplitMix64 stream seeded with `stream_seed` (Box-Muller, one value per normal), starting at the
// stream's value `first_value`.
void add_gaussian_noise(float* x, int64_t n, double sigma, uint64_t stream_seed, int64_t first_value = 0);

// The stream seed of batch `batch` of epoch `epoch` of a run seeded `seed`. kValidationEpoch names the
// validation batches, whose noise is the same every epoch so their losses compare across epochs.
constexpr int64_t kValidationEpoch = -1;
uint64_t batch_noise_seed(uint64_t seed, int64_t epoch, int64_t batch);

// Where slices sit in the sequence of batches whose noise is drawn: the slice at `position` (counted from
// the epoch's first slice) is in batch position / batch_size of `epoch` (kValidationEpoch: the validation
// slices), and its noise is that batch's stream from value (position % batch_size) * H * W on.
struct NoisePlace {
  uint64_t seed = 0;
  int64_t epoch = 0;
  int64_t batch_size = 1;
  int64_t first_position = 0;  // of the first slice given
};

// The slices `indices` of `source`, which sit one after another from `place.first_position`, with noise of
// `sigma`, as a [b, 1, H, W] tensor on `device`. A rank's part of a batch (or of the validation slices) gets
// the same noise as the same slices in one process's whole batch. With `crop` > 0, slice i is cut to its
// crop x crop window windows[i] first (--crop), and the noise is drawn for the window's pixels: the tensor is
// [b, 1, crop, crop] and value k of a slice's stream falls on pixel k of its window.
Tensor noisy_batch(const io::SliceSource& source, const std::vector<int64_t>& indices, double sigma,
                   const NoisePlace& place, Device device, int64_t crop = 0,
                   const std::vector<io::CropWindow>& windows = {});

}  // namespace mriae
