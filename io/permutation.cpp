#include "io/permutation.h"

#include <numeric>
#include <utility>

namespace mriae::io {

uint64_t uniform_below(Rng& rng, uint64_t n) {
  // 2^64 mod n values at the bottom of the range would make some residues more likely; skip them.
  const uint64_t threshold = (0 - n) % n;
  for (;;) {
    const uint64_t r = rng.next_u64();
    if (r >= threshold) return r % n;
  }
}

void shuffle_in_place(std::vector<int64_t>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = size_t(uniform_below(rng, i));
    std::swap(v[i - 1], v[j]);
  }
}

std::vector<int64_t> random_permutation(int64_t n, Rng& rng) {
  std::vector<int64_t> v(size_t(n < 0 ? 0 : n));
  std::iota(v.begin(), v.end(), int64_t(0));
  shuffle_in_place(v, rng);
  return v;
}

}  // namespace mriae::io
