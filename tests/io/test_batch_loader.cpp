// The background batch loader: coverage and order per epoch, partial batches, shutdown and errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/device.h"
#include "io/batch_loader.h"
#include "io/slice_stack.h"

using namespace mriae;
using namespace mriae::io;

namespace {

constexpr int64_t kH = 3, kW = 4;

// Slice n holds n * 100 + p at pixel p, so a batch's content says which slices it holds and in what layout.
SliceStack numbered_stack(int64_t count) {
  SliceStack s(count, kH, kW, HostMemory::Pageable);
  for (int64_t n = 0; n < count; ++n)
    for (int64_t p = 0; p < kH * kW; ++p) s.slice(n)[p] = float(n * 100 + p);
  return s;
}

// The slice indices a batch's pixels encode, checking each slice's layout on the way.
std::vector<int64_t> decode(const Batch& b) {
  const std::vector<float> v = b.images.to_vector();
  std::vector<int64_t> out;
  for (int64_t i = 0; i < b.images.dim(0); ++i) {
    const int64_t n = int64_t(v[size_t(i * kH * kW)]) / 100;
    for (int64_t p = 0; p < kH * kW; ++p) REQUIRE(v[size_t(i * kH * kW + p)] == float(n * 100 + p));
    out.push_back(n);
  }
  return out;
}

// A source that fails on one slice, to see the error cross threads.
class FailingSource final : public SliceSource {
 public:
  int64_t count() const override { return 50; }
  int64_t height() const override { return kH; }
  int64_t width() const override { return kW; }
  void copy_slice(int64_t i, float* dst) const override {
    if (i == 37) throw std::runtime_error("slice 37 is unreadable");
    std::fill(dst, dst + kH * kW, float(i));
  }
};

std::vector<int64_t> odd_indices(int64_t count) {
  std::vector<int64_t> v;
  for (int64_t i = 1; i < count; i += 2) v.push_back(i);
  return v;
}

}  // namespace

TEST_CASE("every training slice once per epoch, in a new order each epoch") {
  const SliceStack stack = numbered_stack(207);
  const std::vector<int64_t> train = odd_indices(207);  // 103 slices
  LoaderOptions opt;
  opt.batch_size = 16;
  BatchLoader loader(stack, train, opt);
  CHECK(loader.batches_per_epoch() == 7);  // 6 full + 1 of 7: the last partial batch is yielded

  std::vector<std::vector<int64_t>> orders;
  for (int64_t e = 0; e < 3; ++e) {
    CHECK(loader.epoch() == e);
    std::vector<int64_t> seen;
    Batch b;
    int64_t count = 0;
    while (loader.next(b)) {
      CHECK(b.epoch == e);
      CHECK(b.number == count);
      const int64_t expect = count < 6 ? 16 : 7;
      CHECK(b.images.shape() == Shape{expect, 1, kH, kW});
      const std::vector<int64_t> content = decode(b);
      CHECK(content == b.indices);
      seen.insert(seen.end(), content.begin(), content.end());
      ++count;
    }
    CHECK(count == 7);
    orders.push_back(seen);
    std::vector<int64_t> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == train);  // each exactly once
    CHECK(seen == BatchLoader::epoch_order(train, opt, e));
  }
  CHECK(orders[0] != orders[1]);
  CHECK(orders[1] != orders[2]);
  CHECK(orders[0] != train);

  // The same seed gives the same orders, in a fresh loader too; resuming at epoch 2 starts with epoch 2's.
  LoaderOptions resume = opt;
  resume.first_epoch = 2;
  BatchLoader again(stack, train, resume);
  std::vector<int64_t> seen;
  Batch b;
  while (again.next(b)) seen.insert(seen.end(), b.indices.begin(), b.indices.end());
  CHECK(seen == orders[2]);
  CHECK(again.epoch() == 3);
}

TEST_CASE("drop_last keeps only full batches; shuffle off keeps the given order") {
  const SliceStack stack = numbered_stack(207);
  const std::vector<int64_t> train = odd_indices(207);
  LoaderOptions opt;
  opt.batch_size = 16;
  opt.drop_last = true;
  BatchLoader loader(stack, train, opt);
  CHECK(loader.batches_per_epoch() == 6);
  Batch b;
  std::set<int64_t> seen;
  while (loader.next(b)) {
    CHECK(b.images.dim(0) == 16);
    for (int64_t i : decode(b)) CHECK(seen.insert(i).second);
  }
  CHECK(seen.size() == 96);

  LoaderOptions plain;
  plain.batch_size = 50;
  plain.shuffle = false;
  BatchLoader ordered(stack, train, plain);
  std::vector<int64_t> order;
  for (int e = 0; e < 2; ++e) {
    order.clear();
    while (ordered.next(b)) {
      const auto d = decode(b);
      order.insert(order.end(), d.begin(), d.end());
    }
    CHECK(order == train);
  }
}

TEST_CASE("the loader stops cleanly mid-epoch, before the first batch and after many epochs") {
  const SliceStack stack = numbered_stack(100);
  std::vector<int64_t> all(100);
  std::iota(all.begin(), all.end(), 0);
  LoaderOptions opt;
  opt.batch_size = 8;
  for (int rep = 0; rep < 20; ++rep) {
    BatchLoader unused(stack, all, opt);  // destroyed with the thread blocked on full slots, or still starting
  }
  {
    BatchLoader loader(stack, all, opt);
    Batch b;
    REQUIRE(loader.next(b));
    REQUIRE(loader.next(b));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // let the thread fill and block
  }
  {
    BatchLoader loader(stack, all, opt);
    Batch b;
    for (int e = 0; e < 5; ++e)
      while (loader.next(b)) {
      }
    REQUIRE(loader.next(b));  // epoch 5 started, then abandoned
    CHECK(b.epoch == 5);
  }
}

TEST_CASE("an exception on the loader's thread is rethrown to the consumer") {
  const FailingSource source;
  std::vector<int64_t> all(50);
  std::iota(all.begin(), all.end(), 0);
  LoaderOptions opt;
  opt.batch_size = 10;
  opt.shuffle = false;  // slice 37 is in batch 3
  BatchLoader loader(source, all, opt);
  Batch b;
  for (int i = 0; i < 3; ++i) REQUIRE(loader.next(b));  // batches 0..2 arrive intact
  CHECK(b.images.item(0) == 20.0f);
  CHECK_THROWS_WITH_AS(loader.next(b), "slice 37 is unreadable", std::runtime_error);
  CHECK_THROWS_WITH_AS(loader.next(b), "slice 37 is unreadable", std::runtime_error);  // and stays failed
}

TEST_CASE("loader arguments are checked") {
  const SliceStack stack = numbered_stack(10);
  LoaderOptions opt;
  opt.batch_size = 0;
  CHECK_THROWS_AS(BatchLoader(stack, {0, 1}, opt), std::invalid_argument);
  opt.batch_size = 4;
  CHECK_THROWS_AS(BatchLoader(stack, {}, opt), std::invalid_argument);
  CHECK_THROWS_AS(BatchLoader(stack, {0, 10}, opt), std::invalid_argument);
  opt.drop_last = true;
  CHECK_THROWS_AS(BatchLoader(stack, {0, 1, 2}, opt), std::invalid_argument);  // no full batch
  if (!cuda_available()) {
    LoaderOptions gpu;
    gpu.device = Device::CUDA;
    CHECK_THROWS_AS(BatchLoader(stack, {0, 1}, gpu), std::runtime_error);
  }
}

TEST_CASE("GPU delivery: pinned staging, device batches with the right content") {
  if (!cuda_available()) {
    MESSAGE("skipped: no CUDA GPU in this process");
    return;
  }
  const SliceStack stack = numbered_stack(207);
  const std::vector<int64_t> train = odd_indices(207);
  LoaderOptions opt;
  opt.batch_size = 16;
  opt.device = Device::CUDA;
  BatchLoader loader(stack, train, opt);
  CHECK(loader.pinned());
  for (int64_t e = 0; e < 2; ++e) {
    std::vector<int64_t> seen;
    Batch b;
    while (loader.next(b)) {
      CHECK(b.images.device() == Device::CUDA);
      // to_vector copies on the engine's compute stream, which the loader (compute_stream left nullptr)
      // made wait for the batch's upload.
      const auto d = decode(b);
      CHECK(d == b.indices);
      seen.insert(seen.end(), d.begin(), d.end());
    }
    CHECK(seen == BatchLoader::epoch_order(train, opt, e));
  }
}

TEST_CASE("--crop: each slice is delivered as its drawn window; shards crop as one loader does") {
  constexpr int64_t H = 8, W = 12, C = 4, count = 6;
  SliceStack s(count, H, W, HostMemory::Pageable);
  for (int64_t n = 0; n < count; ++n)
    for (int64_t p = 0; p < H * W; ++p) s.slice(n)[p] = float(n * 1000 + p);
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 5;
  o.crop = C;
  const std::vector<int64_t> all = {0, 1, 2, 3, 4, 5};
  BatchLoader whole(s, all, o);
  o.shards = 2;
  BatchLoader first(s, all, o);
  o.shard = 1;
  BatchLoader second(s, all, o);
  std::set<int64_t> tops, lefts;
  for (int64_t epoch = 0; epoch < 30; ++epoch) {
    Batch b, b0, b1;
    int64_t position = 0;
    while (whole.next(b)) {
      REQUIRE(first.next(b0));
      REQUIRE(second.next(b1));
      REQUIRE(b.images.shape() == Shape{b.images.dim(0), 1, C, C});
      REQUIRE(b.windows.size() == b.indices.size());
      const std::vector<float> v = b.images.to_vector();
      for (size_t i = 0; i < b.indices.size(); ++i, ++position) {
        const CropWindow w = b.windows[i];
        const CropWindow drawn = crop_window(5, epoch, position, H, W, C);
        CHECK(w.top == drawn.top);
        CHECK(w.left == drawn.left);
        REQUIRE(w.top + C <= H);
        REQUIRE(w.left + C <= W);
        tops.insert(w.top);
        lefts.insert(w.left);
        for (int64_t y = 0; y < C; ++y)
          for (int64_t x = 0; x < C; ++x)
            REQUIRE(v[i * C * C + size_t(y * C + x)] ==
                    float(b.indices[i] * 1000 + (w.top + y) * W + w.left + x));
      }
      std::vector<int64_t> parts = b0.indices;
      parts.insert(parts.end(), b1.indices.begin(), b1.indices.end());
      CHECK(parts == b.indices);
      for (size_t i = 0; i < b0.windows.size(); ++i) CHECK(b0.windows[i].left == b.windows[i].left);
      for (size_t i = 0; i < b1.windows.size(); ++i) {
        CHECK(b1.windows[i].top == b.windows[b0.windows.size() + i].top);
        CHECK(b1.windows[i].left == b.windows[b0.windows.size() + i].left);
      }
    }
    CHECK_FALSE(first.next(b0));
    CHECK_FALSE(second.next(b1));
  }
  // Every offset is drawn (180 windows over 5 tops and 9 lefts), and only those.
  CHECK(tops.size() == size_t(H - C + 1));
  CHECK(lefts.size() == size_t(W - C + 1));
  CHECK(*tops.rbegin() == H - C);
  CHECK(*lefts.rbegin() == W - C);

  LoaderOptions big;
  big.crop = 10;  // taller than the 8-row slices
  CHECK_THROWS_WITH_AS(BatchLoader(s, all, big), doctest::Contains("a crop of 10 does not fit the 8x12"),
                       std::invalid_argument);
  CHECK(default_crops_per_slice(132, 132, 64) == 4);
  CHECK(default_crops_per_slice(40, 40, 40) == 1);
}
