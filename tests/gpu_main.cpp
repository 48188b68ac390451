// The GPU suite's entry point: without a usable GPU it exits 77, which ctest reports as a skip
// (SKIP_RETURN_CODE), so a CPU-only machine shows the suite as skipped rather than passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "engine/device.h"

int main(int argc, char** argv) {
  if (!mriae::cuda_available()) {
    std::puts("no CUDA GPU: skipped");
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
