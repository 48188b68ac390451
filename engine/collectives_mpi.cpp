// The MPI (and, in CUDA builds with NCCL, NCCL) implementation of engine/collectives.h.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "engine/collectives.h"

#ifdef MRIAE_WITH_NCCL
#include <cuda_runtime_api.h>
#include <nccl.h>

#include "engine/memory.h"
#include "engine/cuda_context.h"
#endif

namespace mriae {

namespace {

void check_mpi(int status, const char* call) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(status, text, &len);
  throw std::runtime_error(std::string(call) + " failed: " + std::string(text, size_t(len)));
}

#ifdef MRIAE_WITH_NCCL
void check_nccl(ncclResult_t status, const char* call) {
  if (status != ncclSuccess) throw std::runtime_error(std::string(call) + " failed: " + ncclGetErrorString(status));
}
#endif

// MPI counts are int: long buffers go in chunks.
constexpr int64_t kChunk = int64_t(1) << 30;

class Mpi final : public Collectives {
 public:
  explicit Mpi(Device device) {
    int initialised = 0;
    check_mpi(MPI_Initialized(&initialised), "MPI_Initialized");
    if (initialised) throw std::logic_error("MPI is already initialised: one set of collectives per process");
    check_mpi(MPI_Init(nullptr, nullptr), "MPI_Init");
    // Errors come back as codes (turned into exceptions, then MPI_Abort), not as MPI's own silent exit.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    if (device == Device::CUDA) {
#ifdef MRIAE_WITH_NCCL
      // One GPU per rank: the communicator is bootstrapped through MPI, rank 0's unique id broadcast. NCCL binds
      // the communicator to the current device, so this rank's GPU (engine/cuda_context.cpp: its local rank's)
      // is made current first; otherwise every rank would bind to device 0.
      Context::get().cuda();
      ncclUniqueId id;
      if (rank_ == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
      check_mpi(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast (NCCL unique id)");
      check_nccl(ncclCommInitRank(&nccl_, size_, id, rank_), "ncclCommInitRank");
#else
      MPI_Finalize();
      throw std::runtime_error("data-parallel training on GPUs needs NCCL, and this build has none "
                               "(install NCCL or the nvidia-nccl-cu13 wheel, then reconfigure)");
#endif
    }
  }

  ~Mpi() override {
#ifdef MRIAE_WITH_NCCL
    if (nccl_) ncclCommDestroy(nccl_);
#endif
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void sum(double* data, int64_t n) override { reduce(data, n, MPI_DOUBLE, MPI_SUM); }
  void max(double* data, int64_t n) override { reduce(data, n, MPI_DOUBLE, MPI_MAX); }

  void sum(Tensor& t) override {
    if (t.device() == Device::CUDA) {
#ifdef MRIAE_WITH_NCCL
      if (!nccl_) throw std::logic_error("a GPU tensor summed by collectives created for the CPU");
      // On the compute stream, in order with the backward pass that wrote it and the optimiser that reads it.
      check_nccl(ncclAllReduce(t.raw_data(), t.raw_data(), size_t(t.numel()), ncclFloat32, ncclSum, nccl_,
                               Context::get().cuda().compute_stream()),
                 "ncclAllReduce");
      return;
#else
      throw std::logic_error("a GPU tensor summed in a build without NCCL");
#endif
    }
    reduce(t.raw_data(), t.numel(), t.dtype() == DType::Float64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM);
  }

  [[noreturn]] void abort(int code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this is for the compiler
  }

  std::string describe() const override {
    return "MPI, " + std::to_string(size_) + " ranks" + (nccl_ ? ", NCCL for GPU tensors" : "");
  }

 private:
  void reduce(void* data, int64_t n, MPI_Datatype type, MPI_Op op) {
    int bytes = 0;
    MPI_Type_size(type, &bytes);
    for (int64_t at = 0; at < n; at += kChunk) {
      const int count = int(std::min(kChunk, n - at));
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(data) + at * bytes, count, type, op, MPI_COMM_WORLD),
                "MPI_Allreduce");
    }
  }

  int rank_ = 0, size_ = 1;
#ifdef MRIAE_WITH_NCCL
  ncclComm_t nccl_ = nullptr;
#else
  void* nccl_ = nullptr;
#endif
};

}  // namespace

bool built_with_mpi() { return true; }
bool built_with_nccl() {
#ifdef MRIAE_WITH_NCCL
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Collectives> connect_processes(Device device) {
  if (!launched_by_mpi()) return single_process();
  return std::make_unique<Mpi>(device);
}

}  // namespace mriae
