#pragma once
// A small seeded generator with a fixed, documented output: the same seed gives the same numbers with
// every compiler and standard library (std::uniform_real_distribution does not promise that).
#include <cmath>
#include <cstdint>

namespace mriae {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  // SplitMix64.
  uint64_t next_u64() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal by Box-Muller, one value per call.
  double normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // Moves on as `draws` calls of next_u64() would, in one step: SplitMix64's state is a counter. (normal()
  // and uniform() take two draws and one.)
  void skip(uint64_t draws) { state_ += draws * 0x9E3779B97F4A7C15ull; }
  uint64_t state() const { return state_; }

 private:
  uint64_t state_;
};

}  // namespace mriae
