#include <doctest/doctest.h>

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
