#include "apps/trace_command.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "apps/data_paths.h"
#include "apps/trace.h"

namespace mriae {

void add_trace_command(CLI::App& app) {
  auto opt = std::make_shared<TraceOptions>();
  auto inputs = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand(
      "trace", "A few training steps on the CPU with every layer output, gradient and state written to one "
               "safetensors file, for checking another framework (python3 -m mriae_compare TRACE)");
  cmd->add_option("--weights", opt->weights, "Starting weights: a checkpoint (default: the seeded initialisation)");
  auto* seed = cmd->add_option("--seed", opt->seed, "Seed of the starting weights (Glorot uniform)")->capture_default_str();
  cmd->add_option("--data", *inputs,
                  "NIfTI files or folders: their first BATCH*STEPS slices, as train prepares them (conformed, "
                  "central 51 coronal slices, --normalize percentile)");
  cmd->add_option("--input", opt->input, "Or a safetensors file holding 'input' [N, 1, H, W] (N = BATCH*STEPS, or "
                                         "BATCH for the same batch every step)");
  cmd->add_option("--batch", opt->batch, "Images per step (at least 2)")->capture_default_str();
  cmd->add_option("--steps", opt->steps, "Training steps")->capture_default_str();
  cmd->add_option("--dtype", opt->dtype, "float64 or float32 (the trace is computed on the CPU)")->capture_default_str();
  cmd->add_option("--out", opt->out, "The trace file (safetensors)")->required();
  cmd->callback([opt, inputs, seed] {
    opt->seed_given = seed->count() > 0;
    if (!inputs->empty()) opt->data = expand_data_paths(*inputs);
    write_trace(*opt);
    std::printf("wrote %s\n", opt->out.c_str());
  });
}

}  // namespace mriae
