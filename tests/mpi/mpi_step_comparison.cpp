// Run under mpirun (tests/mpi/mpi_test.sh): data-parallel training steps on N ranks against one process on
// the same global batch, step by step from the same state, held to the parity test's classes and limits
// (tests/parity/README.md) in float32. Each rank holds its part of the state file's batch (the first ranks
// one more when it does not divide). Synchronised batchnorm (--bn global) must pass; per-rank batchnorm,
// which normalises each part with its own statistics, must fail, which shows the comparison can see the
// difference synchronisation makes. Every rank also runs the single-process reference itself.
// Exit 0: as expected on every rank; 1: not.
#include <cstdio>
#include <string>
#include <vector>

#include "engine/collectives.h"
#include "io/batch_loader.h"
#include "tests/parity/state_file.h"
#include "tests/parity/step_comparison.h"

using namespace mriae;
using namespace mriae::parity;

namespace {

Report compare_shared(Collectives& processes, bool synchronised) {
  const StateFile state = StateFile::load(std::string(MRIAE_SOURCE_DIR) + "/tests/parity/state_v1.bin");
  const Tensor input = state.at("input");
  const BatchNormOptions bn{kBnEps, kBnMomentum, MovingStatsRule::Keras, synchronised ? &processes : nullptr};
  Backend ref(Device::CPU), ours(Device::CPU, bn);
  std::vector<Tensor> init;
  for (const auto& e : ref.model().parameters().entries()) init.push_back(state.at("init/" + e.name));
  ref.set_params(init);

  const int64_t global = input.dim(0);
  const io::ShardRange part = io::shard_range(global, processes.rank(), processes.size());
  if (part.count < 1) throw std::runtime_error("the state file's batch has fewer rows than ranks");
  const int64_t per = input.numel() / global;
  Shape shape = input.shape();
  shape[0] = part.count;
  const Tensor local = input.view(part.begin * per, shape).clone();

  StepChecker checker(ref.model().parameters());
  Report report;
  for (int k = 1; k <= kSteps; ++k) {
    ours.set_params(ref.params());
    ours.copy_state_from(ref);
    const StepRecord want = ref.step(input);
    const StepRecord got = ours.step_shared(local, part.begin, global, processes);
    checker.check_step(k, got, want, report);
  }
  // Inference is per sample: each rank's rows of the reference's eval output.
  ours.set_params(ref.params());
  ours.copy_state_from(ref);
  const Tensor want = ref.eval(input);
  checker.check_eval(ours.eval(local), want.view(part.begin * (want.numel() / global),
                                                  [&] { Shape s = want.shape(); s[0] = part.count; return s; }()).clone(),
                     report);
  checker.finish(report);
  return report;
}

}  // namespace

int main() {
  const std::unique_ptr<Collectives> processes = connect_processes(Device::CPU);
  const int rank = processes->rank();
  bool ok = true;
  try {
    if (processes->size() < 2) throw std::runtime_error("run under mpirun with at least 2 ranks");
    std::printf("rank %d of %d (%s): synchronised batchnorm\n", rank, processes->size(), processes->describe().c_str());
    const Report synced = compare_shared(*processes, true);
    synced.summary();
    for (const std::string& f : synced.failures()) std::printf("rank %d: FAIL: %s\n", rank, f.c_str());
    ok = ok && synced.failures().empty();

    std::printf("rank %d: per-rank batchnorm (must fail the comparison)\n", rank);
    const Report alone = compare_shared(*processes, false);
    std::string classes;
    for (const std::string& c : alone.failed_classes()) classes += " [" + c + "]";
    std::printf("rank %d: per-rank batchnorm failed classes:%s\n", rank, classes.c_str());
    if (alone.failures().empty()) {
      std::printf("rank %d: FAIL: per-rank batchnorm passed the comparison: it cannot see synchronisation\n", rank);
      ok = false;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: error: %s\n", rank, e.what());
    processes->abort(1);
  }
  double bad = ok ? 0 : 1;
  processes->max(&bad, 1);
  if (rank == 0) std::printf("%s\n", bad == 0 ? "PASS on every rank" : "FAILED on some rank");
  return bad == 0 ? 0 : 1;
}
