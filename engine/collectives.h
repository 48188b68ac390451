#pragma once
// The one place that talks to MPI and NCCL: the collective operations of data-parallel training, behind an
// interface whose single-process implementation does nothing, so the rest of the engine (batchnorm's
// shared-batch statistics, the trainer's gradient sum) is written once for one process and for many.
//
// Every rank must call the same collectives in the same order with the same sizes (MPI's rule). The sums
// are MPI_Allreduce (or ncclAllReduce for GPU tensors): the same result on every rank, so ranks that apply
// the same update to the same weights stay bit-identical.
#include <cstdint>
#include <memory>
#include <string>

#include "engine/tensor.h"

namespace mriae {

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Sums n host doubles over every rank, in place.
  virtual void sum(double* data, int64_t n) = 0;
  // The largest of n host doubles over every rank, in place.
  virtual void max(double* data, int64_t n) = 0;
  // Sums a tensor over every rank, in place, on its own device (a GPU tensor on the compute stream).
  virtual void sum(Tensor& t) = 0;
  // Ends every rank of the job at once, after this rank has printed why (MPI_Abort): a rank that fails must
  // not leave the others waiting forever in their next collective.
  [[noreturn]] virtual void abort(int code) = 0;
  // "1 process", "MPI, 4 ranks", "MPI, 4 ranks, NCCL for GPU tensors".
  virtual std::string describe() const = 0;
};

// One process: every collective returns its input.
std::unique_ptr<Collectives> single_process();

// True when this process was started by an MPI launcher (mpirun, srun): its environment names a rank.
bool launched_by_mpi();
// This process's rank among the ranks on its own node, as the launcher's environment gives it (OpenMPI,
// MPICH/Hydra, Slurm); 0 when not launched by one. Read without MPI, so that the GPU can be chosen before
// anything starts on it: one GPU per rank means rank k on a node takes that node's GPU k.
int launcher_local_rank();
// Whether this build has MPI (and NCCL).
bool built_with_mpi();
bool built_with_nccl();

// The job's collectives: MPI when launched by one (initialised here, finalised when the object goes), with
// NCCL for GPU tensors when `device` is CUDA; otherwise single_process(). Throws when launched by MPI in a
// build without it (the ranks would each train alone), or for CUDA tensors without NCCL.
std::unique_ptr<Collectives> connect_processes(Device device);

}  // namespace mriae
