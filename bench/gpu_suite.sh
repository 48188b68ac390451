#!/usr/bin/env bash
# The GPU suite. On a machine with an NVIDIA GPU (nvcc, cuDNN, cmake; PyTorch with CUDA if present) it
# builds mriae for the GPU it finds, runs every test including the GPU ones, runs compute-sanitizer
# (memcheck, racecheck, synccheck) over a few training steps, runs the benchmarks of the build's bench
# directory (bench_cuda_ops: every kernel validated and timed), the GPU race against PyTorch
# (bench/run_gpu.sh) and a deterministic-mode run, and writes one markdown report, OUT_DIR/report.md, with
# a log per step in OUT_DIR/logs.
#
#   bench/gpu_suite.sh OUT_DIR [GROUP...]
#
# GROUPs: build, tests, sanitizers, bench (default: all four, in that order). Each step's result and log are
# kept in the build directory, and every call writes the report of all steps recorded there so far: a
# machine that allows only short commands runs the groups in separate calls, and the last call's report is
# the whole suite's. A group run again replaces its earlier results.
#
# Installs nothing and needs no network. Exit status 0 when every step of this call passed. Optional
# environment:
#   MRIAE_SUITE_BUILD_DIR  build directory (default: <repository>/build-gpu-suite)
#   MRIAE_CUDA_ARCH        CMAKE_CUDA_ARCHITECTURES, instead of the compute capability nvidia-smi reports
#   JOBS                   parallel build jobs (default: nproc)
set -uo pipefail  # not -e: a failed step is recorded and the suite goes on

if [[ $# -lt 1 ]]; then
  echo "usage: $0 OUT_DIR [build|tests|sanitizers|bench ...]" >&2
  exit 2
fi
mkdir -p "$1" || exit 2
out=$(cd "$1" && pwd)
shift
groups=("$@")
[[ ${#groups[@]} -gt 0 ]] || groups=(build tests sanitizers bench)
for g in "${groups[@]}"; do
  case $g in build | tests | sanitizers | bench) ;; *)
    echo "$0: unknown group '$g' (build, tests, sanitizers, bench)" >&2
    exit 2
    ;;
  esac
done
wants() { [[ " ${groups[*]} " == *" $1 "* ]]; }
report=$out/report.md
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${MRIAE_SUITE_BUILD_DIR:-$src/build-gpu-suite}
jobs=${JOBS:-$(nproc)}
# What earlier calls recorded lives beside the build: one line per step (group, name, status, seconds,
# note; tab-separated) and one log per step.
state=$build/suite
logs=$state/logs
records=$state/records.tsv
mkdir -p "$logs" || exit 2
touch "$records"
for g in "${groups[@]}"; do
  awk -F'\t' -v g="$g" '$1 != g' "$records" >"$records.new" && mv "$records.new" "$records"
done

failed=0
group=""

# record NAME STATUS SECONDS NOTE
record() {
  printf '%s\t%s\t%s\t%s\t%s\n' "$group" "$1" "$2" "$3" "$4" >>"$records"
  case $2 in PASS | SKIP*) ;; *) failed=1 ;; esac
  echo "   $2 ($3 s)"
}

# run_step required|optional NAME NOTE COMMAND...: runs COMMAND with its output in logs/NAME.log.
# Exit 77 means "no GPU": a failure for a required step, a skip for an optional one.
run_step() {
  local need=$1 name=$2 note=$3
  shift 3
  local start rc status
  echo "== $name: $*"
  start=$(date +%s)
  "$@" >"$logs/$name.log" 2>&1
  rc=$?
  if [[ $rc -eq 0 ]]; then
    status=PASS
  elif [[ $rc -eq 77 && $need == optional ]]; then
    status="SKIP (exit 77)"
  elif [[ $rc -eq 77 ]]; then
    status="FAIL (exit 77: no usable GPU)"
  else
    status="FAIL (exit $rc)"
  fi
  record "$name" "$status" "$(($(date +%s) - start))" "$note"
  return "$rc"
}

not_run() {
  echo "== $1: not run ($2)"
  record "$1" "FAIL (not run: $2)" 0 "$3"
}

# ---- the machine
gpu="none found"
if command -v nvidia-smi >/dev/null 2>&1; then
  gpu=$(nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader 2>&1)
fi
arch=${MRIAE_CUDA_ARCH:-}
if [[ -z $arch ]] && command -v nvidia-smi >/dev/null 2>&1; then
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | tr -d '. ' | sort -u | paste -sd ';' -)
fi
nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
cuda_version=$("$nvcc_bin" --version 2>/dev/null | grep -o 'release [0-9.]*, V[0-9.]*' || echo "nvcc not found")
cudnn_header=""
for d in /usr/local/cuda/include /usr/include /usr/include/x86_64-linux-gnu /usr/include/aarch64-linux-gnu; do
  if [[ -f $d/cudnn_version.h ]]; then
    cudnn_header=$d/cudnn_version.h
    break
  fi
done
cudnn_version="header not found"
if [[ -n $cudnn_header ]]; then
  cudnn_version=$(awk '/#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{v = v (v ? "." : "") $3} END {print v}' "$cudnn_header")
fi
sanitizer=$(command -v compute-sanitizer || true)
if [[ -z $sanitizer && -x /usr/local/cuda/bin/compute-sanitizer ]]; then
  sanitizer=/usr/local/cuda/bin/compute-sanitizer
fi
torch_version="not available"
have_torch=0
if torch_line=$(python3 -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda, "available:", torch.cuda.is_available())' 2>/dev/null); then
  torch_version=$torch_line
  [[ $torch_line == *"available: True" ]] && have_torch=1
fi
commit=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$src" status --porcelain 2>/dev/null) ]]; then commit="$commit (with uncommitted changes)"; fi

# ---- build
if wants build; then
  group=build
  rm -f "$state/built-commit"  # a failed build must not leave the groups after it an older one's binaries
  if [[ -z $arch ]]; then
    not_run configure "no GPU found by nvidia-smi and MRIAE_CUDA_ARCH unset" "cmake"
    not_run build "not configured" "cmake --build"
  else
    if run_step required configure "cmake, CMAKE_CUDA_ARCHITECTURES=$arch" \
      cmake -S "$src" -B "$build" -DMRIAE_CUDA=ON -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CUDA_ARCHITECTURES=$arch"; then
      run_step required build "cmake --build, $jobs jobs" cmake --build "$build" -j "$jobs" &&
        echo "$commit" >"$state/built-commit"
    else
      not_run build "configure failed" "cmake --build"
    fi
  fi
fi
# The other groups run what the last successful build made, whichever call built it.
train=$build/bench/train_steps
built=0
[[ -f $state/built-commit && -x $train && -x $build/tests/mriae_gpu_tests ]] && built=1

# ---- tests, sanitizers, benchmarks
if wants tests; then
  group=tests
  if [[ $built -eq 1 ]]; then
    run_step required cpu-tests "ctest: every test but the GPU suite" \
      ctest --test-dir "$build" --output-on-failure -E '^mriae_gpu_tests$'
    run_step required gpu-tests "mriae_gpu_tests: every CUDA op vs CPU, training parity, determinism, allocations" \
      "$build/tests/mriae_gpu_tests" --duration=true
  else
    not_run tests "no build: run the build group first" "ctest and mriae_gpu_tests"
  fi
fi

if wants sanitizers; then
  group=sanitizers
  # A few whole training steps (an odd batch, every op forward and backward, RMSprop) under each tool.
  for tool in memcheck racecheck synccheck; do
    if [[ $built -ne 1 ]]; then
      not_run "sanitizer-$tool" "no build: run the build group first" "compute-sanitizer --tool $tool"
    elif [[ -z $sanitizer ]]; then
      not_run "sanitizer-$tool" "compute-sanitizer not found" "compute-sanitizer --tool $tool"
    else
      run_step required "sanitizer-$tool" "compute-sanitizer --tool $tool over 2 training steps, batch 3, 64x64" \
        "$sanitizer" --tool "$tool" --error-exitcode 99 "$train" --device cuda --steps 2 --batch 3 --size 64
    fi
  done
fi

if wants bench; then
  group=bench
  if [[ $built -eq 1 ]]; then
    for exe in "$build"/bench/bench_*; do
      [[ -x $exe ]] || continue
      run_step required "$(basename "$exe")" "benchmark" "$exe"
    done
    # mriae against PyTorch (eager, channels-last, torch.compile), strict FP32 and TF32; without PyTorch for
    # CUDA it measures mriae alone and says so in its table.
    race_note="run_gpu.sh: training steps and inference passes, batch 128, 176x176, mriae vs PyTorch"
    [[ $have_torch -eq 1 ]] || race_note+=" (PyTorch with CUDA not available: mriae only)"
    run_step required gpu-race "$race_note" bash "$src/bench/run_gpu.sh" "$build"
    run_step required train-b128-deterministic "train_steps: 20 steps, batch 128, 176x176, deterministic" \
      "$train" --device cuda --steps 20 --batch 128 --size 176 --deterministic
  else
    not_run benchmarks "no build: run the build group first" "bench_cuda_ops, run_gpu.sh"
  fi
fi

# The steps of every call so far, in group order.
names=() results=() durations=() notes=() step_groups=()
all_passed=1
for g in build tests sanitizers bench; do
  while IFS=$'\t' read -r rg name status seconds note; do
    [[ $rg == "$g" ]] || continue
    step_groups+=("$rg") names+=("$name") results+=("$status") durations+=("$seconds") notes+=("$note")
    case $status in PASS | SKIP*) ;; *) all_passed=0 ;; esac
  done <"$records"
done
rm -rf "$out/logs"
cp -r "$logs" "$out/logs"

# ---- the report
runtime_line=$(grep -m1 '^device: cuda' "$logs/train-b128-deterministic.log" 2>/dev/null || echo "not measured")
{
  echo "# mriae GPU suite"
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Commit: $commit"
  echo "- GPU (name, driver, compute capability, memory): $gpu"
  echo "- CUDA toolkit: $cuda_version"
  echo "- cuDNN headers: $cudnn_version"
  echo "- Runtime, as train_steps reports it: ${runtime_line#device: }"
  echo "- CMAKE_CUDA_ARCHITECTURES: ${arch:-none}"
  echo "- PyTorch: $torch_version"
  echo
  echo "- Built from commit: $(cat "$state/built-commit" 2>/dev/null || echo "no successful build")"
  echo "- Groups run in this call: ${groups[*]}"
  echo
  missing=()
  for g in build tests sanitizers bench; do
    [[ " ${step_groups[*]} " == *" $g "* ]] || missing+=("$g")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    echo "**Incomplete: no results yet for ${missing[*]}.**"
  elif [[ $all_passed -eq 1 ]]; then
    echo "**All steps passed.**"
  else
    echo "**Some steps FAILED.**"
  fi
  echo
  echo "| group | step | result | seconds | what |"
  echo "|---|---|---|---|---|"
  for i in "${!names[@]}"; do
    echo "| ${step_groups[$i]} | ${names[$i]} | ${results[$i]} | ${durations[$i]} | ${notes[$i]} |"
  done
  echo
  echo "## Benchmarks"
  for name in "${names[@]}"; do
    case $name in bench_* | train-* | gpu-race) ;; *) continue ;; esac
    [[ -f $logs/$name.log ]] || continue
    echo
    echo "### $name"
    echo
    # The markdown tables the benchmark printed, outside a code block so they render, each under its
    # '## ' heading if it has one; then the log itself.
    awk '/^## / { if (t) print ""; t = 0; h = "####" substr($0, 3); next }
         /^\|/ { if (h != "") { print h; print ""; h = "" } print; t = 1; next }
         t { print ""; t = 0 }' "$logs/$name.log"
    echo
    echo '```'
    # Per-step lines are many; the summary lines carry the result. The kernel tables run to ~150 lines.
    grep -v '^step [0-9]' "$logs/$name.log" | tail -n 400
    echo '```'
  done
  echo
  echo "## Logs of the other steps (last lines)"
  for name in "${names[@]}"; do
    case $name in bench_* | train-* | gpu-race) continue ;; esac
    [[ -f $logs/$name.log ]] || continue
    echo
    echo "### $name"
    echo
    echo '```'
    tail -n 30 "$logs/$name.log"
    echo '```'
  done
} >"$report"

echo "report: $report"
exit "$failed"
