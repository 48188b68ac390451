// Run under mpirun on a CUDA node (tests/mpi/nccl_test.sh): the GPU collectives of data-parallel training,
// NCCL bootstrapped through MPI (engine/collectives_mpi.cpp), summing a GPU tensor as the trainer sums its
// gradients. Rank r holds (r + 1) * v[i] for a fixed v; after the sum every rank must hold
// N (N + 1) / 2 * v[i], exactly (small integers times a power of two are exact in float32). The number of
// elements is not a multiple of anything NCCL chunks by, so a partial chunk is summed too.
// Exit 0: right on this rank; 1: wrong or failed; 77: no GPU.
#include <cmath>
#include <cstdio>
#include <exception>
#include <vector>

#include "engine/collectives.h"
#include "engine/device.h"
#include "engine/tensor.h"

using namespace mriae;

int main() {
  if (!cuda_available()) {
    std::printf("skipped: no CUDA GPU visible\n");
    return 77;
  }
  try {
    auto processes = connect_processes(Device::CUDA);
    const int rank = processes->rank(), n = processes->size();
    const int64_t count = 1000003;
    std::vector<float> mine(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) mine[size_t(i)] = float(rank + 1) * std::ldexp(float(i % 1024 - 512), -4);
    Tensor t = Tensor::from_vector({count}, mine, Device::CUDA);
    processes->sum(t);
    const Tensor back = t.to(Device::CPU);
    const float factor = float(n * (n + 1) / 2);
    int64_t wrong = 0;
    for (int64_t i = 0; i < count; ++i)
      if (back.data()[i] != factor * std::ldexp(float(i % 1024 - 512), -4)) ++wrong;
    double host[2] = {double(rank + 1), 1.0};
    processes->sum(host, 2);  // and the MPI path beside it
    const bool ok = wrong == 0 && host[0] == double(n * (n + 1) / 2) && host[1] == double(n);
    std::printf("rank %d of %d (%s): GPU tensor of %lld floats summed, %lld wrong; host sums %s\n", rank, n,
                processes->describe().c_str(), (long long)count, (long long)wrong, ok ? "right" : "wrong");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nccl_sum: %s\n", e.what());
    return 1;
  }
}
