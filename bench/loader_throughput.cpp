// Batch loader throughput: slices per second into host batches and, with a GPU, into device batches.
//
//   loader_throughput [--batch 128] [--epochs 5] [--work-us 0] [FILE.nii.gz ...]
//
// With files, the slice set is built from them as training would (central 51 slices, normalised,
// padded); without, it is 1530 synthetic 176 x 176 slices, the tutorial's data set size. --work-us makes
// the consumer spin that long per batch, standing in for a training step: with the loader overlapping,
// the time per batch stays near max(work, load) rather than their sum.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/random.h"
#include "io/batch_loader.h"
#include "io/slice_dataset.h"

using namespace mriae;
using namespace mriae::io;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void spin_for(int64_t us) {
  const auto until = Clock::now() + std::chrono::microseconds(us);
  while (Clock::now() < until) {
  }
}

void run(const char* label, const SliceStack& stack, const std::vector<int64_t>& indices, LoaderOptions opt,
         int epochs, int64_t work_us) {
  const auto t_start = Clock::now();
  BatchLoader loader(stack, indices, opt);
  const double setup = seconds_since(t_start);
  int64_t slices = 0, batches = 0;
  const auto t0 = Clock::now();
  Batch b;
  for (int e = 0; e < epochs; ++e)
    while (loader.next(b)) {
      slices += b.images.dim(0);
      ++batches;
      if (work_us) spin_for(work_us);
    }
  // On a GPU the last copy may still be in flight; reading the batch back waits for it.
  if (b.images.defined()) (void)b.images.item(0);
  const double t = seconds_since(t0);
  const double bytes = double(slices) * double(stack.slice_numel()) * sizeof(float);
  std::printf("%-28s %6lld slices in %7.3f s: %9.0f slices/s, %6.2f GB/s, %7.1f us/batch (setup %.3f s%s)\n",
              label, static_cast<long long>(slices), t, double(slices) / t, bytes / t / 1e9, 1e6 * t / double(batches),
              setup, loader.pinned() ? ", pinned staging" : "");
}

}  // namespace

int main(int argc, char** argv) try {
  int64_t batch = 128, work_us = 0;
  int epochs = 5;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> long long {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return std::atoll(argv[++i]);
    };
    if (a == "--batch") batch = value();
    else if (a == "--epochs") epochs = int(value());
    else if (a == "--work-us") work_us = value();
    else if (a.rfind("--", 0) == 0) throw std::invalid_argument("unknown option " + a);
    else files.push_back(a);
  }

  SliceStack stack;
  std::vector<int64_t> indices;
  if (files.empty()) {
    stack = SliceStack(1530, 176, 176);
    Rng rng(1);
    for (int64_t n = 0; n < stack.count(); ++n)
      for (int64_t p = 0; p < stack.slice_numel(); ++p) stack.slice(n)[p] = float(rng.uniform());
    for (int64_t n = 0; n < 1224; ++n) indices.push_back(n);  // an 80% training split
    std::printf("source: 1530 synthetic slices of 176 x 176, %zu in training\n", indices.size());
  } else {
    const auto t0 = Clock::now();
    SliceDataset ds = build_slice_dataset(files, DatasetOptions{});
    std::printf("source: %zu files -> %lld slices of %lld x %lld, %zu in training (built in %.3f s)\n",
                files.size(), static_cast<long long>(ds.slices.count()), static_cast<long long>(ds.slices.height()),
                static_cast<long long>(ds.slices.width()), ds.split.train.size(), seconds_since(t0));
    indices = ds.split.train;
    stack = std::move(ds.slices);
  }
  std::printf("slice stack in %s host memory; batch %lld, %d epochs, consumer work %lld us/batch\n",
              stack.pinned() ? "pinned" : "pageable", static_cast<long long>(batch), epochs,
              static_cast<long long>(work_us));

  LoaderOptions opt;
  opt.batch_size = batch;
  run("host batches", stack, indices, opt, epochs, work_us);
  if (cuda_available()) {
    opt.device = Device::CUDA;
    run("device batches", stack, indices, opt, epochs, work_us);
  } else {
    std::printf("device batches: skipped (no CUDA GPU)\n");
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "loader_throughput: %s\n", e.what());
  return 1;
}
