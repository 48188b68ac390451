#include <doctest/doctest.h>

#include <cstdint>

#include "engine/tensor.h"

using namespace mriae;

TEST_CASE("tensor views share storage") {
  Tensor t = Tensor::from_vector({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor v = t.view(3, {3});
  CHECK(v.item(0) == 4);
  v.data()[1] = 50;
  CHECK(t.item(4) == 50);
  CHECK_THROWS_AS(t.view(4, {3}), std::out_of_range);
}

TEST_CASE("large host tensors start on a 2 MiB boundary (huge pages), small ones on 64 bytes") {
  const Tensor big = Tensor::empty({int64_t(3) << 18});  // 3 MiB of floats
  const Tensor small = Tensor::empty({1000});
  CHECK(reinterpret_cast<uintptr_t>(big.data()) % (uintptr_t(2) << 20) == 0);
  CHECK(reinterpret_cast<uintptr_t>(small.data()) % 64 == 0);
}
