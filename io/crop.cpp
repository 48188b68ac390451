#include "io/crop.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "engine/random.h"
#include "io/permutation.h"

namespace mriae::io {

CropWindow crop_window(uint64_t seed, int64_t epoch, int64_t position, int64_t height, int64_t width,
                       int64_t size) {
  if (size < 1 || size > height || size > width)
    throw std::invalid_argument("a crop of " + std::to_string(size) + " does not fit a " + std::to_string(height) +
                                "x" + std::to_string(width) + " slice");
  // As the noise streams (apps/input_noise.cpp): each component passes through a SplitMix64 step before
  // the next is mixed in, so neighbouring (epoch, position) pairs draw unrelated windows.
  auto mix = [](uint64_t state, uint64_t value) { return Rng(state ^ value).next_u64(); };
  uint64_t s = mix(seed, 0x63726f70ull);  // "crop"
  s = mix(s, uint64_t(epoch));
  Rng rng(mix(s, uint64_t(position)));
  CropWindow w;
  w.top = int64_t(uniform_below(rng, uint64_t(height - size + 1)));
  w.left = int64_t(uniform_below(rng, uint64_t(width - size + 1)));
  return w;
}

void copy_slice_window(const SliceSource& source, int64_t index, int64_t size, CropWindow window,
                       std::vector<float>& scratch, float* dst) {
  if (size == 0) return source.copy_slice(index, dst);
  const int64_t width = source.width();
  scratch.resize(size_t(source.height() * width));
  source.copy_slice(index, scratch.data());
  for (int64_t y = 0; y < size; ++y)
    std::memcpy(dst + y * size, scratch.data() + (window.top + y) * width + window.left, size_t(size) * sizeof(float));
}

int64_t default_crops_per_slice(int64_t height, int64_t width, int64_t size) {
  return std::max<int64_t>(1, std::llround(double(height) * double(width) / (double(size) * double(size))));
}

}  // namespace mriae::io
