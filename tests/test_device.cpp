// What a CUDA request does on a machine (or build) without a GPU. Runs in every build.
#include <doctest/doctest.h>

#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "engine/collectives.h"
#include "engine/ops.h"

using namespace mriae;

TEST_CASE("asking for CUDA without a GPU is a clear error, and the CPU path keeps working") {
  if (cuda_available()) return;  // covered by the GPU suite
  CHECK(resolve_device("auto") == Device::CPU);
  CHECK_THROWS_AS(resolve_device("cuda"), std::runtime_error);
  try {
    Tensor::zeros({2, 2}, Device::CUDA);
    FAIL("a CUDA tensor was created without a GPU");
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
#ifdef MRIAE_WITH_CUDA
    CHECK(m.find("no CUDA GPU") != std::string::npos);
#else
    CHECK(m.find("no CUDA backend") != std::string::npos);
#endif
  }
  // A second request fails the same way (the failed start is not cached as a half-made context).
  CHECK_THROWS_AS(Tensor::zeros({2}, Device::CUDA), std::runtime_error);
  Var x(Tensor::full({1, 1, 2, 2}, -1.0f));
  CHECK(relu(nullptr, x).value().item(0) == 0.0f);
}

TEST_CASE("a rank's GPU: its local rank on the node, as the launcher's environment gives it") {
  // Saved and restored: ctest may itself run under a launcher.
  const char* names[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "PMI_LOCAL_RANK"};
  std::vector<std::pair<std::string, std::optional<std::string>>> saved;
  for (const char* n : names) {
    const char* v = std::getenv(n);
    saved.emplace_back(n, v ? std::optional<std::string>(v) : std::nullopt);
    ::unsetenv(n);
  }
  CHECK(launcher_local_rank() == 0);
  ::setenv("SLURM_LOCALID", "3", 1);
  CHECK(launcher_local_rank() == 3);
  ::setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);  // OpenMPI's own name comes first
  CHECK(launcher_local_rank() == 1);
  ::setenv("OMPI_COMM_WORLD_LOCAL_RANK", "one", 1);
  CHECK_THROWS_WITH(launcher_local_rank(), doctest::Contains("OMPI_COMM_WORLD_LOCAL_RANK='one'"));
  for (auto& [n, v] : saved)
    if (v) ::setenv(n.c_str(), v->c_str(), 1);
    else ::unsetenv(n.c_str());
}
