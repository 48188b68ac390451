#pragma once
// The training run behind `mriae train`: the tutorial's fit() with what users of a training engine expect
// around it (progress, history, plot, checkpoints every epoch, exact resume, clean interruption).
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>

#include "apps/run_config.h"
#include "apps/run_files.h"
#include "engine/collectives.h"

namespace mriae {

// A NaN or infinite loss: training stops before the step that produced it updates any weight.
class TrainingDiverged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TrainResult {
  std::vector<EpochRecord> history;
  bool interrupted = false;
  std::string last_checkpoint, best_checkpoint;
};

// Runs (or, with options.resume, continues) training; writes into options.out_dir:
//   config.json, history.csv, loss.png, last.safetensors (every epoch and on interruption),
//   best.safetensors (lowest val_loss so far).
// console: progress output (null for none). stop_requested, polled after every step, ends the run with a
// checkpoint of the exact position (Ctrl-C); it may be empty.
//
// processes (null: this process alone): data-parallel training over MPI ranks. Every rank builds the same
// data set and shuffled order and takes its part of each global batch of options.batch slices (the first
// ranks one more when it does not divide; an epoch whose last batch would leave a rank without a slice is
// refused), the gradients are summed across ranks (each rank's loss weighted by its share, so uneven parts
// still give the global batch's mean) and every rank applies the same update. Validation is split across
// ranks and reduced. Rank 0 alone prints and writes files; every epoch the ranks check that their weights
// and moving statistics are still bit-identical.
TrainResult train(const TrainOptions& options, std::FILE* console, const std::function<bool()>& stop_requested = {},
                  Collectives* processes = nullptr);

}  // namespace mriae
