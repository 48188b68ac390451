#include "apps/train_command.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "apps/data_paths.h"
#include "apps/interrupt.h"
#include "apps/trainer.h"
#include "engine/collectives.h"
#include "engine/device.h"

namespace mriae {

void add_data_options(CLI::App& cmd, DataOptions& d);

void add_data_options(CLI::App& cmd, DataOptions& d) {
  cmd.add_option("--axis", d.axis,
                 "Slice axis: 0, 1 (the tutorial's vol[:, j, :]) or 2; conformed: sagittal, coronal or axial")
      ->capture_default_str();
  cmd.add_option("--slices", d.slices, "Slice range start:stop along the axis (default: the central --central slices)");
  cmd.add_option("--central", d.central, "How many central slices to take when --slices is not given")
      ->capture_default_str();
  cmd.add_option("--normalize", d.normalize,
                 "Intensity scaling to [0, 1]: 'percentile' (each volume clipped to its own --percentiles, then "
                 "scaled), 'volume' (each by its own min and max), or one min and max over the 'train' slices or "
                 "over 'all' of them (the tutorial). The checkpoint carries it to evaluate and reconstruct")
      ->capture_default_str();
  cmd.add_option("--percentiles", d.percentiles, "LOW,HIGH: the bounds of --normalize percentile")->capture_default_str();
  cmd.add_flag("--strict", d.strict,
               "A volume whose normalised voxels fall well outside [0, 1] is an error instead of a warning");
  cmd.add_option("--pad", d.pad, "Zero padding to a multiple of 4: 'top-left' (the tutorial) or 'centre'")
      ->capture_default_str();
  cmd.add_option("--split", d.split, "Validation split by 'slices' (the tutorial) or whole 'subjects'")
      ->capture_default_str();
  cmd.add_option("--val-fraction", d.val_fraction, "Fraction held out for validation")->capture_default_str();
  cmd.add_flag("--conform,!--no-conform", d.conform,
               "Reorient every volume to RAS and resample it to --voxel mm before slicing, so --axis is the same "
               "anatomical direction in every scan (default; --no-conform: the arrays as stored, as the tutorial)");
  cmd.add_option("--voxel", d.voxel, "Conform: isotropic voxel size in mm")->capture_default_str();
  cmd.add_option("--interp", d.interp, "Conform: 'linear' (trilinear) or 'nearest' resampling")->capture_default_str();
  cmd.add_option("--seed", d.seed, "Seed of the split, the shuffling and the initial weights")->capture_default_str();
  cmd.add_option("--subjects", d.subjects,
                 "Table of each volume's subject ('file' and 'subject' columns, e.g. data/manifest.tsv): with "
                 "--split subjects, a person's scans stay on one side");
}

void add_train_command(CLI::App& app, InterruptWatcher& interrupt) {
  auto opt = std::make_shared<TrainOptions>();
  auto inputs = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand("train", "Train the autoencoder on NIfTI volumes (the tutorial's fit())");
  cmd->add_option("--data", *inputs, "NIfTI files or folders of them")->required();
  cmd->add_option("--out", opt->out_dir, "Output folder: checkpoints, history.csv, loss.png, config.json")->required();
  cmd->add_option("--epochs", opt->epochs, "Epochs to train in all (a resumed run counts those done)")
      ->capture_default_str();
  cmd->add_option("--batch", opt->batch, "Batch size")->capture_default_str();
  cmd->add_option("--lr", opt->lr, "RMSprop learning rate (with --lr-schedule cosine: the first step's)")
      ->capture_default_str();
  cmd->add_option("--lr-schedule", opt->lr_schedule,
                  "'constant' (the tutorial) or 'cosine': from --lr down to --lr-floor x --lr along half a cosine "
                  "over all --epochs, step by step")
      ->capture_default_str();
  cmd->add_option("--lr-floor", opt->lr_floor, "With --lr-schedule cosine: the last steps' lr, as a fraction of --lr")
      ->capture_default_str();
  cmd->add_option("--device", opt->device, "auto (a GPU when present), cuda or cpu")->capture_default_str();
  cmd->add_option("--dtype", opt->dtype, "float32, or float64 (CPU only: the exact-arithmetic reference)")
      ->capture_default_str();
  cmd->add_flag("--deterministic", opt->deterministic, "GPU: bit-identical runs (deterministic cuDNN algorithms)");
  cmd->add_flag("--tf32", opt->tf32, "GPU: TF32 tensor cores in the convolutions (default: strict FP32)");
  cmd->add_option("--resume", opt->resume, "Continue from this checkpoint (last.safetensors of an earlier run)");
  cmd->add_flag("--quiet", opt->quiet, "No progress output");
  cmd->add_option("--log", opt->log_file, "Also append each epoch's line to this file");
  cmd->add_option("--crop", opt->crop,
                  "Train on random NxN crops of the training slices (a multiple of 4; validation on whole slices)");
  cmd->add_option("--crops-per-slice", opt->crops_per_slice,
                  "With --crop: crops of each slice an epoch (default: as many as cover a slice's pixels)");
  cmd->add_option("--train-noise", opt->train_noise,
                  "Train to denoise: Gaussian noise of this sigma on the inputs (seeded), clean slices as targets")
      ->capture_default_str();
  cmd->add_option("--bn", opt->bn,
                  "Under mpirun: batchnorm statistics over the 'global' batch (all ranks, as one process computes "
                  "them) or over each rank's part ('per-rank', PyTorch DDP's default)")
      ->capture_default_str();
  add_data_options(*cmd, opt->data);
  cmd->callback([opt, inputs, &interrupt] {
    opt->data.paths = expand_data_paths(*inputs);
    opt->validate();  // the options' own messages, before the device and dtype are resolved for MPI
    // Under mpirun every rank runs this; MPI comes up here and goes down when `processes` does.
    const std::unique_ptr<Collectives> processes = connect_processes(resolve_device(opt->device, parse_dtype(opt->dtype)));
    TrainResult r;
    try {
      interrupt.set_graceful(true);
      r = train(*opt, opt->quiet ? nullptr : stdout, [&interrupt] { return interrupt.requested(); }, processes.get());
      interrupt.set_graceful(false);
    } catch (const std::exception& e) {
      if (processes->size() == 1) throw;
      // The other ranks may be waiting in a collective for this one: take the whole job down, not just this rank.
      std::fflush(stdout);
      std::fprintf(stderr, "mriae: error on rank %d of %d: %s\n", processes->rank(), processes->size(), e.what());
      processes->abort(1);
    }
    if (processes->rank() != 0) return;
    if (!opt->quiet && !r.interrupted && !r.history.empty()) {
      const auto best = std::min_element(r.history.begin(), r.history.end(),
                                         [](const EpochRecord& a, const EpochRecord& b) { return a.val_loss < b.val_loss; });
      std::printf("done: %lld epochs; last weights in %s, best (val_loss %.4g at epoch %lld) in %s\n",
                  (long long)r.history.back().epoch, r.last_checkpoint.c_str(), best->val_loss, (long long)best->epoch,
                  r.best_checkpoint.c_str());
    }
  });
}

}  // namespace mriae
