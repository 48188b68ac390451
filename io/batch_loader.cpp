#include "io/batch_loader.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "engine/random.h"
#include "io/cuda_status.h"
#include "io/permutation.h"

namespace mriae::io {

#ifdef MRIAE_WITH_CUDA
struct BatchLoader::Cuda {
  int device = 0;
  cudaStream_t copy_stream = nullptr;
  cudaStream_t compute_stream = nullptr;
  cudaEvent_t ready[kSlots] = {};     // recorded on the copy stream after a slot's copy
  cudaEvent_t consumed[kSlots] = {};  // recorded on the compute stream when the consumer lets a slot go

  ~Cuda() {
    if (copy_stream) MRIAE_IO_CUDA_REPORT(cudaStreamSynchronize(copy_stream));
    for (int s = 0; s < kSlots; ++s) {
      if (ready[s]) MRIAE_IO_CUDA_REPORT(cudaEventDestroy(ready[s]));
      if (consumed[s]) MRIAE_IO_CUDA_REPORT(cudaEventDestroy(consumed[s]));
    }
    if (copy_stream) MRIAE_IO_CUDA_REPORT(cudaStreamDestroy(copy_stream));
  }
};
#else
struct BatchLoader::Cuda {};
#endif

namespace {

int64_t count_batches(int64_t n, int64_t batch, bool drop_last) {
  if (batch < 1) throw std::invalid_argument("batch size " + std::to_string(batch) + " is not positive");
  return drop_last ? n / batch : (n + batch - 1) / batch;
}

// Epoch e's generator: a hash of the seed plus e, so every epoch of every seed starts its own SplitMix64
// stream (seeding with seed + e * gamma would only shift one stream by e steps, and orders would repeat
// shifted).
uint64_t epoch_seed(uint64_t seed, int64_t epoch) {
  Rng mix(seed ^ 0x6A09E667F3BCC909ull);
  return mix.next_u64() + uint64_t(epoch);
}

}  // namespace

ShardRange shard_range(int64_t n, int shard, int shards) {
  const int64_t base = n / shards, extra = n % shards;
  return {shard * base + std::min<int64_t>(shard, extra), base + (shard < extra ? 1 : 0)};
}

std::vector<int64_t> BatchLoader::epoch_order(const std::vector<int64_t>& indices, const LoaderOptions& options,
                                              int64_t epoch) {
  std::vector<int64_t> order = indices;
  if (options.shuffle) {
    Rng rng(epoch_seed(options.seed, epoch));
    shuffle_in_place(order, rng);
  }
  return order;
}

BatchLoader::BatchLoader(const SliceSource& source, std::vector<int64_t> indices, LoaderOptions options)
    : source_(source),
      indices_(std::move(indices)),
      options_(options),
      height_(source.height()),
      width_(source.width()),
      per_epoch_(count_batches(int64_t(indices_.size()), options.batch_size, options.drop_last)),
      out_height_(options.crop ? options.crop : height_),
      out_width_(options.crop ? options.crop : width_),
      epoch_(options.first_epoch) {
  if (options.crop < 0 || options.crop > height_ || options.crop > width_)
    throw std::invalid_argument("a crop of " + std::to_string(options.crop) + " does not fit the " +
                                std::to_string(height_) + "x" + std::to_string(width_) + " slices");
  if (options.shards < 1 || options.shard < 0 || options.shard >= options.shards)
    throw std::invalid_argument("loader shard " + std::to_string(options.shard) + " of " +
                                std::to_string(options.shards));
  if (per_epoch_ == 0)
    throw std::invalid_argument("the loader has no batch to yield: " + std::to_string(indices_.size()) +
                                " slices, batch size " + std::to_string(options.batch_size) +
                                (options.drop_last ? ", partial batches dropped" : ""));
  for (int64_t i : indices_)
    if (i < 0 || i >= source_.count())
      throw std::invalid_argument("slice index " + std::to_string(i) + " outside a source of " +
                                  std::to_string(source_.count()) + " slices");
  const Shape shape{options.batch_size, 1, out_height_, out_width_};
  if (options.device == Device::CPU) {
    for (Slot& s : slots_) s.host = Tensor::empty(shape);
  } else {
    if (!cuda_available())
      throw std::runtime_error("the batch loader was asked for CUDA batches, but no CUDA GPU is available");
#ifdef MRIAE_WITH_CUDA
    cuda_ = std::make_unique<Cuda>();
    MRIAE_IO_CUDA_CHECK(cudaGetDevice(&cuda_->device));
    MRIAE_IO_CUDA_CHECK(cudaStreamCreateWithFlags(&cuda_->copy_stream, cudaStreamNonBlocking));
    cuda_->compute_stream = static_cast<cudaStream_t>(options.compute_stream ? options.compute_stream
                                                                             : gpu_compute_stream());
    for (int s = 0; s < kSlots; ++s) {
      MRIAE_IO_CUDA_CHECK(cudaEventCreateWithFlags(&cuda_->ready[s], cudaEventDisableTiming));
      MRIAE_IO_CUDA_CHECK(cudaEventCreateWithFlags(&cuda_->consumed[s], cudaEventDisableTiming));
      slots_[s].staging = HostBuffer(size_t(shape_numel(shape)) * sizeof(float), HostMemory::Pinned);
      slots_[s].device = Tensor::empty(shape, Device::CUDA);
      // The caching allocator may hand out a block that kernels queued on the compute stream still use:
      // the first upload into the slot waits for them as every later one waits for the consumer.
      MRIAE_IO_CUDA_CHECK(cudaEventRecord(cuda_->consumed[s], cuda_->compute_stream));
    }
#endif
  }
  thread_ = std::thread([this] { produce(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // cuda_ (declared after the slots, so destroyed before them) waits for the last copy into a slot.
}

int64_t BatchLoader::epoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return epoch_;
}

bool BatchLoader::pinned() const { return slots_[0].staging.pinned(); }

void BatchLoader::produce() {
  try {
#ifdef MRIAE_WITH_CUDA
    // The runtime's current device is per thread.
    if (cuda_) MRIAE_IO_CUDA_CHECK(cudaSetDevice(cuda_->device));
#endif
    int64_t seq = 0;  // this thread's count of published batches (produced_ mirrors it under the lock)
    for (int64_t epoch = options_.first_epoch;; ++epoch) {
      const std::vector<int64_t> order = epoch_order(indices_, options_, epoch);
      for (int64_t b = 0; b < per_epoch_; ++b, ++seq) {
        {
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait(lock, [&] { return stop_ || seq - released_ < kSlots; });
          if (stop_) return;
        }
        const int slot_no = int(seq % kSlots);
        fill(slots_[slot_no], slot_no, order, epoch, b);
        {
          std::lock_guard<std::mutex> lock(mu_);
          produced_ = seq + 1;
        }
        cv_.notify_all();
      }
    }
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      error_ = std::current_exception();
    }
    cv_.notify_all();
  }
}

void BatchLoader::fill(Slot& slot, int slot_no, const std::vector<int64_t>& order, int64_t epoch, int64_t number) {
  const int64_t begin = number * options_.batch_size;
  const int64_t whole = std::min(options_.batch_size, int64_t(order.size()) - begin);
  const ShardRange part = shard_range(whole, options_.shard, options_.shards);
  const int64_t n = part.count, per = out_height_ * out_width_;
  slot.indices.assign(order.begin() + begin + part.begin, order.begin() + begin + part.begin + n);
  slot.windows.clear();
  for (int64_t i = 0; options_.crop && i < n; ++i)
    slot.windows.push_back(crop_window(options_.seed, epoch, begin + part.begin + i, height_, width_, options_.crop));
  slot.epoch = epoch;
  slot.number = number;
  slot.global_size = whole;
  auto gather = [&](float* dst) {
    for (int64_t i = 0; i < n; ++i)
      copy_slice_window(source_, slot.indices[size_t(i)], options_.crop,
                        options_.crop ? slot.windows[size_t(i)] : CropWindow{}, whole_, dst + i * per);
  };
  if (!cuda_) {
    gather(slot.host.data());
    return;
  }
#ifdef MRIAE_WITH_CUDA
  // The previous copy out of this staging buffer must be finished before it is overwritten.
  MRIAE_IO_CUDA_CHECK(cudaEventSynchronize(cuda_->ready[slot_no]));
  float* dst = slot.staging.floats();
  gather(dst);
  // And the consumer's work on the device copy queued before it let the slot go.
  MRIAE_IO_CUDA_CHECK(cudaStreamWaitEvent(cuda_->copy_stream, cuda_->consumed[slot_no], 0));
  MRIAE_IO_CUDA_CHECK(cudaMemcpyAsync(slot.device.data(), dst, size_t(n * per) * sizeof(float),
                                      cudaMemcpyHostToDevice, cuda_->copy_stream));
  MRIAE_IO_CUDA_CHECK(cudaEventRecord(cuda_->ready[slot_no], cuda_->copy_stream));
#else
  (void)slot_no;
#endif
}

void BatchLoader::release_held(std::unique_lock<std::mutex>&) {
  if (!holding_) return;
#ifdef MRIAE_WITH_CUDA
  if (cuda_) MRIAE_IO_CUDA_CHECK(cudaEventRecord(cuda_->consumed[(taken_ - 1) % kSlots], cuda_->compute_stream));
#endif
  holding_ = false;
  ++released_;
  cv_.notify_all();
}

bool BatchLoader::next(Batch& out) {
  std::unique_lock<std::mutex> lock(mu_);
  release_held(lock);
  if (taken_in_epoch_ == per_epoch_) {
    taken_in_epoch_ = 0;
    ++epoch_;
    return false;
  }
  cv_.wait(lock, [&] { return taken_ < produced_ || error_; });
  if (taken_ == produced_) std::rethrow_exception(error_);
  const int slot_no = int(taken_ % kSlots);
  ++taken_;
  ++taken_in_epoch_;
  holding_ = true;
  lock.unlock();

  // The thread leaves this slot alone until the next call releases it.
  Slot& slot = slots_[slot_no];
  const Shape shape{int64_t(slot.indices.size()), 1, out_height_, out_width_};
#ifdef MRIAE_WITH_CUDA
  if (cuda_) {
    MRIAE_IO_CUDA_CHECK(cudaStreamWaitEvent(cuda_->compute_stream, cuda_->ready[slot_no], 0));
    out.images = slot.device.view(0, shape);
  } else {
    out.images = slot.host.view(0, shape);
  }
#else
  out.images = slot.host.view(0, shape);
#endif
  out.indices = slot.indices;
  out.windows = slot.windows;
  out.epoch = slot.epoch;
  out.number = slot.number;
  out.global_size = slot.global_size;
  return true;
}

}  // namespace mriae::io
