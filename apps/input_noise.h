#pragma once
// Seeded Gaussian noise on input slices: the evaluation's noisy inputs and the noisy inputs of denoising
// training (--train-noise). Each batch's noise is a pure function of (seed, epoch, batch), not of a
// generator's running state, so an interrupted run resumed mid-epoch draws exactly the noise the
// uninterrupted run would have.
#include <cstdint>
#include <vector>

#include "engine/tensor.h"
#include "io/slice_source.h"

namespace mriae {

// The tutorial's np.random.normal(0, sigma, shape) added to every value (padding included), unclipped,
// from a SplitMix64 stream seeded with `stream_seed` (Box-Muller, one value per draw).
void add_gaussian_noise(float* x, int64_t n, double sigma, uint64_t stream_seed);

// The stream seed of batch `batch` of epoch `epoch` of a run seeded `seed`. kValidationEpoch names the
// validation batches, whose noise is the same every epoch so their losses compare across epochs.
constexpr int64_t kValidationEpoch = -1;
uint64_t batch_noise_seed(uint64_t seed, int64_t epoch, int64_t batch);

// The slices `indices` of `source` with noise of `sigma` from `stream_seed`, as a [b, 1, H, W] tensor
// on `device`.
Tensor noisy_batch(const io::SliceSource& source, const std::vector<int64_t>& indices, double sigma,
                   uint64_t stream_seed, Device device);

}  // namespace mriae
