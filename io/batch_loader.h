#pragma once
// Shuffled mini-batches [B, 1, H, W] from a slice source, assembled on a background thread.
//
// The thread fills two staging slots in turn while the consumer computes on the batch in the other, so
// gathering batch k+1 (and, on a GPU, its host-to-device copy on the loader's own stream) overlaps the
// compute on batch k. On the CPU the staging slot is itself the batch handed out. On a GPU the slots are
// pinned host buffers, each with a device tensor; the consumer's compute stream waits on the copy's event
// instead of the host, and the loader's copy stream waits until the consumer's stream is done with a slot
// before overwriting it.
//
//   BatchLoader loader(dataset.slices, dataset.split.train, options);
//   for (int e = 0; e < epochs; ++e) {
//     Batch b;
//     while (loader.next(b)) train_step(b.images);  // false once at the end of each epoch
//   }
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/device.h"
#include "engine/tensor.h"
#include "io/crop.h"
#include "io/host_buffer.h"
#include "io/slice_source.h"

namespace mriae::io {

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;        // a new order every epoch, drawn from (seed, epoch)
  bool drop_last = false;     // Keras yields the last partial batch; dropping it keeps every batch full
  uint64_t seed = 13;
  int64_t first_epoch = 0;    // the epoch whose order comes first (to resume a run where it stopped)
  Device device = Device::CPU;
  // The cudaStream_t the consumer computes on (as void* so this header needs no CUDA include). Batches are
  // ordered against it: its work waits for a batch's copy, and a slot is refilled only after the work
  // queued on it before the next call to next(). nullptr means the engine's compute stream, the one every
  // op and Tensor copy runs on (not the legacy default stream, which that stream does not wait for).
  void* compute_stream = nullptr;
  // Data parallelism: each batch_size batch (the global batch) is split into `shards` contiguous parts and
  // this loader delivers part `shard`; with n slices in a batch, the first n % shards parts take one more
  // (shard_range). Every shard's loader draws the same order.
  int shard = 0, shards = 1;
  // Nonzero: each slice is delivered as a random crop x crop window of it (io/crop.h), drawn from (seed,
  // epoch, the slice's position in the epoch's order), and batches are [b, 1, crop, crop].
  int64_t crop = 0;
};

// Where part `shard` of `shards` lies in a batch of n: [begin, begin + count).
struct ShardRange {
  int64_t begin, count;
};
ShardRange shard_range(int64_t n, int shard, int shards);

struct Batch {
  // [b, 1, H, W] on LoaderOptions::device, b = batch_size except perhaps for an epoch's last batch.
  // It shares the loader's slot memory: valid until the next call to next().
  Tensor images;
  std::vector<int64_t> indices;  // the source's slice indices, in batch order
  std::vector<CropWindow> windows;  // with LoaderOptions::crop: each slice's window, in batch order
  int64_t epoch = 0;
  int64_t number = 0;            // the batch's position in its epoch
  int64_t global_size = 0;       // the slices of the whole batch, all shards together
};

class BatchLoader {
 public:
  // `source` must outlive the loader; `indices` are the slices to draw from (e.g. the training split),
  // each once per epoch. Throws std::invalid_argument on an empty epoch or an index outside the source,
  // and std::runtime_error when the device is CUDA and no GPU is there.
  BatchLoader(const SliceSource& source, std::vector<int64_t> indices, LoaderOptions options = {});
  // Stops and joins the thread, also mid-epoch.
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Hands out the next batch of the current epoch, or returns false (once) at its end, after which the
  // following call starts the next epoch. Rethrows an exception raised on the loader's thread.
  bool next(Batch& out);

  int64_t batches_per_epoch() const { return per_epoch_; }
  int64_t epoch() const;  // the epoch the next call to next() draws from
  bool pinned() const;    // staging in page-locked memory (GPU delivery)

  // The order in which epoch `epoch` visits `indices` (shuffled or not, as options say).
  static std::vector<int64_t> epoch_order(const std::vector<int64_t>& indices, const LoaderOptions& options,
                                          int64_t epoch);

 private:
  static constexpr int kSlots = 2;
  struct Slot {
    Tensor host;        // CPU delivery: the batch itself
    HostBuffer staging; // GPU delivery: pinned source of the copy
    Tensor device;      // GPU delivery: the batch
    std::vector<int64_t> indices;
    std::vector<CropWindow> windows;
    int64_t epoch = 0, number = 0, global_size = 0;
  };
  struct Cuda;  // stream and events, CUDA builds only

  void produce();
  void fill(Slot& slot, int slot_no, const std::vector<int64_t>& order, int64_t epoch, int64_t number);
  void release_held(std::unique_lock<std::mutex>& lock);

  const SliceSource& source_;
  const std::vector<int64_t> indices_;
  const LoaderOptions options_;
  const int64_t height_, width_, per_epoch_;
  const int64_t out_height_, out_width_;  // of a delivered slice: the crop, or the whole slice
  std::vector<float> whole_;              // the loader thread's copy of a slice to crop from (--crop)
  Slot slots_[kSlots];
  std::unique_ptr<Cuda> cuda_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  int64_t produced_ = 0;  // batches the thread has published (written by the thread, under mu_)
  int64_t taken_ = 0;     // batches handed out
  int64_t released_ = 0;  // batches the consumer is done with
  bool holding_ = false;  // the consumer holds batch taken_ - 1
  int64_t epoch_ = 0, taken_in_epoch_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace mriae::io
