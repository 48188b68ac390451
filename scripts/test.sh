#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what is needed, then
#  1. builds with the CUDA backend when nvcc is found (GPU tests report a skip without a GPU) and runs every test;
#  2. builds the CPU-only configuration (-DMRIAE_CUDA=OFF) under AddressSanitizer and
#     UndefinedBehaviorSanitizer and runs every test again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[[ -x /usr/local/cuda/bin/nvcc ]] && export PATH="/usr/local/cuda/bin:$PATH"
jobs=$(nproc)

echo "== build (CUDA: auto) =="
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DMRIAE_CUDA=AUTO >/dev/null
cmake --build build/release -j"$jobs"
echo "== tests (CUDA: auto) =="
(cd build/release && ctest --output-on-failure -j"$jobs")

echo "== build (CPU only, ASan + UBSan) =="
cmake -S . -B build/sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMRIAE_CUDA=OFF -DMRIAE_SANITIZE=ON \
  -DMRIAE_BUILD_BENCH=OFF >/dev/null
cmake --build build/sanitize -j"$jobs"
echo "== tests (CPU only, ASan + UBSan) =="
(cd build/sanitize && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j"$jobs")
