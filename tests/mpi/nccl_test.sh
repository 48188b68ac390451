#!/usr/bin/env bash
# The NCCL path of data-parallel training on GPUs (tests/mpi/nccl_sum.cpp): one rank, then one rank per GPU
# when the node has several (NCCL refuses two ranks on one GPU). Usage: nccl_test.sh NCCL_SUM_BINARY.
# Exits 77 (a visible skip) without mpirun or without a GPU.
set -uo pipefail
bin=$1
source "$(dirname "${BASH_SOURCE[0]}")/../check.sh"
if ! command -v mpirun >/dev/null; then
  echo "skipped: mpirun is missing (Debian packages openmpi-bin, libopenmpi-dev)"
  exit 77
fi
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
if [[ ${gpus:-0} -lt 1 ]]; then
  echo "skipped: no GPU (nvidia-smi -L lists none)"
  exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for np in 1 $((gpus > 1 ? gpus : 0)); do
  [[ $np -ge 1 ]] || continue
  out=$(timeout -k 10 120 mpirun --oversubscribe --bind-to none -np "$np" "$bin" 2>&1)
  rc=$?
  echo "$out"
  check "NCCL sum on $np rank(s), one GPU each (rc $rc)" test "$rc" -eq 0
  check "every one of the $np rank(s) reports the right sums" test "$(grep -c "summed, 0 wrong; host sums right" <<<"$out")" -eq "$np"
done
finish "nccl test"
