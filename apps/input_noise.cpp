#include "apps/input_noise.h"

#include <stdexcept>

#include "engine/random.h"

namespace mriae {

void add_gaussian_noise(float* x, int64_t n, double sigma, uint64_t stream_seed, int64_t first_value) {
  Rng rng(stream_seed);
  rng.skip(2 * uint64_t(first_value));  // normal() takes two draws
  for (int64_t i = 0; i < n; ++i) x[i] += float(sigma * rng.normal());
}

uint64_t batch_noise_seed(uint64_t seed, int64_t epoch, int64_t batch) {
  // Each component goes through a SplitMix64 step before the next is mixed in, so that neighbouring
  // (epoch, batch) pairs give unrelated streams, and none coincides with the run's own seed.
  auto mix = [](uint64_t state, uint64_t value) { return Rng(state ^ value).next_u64(); };
  uint64_t s = mix(seed, 0x6e6f697365ull);  // "noise"
  s = mix(s, uint64_t(epoch));
  return mix(s, uint64_t(batch));
}

Tensor noisy_batch(const io::SliceSource& source, const std::vector<int64_t>& indices, double sigma,
                   const NoisePlace& place, Device device, int64_t crop,
                   const std::vector<io::CropWindow>& windows) {
  if (place.batch_size <= 0 || place.first_position < 0)
    throw std::invalid_argument("noisy_batch: need a positive batch size and a position >= 0");
  if (crop && windows.size() != indices.size())
    throw std::invalid_argument("noisy_batch: a crop needs one window for each slice");
  const int64_t height = crop ? crop : source.height(), width = crop ? crop : source.width();
  const int64_t plane = height * width, b = int64_t(indices.size());
  std::vector<float> x(size_t(b * plane));
  std::vector<float> whole;
  for (int64_t i = 0; i < b; ++i) {
    float* slice = x.data() + i * plane;
    io::copy_slice_window(source, indices[size_t(i)], crop, crop ? windows[size_t(i)] : io::CropWindow{}, whole, slice);
    const int64_t p = place.first_position + i;
    add_gaussian_noise(slice, plane, sigma, batch_noise_seed(place.seed, place.epoch, p / place.batch_size),
                       (p % place.batch_size) * plane);
  }
  return Tensor::from_vector({b, 1, height, width}, x, device);
}

}  // namespace mriae
