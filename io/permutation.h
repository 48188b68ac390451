#pragma once
// Seeded shuffling with a fixed output for a given seed on every platform (std::shuffle and
// std::uniform_int_distribution leave their algorithms to the library).
#include <cstdint>
#include <vector>

#include "engine/random.h"

namespace mriae::io {

// Uniform in [0, n), n > 0, without modulo bias (rejection of the short top range).
uint64_t uniform_below(Rng& rng, uint64_t n);

// Fisher-Yates, from the last element down.
void shuffle_in_place(std::vector<int64_t>& v, Rng& rng);

// 0, 1, ..., n-1 in an order drawn from rng.
std::vector<int64_t> random_permutation(int64_t n, Rng& rng);

}  // namespace mriae::io
