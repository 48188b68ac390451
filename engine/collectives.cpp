#include "engine/collectives.h"

#include <cstdlib>
#include <stdexcept>

namespace mriae {

namespace {

class SingleProcess final : public Collectives {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void sum(double*, int64_t) override {}
  void max(double*, int64_t) override {}
  void sum(Tensor&) override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
  std::string describe() const override { return "1 process"; }
};

}  // namespace

std::unique_ptr<Collectives> single_process() { return std::make_unique<SingleProcess>(); }

bool launched_by_mpi() {
  // OpenMPI's mpirun, PMIx launchers (OpenMPI 5, Slurm), MPICH's Hydra and Slurm's PMI.
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

int launcher_local_rank() {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "PMI_LOCAL_RANK"})
    if (const char* text = std::getenv(v)) {
      char* end = nullptr;
      const long r = std::strtol(text, &end, 10);
      if (end == text || *end != '\0' || r < 0)
        throw std::runtime_error(std::string("the launcher's ") + v + "='" + text + "' is not a local rank");
      return int(r);
    }
  return 0;
}

#ifndef MRIAE_WITH_MPI
bool built_with_mpi() { return false; }
bool built_with_nccl() { return false; }

std::unique_ptr<Collectives> connect_processes(Device) {
  if (launched_by_mpi())
    throw std::runtime_error("started by an MPI launcher, but this build of mriae has no MPI: every rank would train "
                             "alone. Rebuild with libopenmpi-dev installed (cmake -DMRIAE_MPI=ON)");
  return single_process();
}
#endif

}  // namespace mriae
