#include "apps/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <nlohmann/json.hpp>

#include "apps/input_noise.h"
#include "apps/progress.h"
#include "engine/rmsprop.h"
#include "io/batch_loader.h"
#include "io/crop.h"
#include "model/checkpoint.h"
#include "model/training_step.h"

namespace mriae {

namespace fs = std::filesystem;

namespace {

// Where an epoch stands; saved in every checkpoint so --resume continues at the same batch.
struct Position {
  int64_t epochs_done = 0;   // complete epochs
  int64_t batches_done = 0;  // of the epoch in progress (non-zero only after an interruption)
  double loss_sum = 0;       // sum over those batches of batch loss * batch size
  int64_t samples = 0;
  double best_val_loss = std::numeric_limits<double>::infinity();
};

CheckpointMetadata run_metadata(const TrainOptions& o, const io::SliceDataset& d, const Position& p,
                                const std::vector<EpochRecord>& history, int ranks) {
  CheckpointMetadata m;
  put_data_metadata(m, o.data, d);
  m["train.epochs_done"] = std::to_string(p.epochs_done);
  m["train.batches_done"] = std::to_string(p.batches_done);
  m["train.loss_sum"] = exact(p.loss_sum);
  m["train.samples"] = std::to_string(p.samples);
  m["train.best_val_loss"] = exact(p.best_val_loss);
  m["train.batch"] = std::to_string(o.batch);
  m["train.lr"] = exact(o.lr);
  m["train.lr_schedule"] = o.lr_schedule;
  m["train.lr_floor"] = exact(o.lr_floor);
  m["train.epochs"] = std::to_string(o.epochs);
  // The shuffled order of an epoch is a function of (data.seed, epoch): this is all the RNG state there is.
  m["train.shuffle_seed"] = std::to_string(o.data.seed);
  // So is the noise of --train-noise: a function of (data.seed, epoch, batch).
  m["train.noise_sigma"] = exact(o.train_noise);
  // And the windows of --crop: a function of (data.seed, epoch, position).
  m["train.crop"] = std::to_string(o.crop);
  m["train.crops_per_slice"] = std::to_string(o.crops_per_slice);
  m["train.history"] = history_csv(history);
  m["train.ranks"] = std::to_string(ranks);
  m["train.bn"] = o.bn;
  return m;
}

// The batch a step or validation pass feeds the model: the batch itself, or with --train-noise a noisy
// copy drawn from (seed, epoch, batch), the clean batch staying the target. `offset`: where this rank's part
// begins in the batch (training) or in the validation slices (validation), so that N ranks draw the noise
// one process draws.
Tensor model_input(const TrainOptions& o, const io::SliceSource& source, const io::Batch& b, int64_t epoch,
                   int64_t offset, Device device) {
  if (o.train_noise == 0) return b.images;
  const NoisePlace place{o.data.seed, epoch, o.batch, b.number * o.batch + offset};
  const int64_t crop = b.windows.empty() ? 0 : b.images.dim(2);  // validation batches are whole slices
  return noisy_batch(source, b.indices, o.train_noise, place, device, crop, b.windows);
}

// Mean loss over a loader's slices in inference mode (moving statistics), as Keras computes val_loss
// (from noisy inputs, the same every epoch, when training to denoise). With several ranks, each holds a
// part of the validation slices (perhaps none: no loader) and the sums are reduced.
double evaluate_loss(const TrainOptions& o, Autoencoder& model, io::BatchLoader* loader, const io::SliceSource& source,
                     int64_t first_slice, Device device, Collectives& processes) {
  double sum = 0;
  int64_t n = 0;
  io::Batch b;
  while (loader && loader->next(b)) {
    const Tensor target = model.input(b.images);
    const Tensor input =
        o.train_noise > 0 ? model.input(model_input(o, source, b, kValidationEpoch, first_slice, device)) : target;
    Var loss = mse_loss(nullptr, model.forward(nullptr, Var(input), false), target);
    sum += double(loss.value().item()) * double(b.images.dim(0));
    n += b.images.dim(0);
  }
  if (processes.size() == 1) return sum / double(n);
  double sums[2] = {sum, double(n)};
  processes.sum(sums, 2);
  return sums[0] / sums[1];
}

bool same_normalisation(const io::DatasetOptions& a, const io::DatasetOptions& b) {
  if (a.normalize != b.normalize) return false;
  return a.normalize != io::NormalizeMethod::Percentile ||
         (a.percentiles.lower == b.percentiles.lower && a.percentiles.upper == b.percentiles.upper);
}

// The subjects whose slices are all in validation, by label (the file name where none is given).
std::vector<std::string> held_out_subjects(const DataOptions& o, const io::SliceDataset& d) {
  auto label = [&](int32_t volume) {
    return o.subject_labels.empty() ? fs::path(d.subjects[size_t(volume)].path).filename().string()
                                    : o.subject_labels[size_t(volume)];
  };
  std::map<std::string, std::pair<int64_t, int64_t>> count;  // label -> (validation, all) slices
  for (size_t n = 0; n < d.refs.size(); ++n) ++count[label(d.refs[n].subject)].second;
  for (int64_t n : d.split.validation) ++count[label(d.refs[size_t(n)].subject)].first;
  std::vector<std::string> out;
  for (auto& [l, c] : count)
    if (c.first == c.second) out.push_back(l);
  return out;
}

nlohmann::json config_json(const TrainOptions& o, Device device, const io::SliceDataset& d) {
  return {{"data",
           {{"paths", o.data.paths},
            {"axis", o.data.axis},
            {"slices", o.data.slices.empty() ? "central " + std::to_string(o.data.central) : o.data.slices},
            {"normalize", o.data.normalize},
            {"normalisation", io::is_global(d.method)
                                  ? nlohmann::json{{"min", d.normalisation.min}, {"max", d.normalisation.max}}
                              : d.method == io::NormalizeMethod::Percentile
                                  ? nlohmann::json{{"per_volume", "percentiles"}, {"percentiles", o.data.percentiles}}
                                  : nlohmann::json{{"per_volume", "min and max"}}},
            {"pad", o.data.pad},
            {"slice_size", {d.slices.height(), d.slices.width()}},
            {"split", o.data.split},
            {"val_fraction", o.data.val_fraction},
            {"train_slices", d.split.train.size()},
            {"val_slices", d.split.validation.size()},
            {"seed", o.data.seed},
            {"crop", o.crop},
            {"crops_per_slice", o.crops_per_slice},
            {"conform", o.data.conform ? nlohmann::json{{"voxel_mm", o.data.voxel}, {"interp", o.data.interp}}
                                       : nlohmann::json(false)},
            {"subjects", o.data.subjects},
            {"subject_labels", o.data.subject_labels},
            {"val_subjects", held_out_subjects(o.data, d)}}},
          {"train_noise", {{"sigma", o.train_noise}, {"seed", o.data.seed}}},
          {"epochs", o.epochs},
          {"batch", o.batch},
          {"optimizer",
           {{"name", "RMSprop"},
            {"lr", o.lr},
            {"lr_schedule", o.lr_schedule == "constant"
                                ? nlohmann::json("constant")
                                : nlohmann::json{{"kind", o.lr_schedule}, {"floor", o.lr_floor}}},
            {"rho", 0.9},
            {"eps", 1e-7}}},
          {"loss", "mean_squared_error"},
          {"batchnorm", {{"eps", 1e-3}, {"momentum", 0.99}, {"moving_statistics", "keras-2.2-zero-debiased"}}},
          {"device", device_name(device)},
          {"dtype", o.dtype},
          {"gpu", {{"deterministic", o.deterministic}, {"tf32", o.tf32}}},
          {"resumed_from", o.resume}};
}

// Two position-weighted sums of a tensor's elements, in double: equal on two ranks only if (barring a
// cancellation no training produces) their elements are, in the same places.
void add_checksum(const Tensor& t, double sums[2]) {
  const Tensor h = t.device() == Device::CPU ? t : t.to(Device::CPU);
  const int64_t n = h.numel();
  auto add = [&](const auto* v) {
    for (int64_t i = 0; i < n; ++i) {
      sums[0] += double(v[i]);
      sums[1] += double(v[i]) * double(i % 8191 + 1);
    }
  };
  if (h.dtype() == DType::Float64)
    add(h.data<double>());
  else
    add(h.data<float>());
}

// The first of n values that is not the same on every rank, or -1.
int first_difference(Collectives& processes, const double* mine, int n) {
  std::vector<double> hi(mine, mine + n), lo(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) lo[size_t(i)] = -mine[i];
  processes.max(hi.data(), n);
  processes.max(lo.data(), n);
  for (int i = 0; i < n; ++i)
    if (hi[size_t(i)] != -lo[size_t(i)]) return i;
  return -1;
}

// Every rank applies the same update to the same weights, so they stay bit-identical; this checks it (a
// pass over the 428k parameters and the moving statistics, and two reductions of 4 doubles: well under a
// millisecond an epoch, so it is always on). A difference is an error on every rank.
void check_ranks_agree(const Autoencoder& model, const RMSprop& optimizer, Collectives& processes, int64_t epoch) {
  if (processes.size() == 1) return;
  double mine[4] = {0, 0, 0, 0};
  add_checksum(model.parameters().flat_values(), mine);
  add_checksum(optimizer.accumulators(), mine);
  for (const BatchNormState& b : model.bn_states()) {
    add_checksum(b.moving_mean, mine + 2);
    add_checksum(b.moving_var, mine + 2);
  }
  const int differs = first_difference(processes, mine, 4);
  if (differs >= 0) {
    char text[256];
    std::snprintf(text, sizeof text, "the ranks' %s differ after epoch %lld (this rank's checksum %.17g): the "
                  "data-parallel update is broken", differs < 2 ? "weights" : "batchnorm moving statistics",
                  (long long)epoch, mine[differs]);
    throw std::runtime_error(text);
  }
}

// Every rank must train on the same slices in the same order, or the summed gradients belong to no data set
// (a node with other files at the --data paths, or another normalisation): a fingerprint of the slice set
// and the split, compared once before training (one pass over the slices).
void check_same_data(const io::SliceDataset& d, Collectives& processes) {
  if (processes.size() == 1) return;
  double mine[4] = {double(d.slices.count()), 0, 0, 0};
  for (size_t i = 0; i < d.split.train.size(); ++i) mine[1] += double(d.split.train[i]) * double(i % 8191 + 1);
  std::vector<float> slice(size_t(d.slices.height() * d.slices.width()));
  for (int64_t n = 0; n < d.slices.count(); ++n) {
    d.slices.copy_slice(n, slice.data());
    add_checksum(Tensor::from_vector({int64_t(slice.size())}, slice), mine + 2);
  }
  if (first_difference(processes, mine, 4) >= 0)
    throw std::invalid_argument("the ranks built different data sets (this rank: " + std::to_string(d.slices.count()) +
                                " slices): every rank must read the same --data files, with the same contents, at "
                                "the same paths, and the same data options");
}

}  // namespace

TrainResult train(const TrainOptions& given, std::FILE* console, const std::function<bool()>& stop_requested,
                  Collectives* processes) {
  const std::unique_ptr<Collectives> alone = processes ? nullptr : single_process();
  Collectives& group = processes ? *processes : *alone;
  const int ranks = group.size(), rank = group.rank();
  const bool writer = rank == 0;  // rank 0 alone prints and writes files
  if (!writer) console = nullptr;
  TrainOptions options = given;
  options.data.resolve_subjects();
  options.validate();
  std::error_code ec;
  if (writer) fs::create_directories(options.out_dir, ec);
  if (ec) throw std::runtime_error(options.out_dir + ": cannot create the output folder: " + ec.message());
  const DType dtype = parse_dtype(options.dtype);
  const Device device = resolve_device(options.device, dtype);
  if (device == Device::CUDA) configure_gpu({options.deterministic, options.tf32});

  AutoencoderConfig mc;
  mc.seed = options.data.seed;
  mc.device = device;
  mc.dtype = dtype;
  if (ranks > 1 && options.bn == "global") {
    if (device == Device::CUDA)
      throw std::invalid_argument("--bn global (batchnorm over the global batch) runs on the CPU only so far; on GPUs "
                                  "use --bn per-rank");
    mc.bn.shared_batch = &group;
  }
  Autoencoder model(mc);
  RMSprop optimizer(model.parameters(), {options.lr, 0.9, 1e-7});
  Position pos;
  TrainResult result;

  io::DatasetOptions dopts = options.data.dataset_options();
  std::optional<std::pair<int64_t, int64_t>> saved_crop;  // a resumed run's --crop and crops a slice
  if (!options.resume.empty()) {
    const CheckpointMetadata meta = load_checkpoint(options.resume, model, &optimizer);
    const DataOptions saved = data_options_from_metadata(meta);
    if (saved.paths != options.data.paths || saved.axis != options.data.axis || saved.slices != options.data.slices ||
        saved.split != options.data.split || saved.seed != options.data.seed ||
        saved.val_fraction != options.data.val_fraction || saved.pad != options.data.pad ||
        saved.conform != options.data.conform ||
        (saved.conform && (saved.voxel != options.data.voxel || saved.interp != options.data.interp)) ||
        !same_normalisation(saved.dataset_options(), dopts) || saved.subject_labels != options.data.subject_labels)
      throw std::invalid_argument(options.resume + ": was trained on other data or data options; resume with the same --data, "
                                  "--axis, --slices, --split, --val-fraction, --pad, --normalize, --percentiles, --subjects, "
                                  "--seed and conform options (it used --normalize " + saved.normalize + ")");
    const auto noise = meta.find("train.noise_sigma");
    const double saved_noise = noise == meta.end() ? 0.0 : std::stod(noise->second);
    if (saved_noise != options.train_noise)
      throw std::invalid_argument(options.resume + ": was trained with --train-noise " + short_number(saved_noise) +
                                  "; resuming with another noise level would not continue the same run");
    const auto saved_ranks = meta.find("train.ranks");  // absent: written by a single process
    const std::string trained_ranks = saved_ranks == meta.end() ? "1" : saved_ranks->second;
    if (std::stoll(trained_ranks) != ranks)
      throw std::invalid_argument(options.resume + ": was trained by " + trained_ranks + " rank(s), and this run has " +
                                  std::to_string(ranks) + "; resume with the same number of ranks (mpirun -np " +
                                  trained_ranks + ")");
    const auto saved_bn = meta.find("train.bn");
    if (ranks > 1 && saved_bn != meta.end() && saved_bn->second != options.bn)
      throw std::invalid_argument(options.resume + ": was trained with --bn " + saved_bn->second +
                                  "; resuming with --bn " + options.bn + " would not continue the same run");
    // A decaying lr is a curve over the planned epochs: another lr, floor or length would not continue it. A
    // constant lr may change on resume (a step decay by hand, as Keras allows between fit() calls).
    const auto meta_or = [&meta](const char* key, const std::string& absent) {
      const auto it = meta.find(key);
      return it == meta.end() ? absent : it->second;
    };
    // Checked once the default crops a slice is resolved; absent: written before --crop existed.
    saved_crop = {std::stoll(meta_or("train.crop", "0")), std::stoll(meta_or("train.crops_per_slice", "0"))};
    const std::string saved_schedule = meta_or("train.lr_schedule", "constant");
    if (saved_schedule != options.lr_schedule)
      throw std::invalid_argument(options.resume + ": was trained with --lr-schedule " + saved_schedule +
                                  "; resuming with --lr-schedule " + options.lr_schedule +
                                  " would not continue the same run");
    if (saved_schedule != "constant" &&
        (std::stod(meta.at("train.lr")) != options.lr || std::stod(meta.at("train.lr_floor")) != options.lr_floor ||
         std::stoll(meta.at("train.epochs")) != options.epochs))
      throw std::invalid_argument(options.resume + ": its --lr-schedule " + saved_schedule + " ran --lr " +
                                  short_number(std::stod(meta.at("train.lr"))) + " --lr-floor " +
                                  short_number(std::stod(meta.at("train.lr_floor"))) + " over --epochs " +
                                  meta.at("train.epochs") + "; resume with the same three");
    if (std::stoll(meta.at("train.batch")) != options.batch)
      throw std::invalid_argument(options.resume + ": was trained with --batch " + meta.at("train.batch") +
                                  "; resuming with another batch size would not continue the same run");
    dopts.normalisation = trained_normalisation(meta);  // the scaling the weights were trained with
    pos.epochs_done = std::stoll(meta.at("train.epochs_done"));
    pos.batches_done = std::stoll(meta.at("train.batches_done"));
    pos.loss_sum = std::stod(meta.at("train.loss_sum"));
    pos.samples = std::stoll(meta.at("train.samples"));
    pos.best_val_loss = std::stod(meta.at("train.best_val_loss"));
    result.history = parse_history_csv(meta.at("train.history"));
  }
  const io::SliceDataset data = io::build_slice_dataset(options.data.paths, dopts);
  if (writer)
    for (const std::string& w : data.warnings) std::fprintf(stderr, "mriae: warning: %s\n", w.c_str());
  check_normalised_ranges(data, options.data.strict, console);
  if (data.slices.height() % 4 || data.slices.width() % 4)
    throw std::logic_error("slices are not padded to a multiple of 4");

  check_same_data(data, group);
  if (options.crop > data.slices.height() || options.crop > data.slices.width())
    throw std::invalid_argument("--crop " + std::to_string(options.crop) + " does not fit the " +
                                std::to_string(data.slices.height()) + "x" + std::to_string(data.slices.width()) +
                                " slices");
  if (options.crop && options.crops_per_slice == 0)
    options.crops_per_slice = io::default_crops_per_slice(data.slices.height(), data.slices.width(), options.crop);
  if (saved_crop && *saved_crop != std::make_pair(options.crop, options.crops_per_slice))
    throw std::invalid_argument(options.resume + ": was trained with --crop " + std::to_string(saved_crop->first) +
                                " --crops-per-slice " + std::to_string(saved_crop->second) +
                                "; resume with the same crops to continue the same run");
  // An epoch's samples: each training slice once, or crops_per_slice windows of it.
  std::vector<int64_t> epoch_samples;
  for (int64_t k = 0; k < std::max<int64_t>(1, options.crops_per_slice); ++k)
    epoch_samples.insert(epoch_samples.end(), data.split.train.begin(), data.split.train.end());
  const int64_t train_n = int64_t(epoch_samples.size());
  if (ranks > 1) {
    const int64_t first = std::min(options.batch, train_n), last = train_n % options.batch;
    if (first < ranks || (last != 0 && last < ranks))
      throw std::invalid_argument(
          "--batch " + std::to_string(options.batch) + " over " + std::to_string(ranks) + " ranks: " +
          (first < ranks ? "a batch of " + std::to_string(first) : "each epoch's last batch of " + std::to_string(last)) +
          " training slices leaves rank " + std::to_string(ranks - 1) + " without data (" + std::to_string(train_n) +
          " training slices); choose a --batch for which every batch has at least one slice per rank, or fewer ranks");
  }

  io::LoaderOptions lo;
  lo.batch_size = options.batch;
  lo.shard = rank;
  lo.shards = ranks;
  lo.seed = options.data.seed;
  lo.first_epoch = pos.epochs_done;
  lo.device = device;
  lo.compute_stream = gpu_compute_stream();  // batches are ordered against the stream the ops run on
  lo.crop = options.crop;
  io::BatchLoader train_loader(data.slices, epoch_samples, lo);
  const int64_t steps_per_epoch = train_loader.batches_per_epoch();
  const LrSchedule schedule = options.schedule(steps_per_epoch);
  io::LoaderOptions vo = lo;
  vo.shuffle = false;
  vo.first_epoch = 0;
  vo.shard = 0;
  vo.shards = 1;
  vo.crop = 0;
  // Each rank validates its own contiguous part of the validation slices (the first ranks one more).
  const io::ShardRange val_part = io::shard_range(int64_t(data.split.validation.size()), rank, ranks);
  std::unique_ptr<io::BatchLoader> val_loader;
  if (val_part.count > 0)
    val_loader = std::make_unique<io::BatchLoader>(
        data.slices,
        std::vector<int64_t>(data.split.validation.begin() + val_part.begin,
                             data.split.validation.begin() + val_part.begin + val_part.count),
        vo);

  const fs::path out(options.out_dir);
  if (writer) {
    nlohmann::json config = config_json(options, device, data);
    config["processes"] = {{"ranks", ranks}, {"collectives", group.describe()}, {"batchnorm", options.bn}};
    write_text_atomic((out / "config.json").string(), config.dump(2) + "\n");
  }
  std::ofstream log;
  if (writer && !options.log_file.empty()) {
    log.open(options.log_file, std::ios::app);
    if (!log) throw std::runtime_error(options.log_file + ": cannot open the log file");
  }
  result.last_checkpoint = (out / "last.safetensors").string();
  result.best_checkpoint = (out / "best.safetensors").string();
  // The starting state (weights, zero accumulators, fresh moving statistics), so another framework can
  // train the same run from it (python/mriae_compare/train_torch.py) and a user can restart it exactly.
  if (writer && options.resume.empty())
    save_checkpoint((out / "initial.safetensors").string(), model, &optimizer,
                    run_metadata(options, data, pos, result.history, ranks));

  if (console && pos.epochs_done == 0 && pos.batches_done == 0 && ranks > 1)
    std::fprintf(console, "Data parallel: %s, global batch %lld (%lld or %lld a rank), batchnorm over the %s\n",
                 group.describe().c_str(), (long long)options.batch, (long long)(options.batch / ranks),
                 (long long)((options.batch + ranks - 1) / ranks),
                 options.bn == "global" ? "global batch" : "batch of each rank");
  if (console && pos.epochs_done == 0 && pos.batches_done == 0)
    std::fprintf(console, "Train on %lld samples, validate on %lld samples (%lldx%lld, %s%s)\n", (long long)train_n,
                 (long long)data.split.validation.size(), (long long)data.slices.height(),
                 (long long)data.slices.width(), device_name(device), dtype == DType::Float64 ? ", float64" : "");
  if (console && pos.epochs_done == 0 && pos.batches_done == 0 && options.crop)
    std::fprintf(console, "Random crops: %lld a slice an epoch, %lldx%lld (validation on whole slices)\n",
                 (long long)options.crops_per_slice, (long long)options.crop, (long long)options.crop);
  if (console && pos.epochs_done == 0 && pos.batches_done == 0 && options.train_noise > 0)
    std::fprintf(console, "Denoising: Gaussian noise of sigma %g on the inputs, the clean slices as targets\n",
                 options.train_noise);
  Progress progress(console, console && ::isatty(::fileno(console)));
  bool plot_warned = false;

  for (int64_t epoch = pos.epochs_done; epoch < options.epochs; ++epoch) {
    progress.begin_epoch(epoch + 1, options.epochs, train_n);
    int64_t steps = 0;
    io::Batch b;
    while (train_loader.next(b)) {
      if (b.number < pos.batches_done) continue;  // done before the interruption we resume from
      optimizer.set_lr(schedule.at(epoch * steps_per_epoch + b.number));
      const int64_t part_begin = io::shard_range(b.global_size, rank, ranks).begin;  // this rank's part
      const double l = train_step(model, optimizer, model_input(options, data.slices, b, epoch, part_begin, device),
                                  b.images, BatchShare{&group, b.images.dim(0), b.global_size});
      if (!std::isfinite(l))
        throw TrainingDiverged("the loss became " + std::string(std::isnan(l) ? "NaN" : "infinite") + " at epoch " +
                               std::to_string(epoch + 1) + ", batch " + std::to_string(b.number + 1) +
                               "; stopped before updating the weights. " + result.last_checkpoint +
                               " (if present) holds the last good state; try a lower --lr");
      ++steps;
      pos.batches_done = b.number + 1;
      pos.loss_sum += double(l) * double(b.global_size);
      pos.samples += b.global_size;
      progress.update(pos.samples, steps, pos.loss_sum / double(pos.samples));
      // Every rank stops after the same step: where any of them was asked to.
      double stop = stop_requested && stop_requested() ? 1 : 0;
      if (ranks > 1) group.max(&stop, 1);
      if (stop != 0) {
        if (writer)
          save_checkpoint(result.last_checkpoint, model, &optimizer,
                          run_metadata(options, data, pos, result.history, ranks));
        if (console)
          std::fprintf(console, "\nmriae: stopped in epoch %lld after batch %lld; %s holds the state (--resume it)\n",
                       (long long)(epoch + 1), (long long)pos.batches_done, result.last_checkpoint.c_str());
        result.interrupted = true;
        return result;
      }
    }
    const double loss = pos.loss_sum / double(pos.samples);
    const double val_loss = evaluate_loss(options, model, val_loader.get(), data.slices, val_part.begin, device, group);
    check_ranks_agree(model, optimizer, group, epoch + 1);
    const std::string line = progress.end_epoch(loss, val_loss, steps);
    if (log) log << "epoch " << epoch + 1 << "/" << options.epochs << " " << line << std::endl;
    result.history.push_back({epoch + 1, loss, val_loss, progress.epoch_seconds()});
    pos = {epoch + 1, 0, 0.0, 0, pos.best_val_loss};
    const bool best = val_loss < pos.best_val_loss;
    if (best) pos.best_val_loss = val_loss;
    if (!writer) continue;
    const CheckpointMetadata meta = run_metadata(options, data, pos, result.history, ranks);
    save_checkpoint(result.last_checkpoint, model, &optimizer, meta);
    if (best) save_checkpoint(result.best_checkpoint, model, &optimizer, meta);
    write_text_atomic((out / "history.csv").string(), history_csv(result.history));
    std::string why;
    if (!plot_history(result.history, (out / "loss.png").string(), &why) && console && !plot_warned) {
      std::fprintf(console, "mriae: warning: loss.png not drawn: %s\n", why.c_str());
      plot_warned = true;
    }
  }
  return result;
}

}  // namespace mriae
