#!/usr/bin/env bash
# The GPU suite, in groups run in order of value, each its own command, for a GPU node whose time is short
# (bench/NOTES.md: "GPU suite: budget"). Every call writes OUT_DIR/report.md with every step recorded so far
# (by this call or earlier ones, kept beside the build), and a log per step in OUT_DIR/logs.
#
#   bench/gpu_suite.sh OUT_DIR [GROUP...]
#
#   probe       the machine (nvidia-smi, nvcc, cuDNN, compute-sanitizer, torch.cuda); configure and build
#               only the GPU targets (MRIAE_GPU_ONLY) for the GPU found; bench/cuda_probe (the cuDNN and
#               runtime that load); mriae_gpu_tests; a short train_steps on the GPU. The CPU suite is not
#               run: CI runs it.
#   race        bench_cuda_ops (every kernel validated and timed), then bench/run_gpu.sh against PyTorch
#               eager, NCHW and channels-last, strict FP32 and TF32
#   memcheck    compute-sanitizer memcheck over one --deterministic training step (every kernel)
#   racecheck   compute-sanitizer racecheck over the same step, our kernels only (--kernel-name kns=mriae:
#   synccheck   cuDNN's and cuBLAS's kernels are not ours to check and give false reports)
#   rest        two --deterministic runs compared bit for bit; the CPU suite's GPU cases (mriae_tests
#               -tc='*GPU*,*CUDA*': the batch loader on the GPU); the NCCL sum where the node has MPI;
#               the tutorial's epoch at batch 128;
#               run_gpu.sh against torch.compile
#   sanitizers  = memcheck racecheck synccheck;  all (the default) = probe race sanitizers rest
#   old names:  build, tests = probe;  bench = race
#
# The build has -lineinfo (MRIAE_CUDA_LINEINFO: line tables only, the same machine code), so one build
# serves the benchmarks and the sanitizers' reports. A group run again replaces its earlier results.
# Installs nothing and needs no network. Exit status 0 when every step of this call passed.
# Environment:
#   MRIAE_DEPS_DIR         the bundle of scripts/offline-deps.sh (default: <repository>/deps when present)
#   CUDNN_ROOT             cuDNN: a prefix, or a venv/site-packages with nvidia-cudnn-cu13 (cmake/cudnn.cmake)
#   MRIAE_CUDA_ARCH        CMAKE_CUDA_ARCHITECTURES, instead of the compute capability nvidia-smi reports
#   MRIAE_SUITE_BUILD_DIR  build directory (default: <repository>/build-gpu-suite)
#   STEP_TIMEOUT           seconds any one step may take (default 540: under a 10-minute command)
#   JOBS, PYTHON           parallel build jobs (default: nproc); the Python with PyTorch (default: python3)
#   BENCH_REPEATS          bench_cuda_ops --repeats (default 100); STEPS, EVAL_STEPS: run_gpu.sh's (20)
set -uo pipefail  # not -e: a failed step is recorded and the suite goes on

all_groups=(probe race memcheck racecheck synccheck rest)
usage="usage: $0 OUT_DIR [probe|race|memcheck|racecheck|synccheck|rest|sanitizers|all ...]"
if [[ $# -lt 1 ]]; then
  echo "$usage" >&2
  exit 2
fi
mkdir -p "$1" || exit 2
out=$(cd "$1" && pwd)
shift
groups=()
for g in "${@:-all}"; do
  case $g in
    probe | race | memcheck | racecheck | synccheck | rest) groups+=("$g") ;;
    build | tests) groups+=(probe) ;;
    bench) groups+=(race) ;;
    sanitizers) groups+=(memcheck racecheck synccheck) ;;
    all) groups+=("${all_groups[@]}") ;;
    *)
      echo "$0: unknown group '$g'"$'\n'"$usage" >&2
      exit 2
      ;;
  esac
done
# Each group once, in the order of value.
ordered=()
for g in "${all_groups[@]}"; do [[ " ${groups[*]} " == *" $g "* ]] && ordered+=("$g"); done
groups=("${ordered[@]}")
wants() { [[ " ${groups[*]} " == *" $1 "* ]]; }

report=$out/report.md
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${MRIAE_SUITE_BUILD_DIR:-$src/build-gpu-suite}
jobs=${JOBS:-$(nproc)}
python=${PYTHON:-python3}
step_timeout=${STEP_TIMEOUT:-540}
deps=${MRIAE_DEPS_DIR:-}
[[ -z $deps && -f $src/deps/manifest.tsv ]] && deps=$src/deps
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

# run_step NAME NOTE COMMAND...: runs COMMAND (at most STEP_TIMEOUT seconds) with its output in
# logs/NAME.log. Exit 77 is "no usable GPU", a failure: every step of this suite needs one.
run_step() {
  local name=$1 note=$2
  shift 2
  local start rc status
  echo "== $name: $*"
  start=$(date +%s)
  if declare -F "$1" >/dev/null; then  # a function of this script (exported below), in a child bash
    timeout -k 10 "$step_timeout" bash -c '"$@"' bash "$@" >"$logs/$name.log" 2>&1
  else
    timeout -k 10 "$step_timeout" "$@" >"$logs/$name.log" 2>&1
  fi
  rc=$?
  case $rc in
    0) status=PASS ;;
    77) status="FAIL (exit 77: no usable GPU)" ;;
    124 | 137) status="FAIL (timed out after $step_timeout s)" ;;
    *) status="FAIL (exit $rc)" ;;
  esac
  record "$name" "$status" "$(($(date +%s) - start))" "$note"
  return "$rc"
}

not_run() {
  echo "== $1: not run ($2)"
  record "$1" "NOT RUN: $2" 0 "$3"
}

# ---- the probe: printed by every call, and the report's header
gpu="none found (nvidia-smi missing)"
arch=${MRIAE_CUDA_ARCH:-}
if command -v nvidia-smi >/dev/null 2>&1; then
  gpu=$(nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader 2>&1 | paste -sd ';' -)
  [[ -n $arch ]] || arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | tr -d '. ' |
    grep -E '^[0-9]+$' | sort -u | paste -sd ';' -)
fi
nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
cuda_version=$("$nvcc_bin" --version 2>/dev/null | grep -o 'release [0-9.]*, V[0-9.]*' || echo "nvcc not found")
sanitizer=$(command -v compute-sanitizer || true)
[[ -z $sanitizer && -x /usr/local/cuda/bin/compute-sanitizer ]] && sanitizer=/usr/local/cuda/bin/compute-sanitizer
sanitizer_version="not found"
[[ -n $sanitizer ]] && sanitizer_version="$sanitizer, $("$sanitizer" --version 2>/dev/null | grep -io 'version.*' | head -n 1)"
have_torch=0
torch_line=$("$python" -c 'import torch
c = torch.cuda.is_available()
print(torch.__version__, "CUDA", torch.version.cuda, "cuDNN", torch.backends.cudnn.version(), "available:", c,
      torch.cuda.get_device_name() if c else "")' 2>&1 | tail -n 1)
[[ $torch_line == *"available: True"* ]] && have_torch=1
[[ $torch_line == *"available: "* ]] || torch_line="not usable from $python: $torch_line"
deps_line="none (system packages)"
[[ -n $deps ]] && deps_line="$deps ($(($(wc -l <"$deps/manifest.tsv" 2>/dev/null || echo 1) - 1)) packages, $(du -sh "$deps" 2>/dev/null | cut -f1))"
commit=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$src" status --porcelain 2>/dev/null) ]]; then commit="$commit (with uncommitted changes)"; fi
echo "GPU (name, driver, compute capability, memory): $gpu"
echo "CMAKE_CUDA_ARCHITECTURES: ${arch:-none}"
echo "nvcc: $cuda_version ($nvcc_bin)"
echo "compute-sanitizer: $sanitizer_version"
echo "torch.cuda ($python): $torch_line"
echo "offline bundle: $deps_line; CUDNN_ROOT: ${CUDNN_ROOT:-unset}"

train=$build/bench/train_steps
gpu_targets=(mriae_gpu_tests train_steps bench_cuda_ops cuda_probe)

# ---- probe: configure, build, GPU tests
if wants probe; then
  group=probe
  rm -f "$state/built-commit"  # a failed build must not leave the groups after it an older one's binaries
  if [[ -z $arch ]]; then
    not_run configure "no GPU found by nvidia-smi and MRIAE_CUDA_ARCH unset" "cmake, GPU targets only"
    not_run build "not configured" "cmake --build ${gpu_targets[*]}"
  else
    config=(-DMRIAE_CUDA=ON -DMRIAE_GPU_ONLY=ON -DMRIAE_CUDA_LINEINFO=ON -DCMAKE_BUILD_TYPE=Release
      "-DCMAKE_CUDA_ARCHITECTURES=$arch")
    command -v ninja >/dev/null && [[ ! -f $build/CMakeCache.txt ]] && config+=(-G Ninja)
    [[ -n $deps ]] && config+=("-DMRIAE_DEPS_DIR=$deps")
    if run_step configure "cmake: GPU targets only, CMAKE_CUDA_ARCHITECTURES=$arch, bundle: ${deps:-none}" \
      cmake -S "$src" -B "$build" "${config[@]}"; then
      run_step build "cmake --build: ${gpu_targets[*]}, $jobs jobs" \
        cmake --build "$build" -j "$jobs" --target "${gpu_targets[@]}" &&
        echo "$commit" >"$state/built-commit"
    else
      not_run build "configure failed" "cmake --build"
    fi
  fi
fi
# The other groups run what the last successful build made, whichever call built it.
built=0
[[ -f $state/built-commit && -x $train && -x $build/tests/mriae_gpu_tests ]] && built=1

# The libraries each binary loads, and from where (its run path), then cuda_probe's report.
probe_libraries() {
  local missing=0
  for exe in "$build/bench/cuda_probe" "$build/tests/mriae_gpu_tests" "$train"; do
    echo "$exe: run path $(readelf -d "$exe" | sed -n 's/.*Library r[a-z]*path: //p')"
    ldd "$exe" | grep -E 'cudnn|cublas|cudart|nifti|not found'
    ldd "$exe" | grep -q 'not found' && missing=1
  done
  "$build/bench/cuda_probe" && return "$missing"
}

# Two deterministic runs must agree bit for bit: every step's loss and the trained parameters (the
# checksum line of train_steps); the times differ and are left out.
deterministic_twice() {
  set -o pipefail
  local a b
  a=$("$train" --device cuda --deterministic --steps 5 --batch 32 --size 176 | sed -n '/^step /s/ time .*//p; /^checksum:/p') || return
  b=$("$train" --device cuda --deterministic --steps 5 --batch 32 --size 176 | sed -n '/^step /s/ time .*//p; /^checksum:/p') || return
  printf 'run 1:\n%s\nrun 2:\n%s\n' "$a" "$b"
  [[ -n $a && $a == "$b" ]] && echo "identical" && return 0
  echo "DIFFERENT"
  return 1
}

# The CPU suite's cases that use the GPU; they pass without one (skipping themselves), so a machine
# without a GPU gets 77 here rather than a pass.
cpu_suite_gpu_cases() {
  "$build/bench/cuda_probe" | grep -q '^gpus: [1-9]' || { echo "no GPU (bench/cuda_probe)"; return 77; }
  "$build/tests/mriae_tests" '-tc=*GPU*,*CUDA*' --duration=true
}

# The three above run as steps, in a child bash (run_step).
export -f probe_libraries deterministic_twice cpu_suite_gpu_cases
export build train

if wants probe; then
  if [[ $built -eq 1 ]]; then
    run_step cuda-probe "bench/cuda_probe: the cuDNN (header and cudnnGetVersion), runtime, driver and GPUs met" \
      probe_libraries
    run_step gpu-tests "mriae_gpu_tests: every CUDA op vs CPU, training parity, determinism, allocations" \
      "$build/tests/mriae_gpu_tests" --duration=true
    run_step train-short "train_steps: 10 steps, batch 16, 176x176, and 3 inference passes" \
      "$train" --device cuda --steps 10 --batch 16 --size 176 --eval-steps 3
  else
    not_run cuda-probe "no build (the probe group makes it)" "bench/cuda_probe"
    not_run gpu-tests "no build (the probe group makes it)" "mriae_gpu_tests"
    not_run train-short "no build (the probe group makes it)" "train_steps"
  fi
fi

# ---- race: the kernel table, then mriae against PyTorch eager
if wants race; then
  group=race
  if [[ $built -eq 1 ]]; then
    repeats=()
    [[ -n ${BENCH_REPEATS:-} ]] && repeats=(--repeats "$BENCH_REPEATS")
    run_step bench_cuda_ops "every CUDA kernel and cuDNN convolution validated, then timed (batch 128, 176x176)" \
      "$build/bench/bench_cuda_ops" "${repeats[@]}"
    race_note="run_gpu.sh: mriae vs PyTorch eager (NCHW, channels-last), FP32 and TF32, batch 128, 176x176"
    [[ $have_torch -eq 1 ]] || race_note+=" (PyTorch with CUDA not available: mriae only)"
    run_step gpu-race "$race_note" env VARIANTS=eager,eager-channels-last PYTHON="$python" \
      bash "$src/bench/run_gpu.sh" "$build"
  else
    not_run bench_cuda_ops "no build (the probe group makes it)" "kernel table"
    not_run gpu-race "no build (the probe group makes it)" "run_gpu.sh, eager"
  fi
fi

# ---- sanitizers: one tool per group, over one deterministic step at a small odd batch (every op forward
# and backward, RMSprop)
sanitizer_step=(--device cuda --steps 1 --batch 3 --size 64 --deterministic)
for tool in memcheck racecheck synccheck; do
  wants "$tool" || continue
  group=$tool
  filter=()
  what="every kernel, cuDNN's and cuBLAS's included"
  if [[ $tool != memcheck ]]; then
    filter=(--kernel-name kns=mriae)  # every kernel of ours is in mriae::cuda: "5mriae" in its mangled name
    what="our kernels only (--kernel-name kns=mriae)"
  fi
  if [[ $built -ne 1 ]]; then
    not_run "sanitizer-$tool" "no build (the probe group makes it)" "compute-sanitizer --tool $tool"
  elif [[ -z $sanitizer ]]; then
    not_run "sanitizer-$tool" "compute-sanitizer not found" "compute-sanitizer --tool $tool"
  else
    run_step "sanitizer-$tool" "compute-sanitizer --tool $tool, $what: 1 deterministic step, batch 3, 64x64" \
      "$sanitizer" --tool "$tool" "${filter[@]}" --error-exitcode 99 "$train" "${sanitizer_step[@]}"
  fi
done


# ---- rest
if wants rest; then
  group=rest
  if [[ $built -eq 1 ]]; then
    run_step deterministic-bits "two train_steps --deterministic runs (5 steps, batch 32): losses and parameters bit for bit" \
      deterministic_twice
    # The CPU suite's GPU cases (the batch loader's pinned, device-side delivery; CUDA status checks): the
    # same build directory configured with the rest of the tree (CLI11 from the bundle), mriae_tests only.
    if run_step cpu-suite-configure "cmake -DMRIAE_GPU_ONLY=OFF (the CPU suite's targets too)" \
      cmake -S "$src" -B "$build" -DMRIAE_GPU_ONLY=OFF &&
      run_step cpu-suite-build "cmake --build: mriae_tests, $jobs jobs" cmake --build "$build" -j "$jobs" --target mriae_tests; then
      run_step cpu-suite-gpu-cases "mriae_tests -tc='*GPU*,*CUDA*': the CPU suite's cases that use the GPU" \
        cpu_suite_gpu_cases
    else
      not_run cpu-suite-gpu-cases "mriae_tests not built" "mriae_tests -tc='*GPU*,*CUDA*'"
    fi
    # The NCCL path of data-parallel training (tests/mpi/nccl_test.sh): the configure above finds MPI and NCCL
    # when the node has them; nvidia-nccl-cu13 comes with PyTorch's wheels, MPI does not come at all.
    if command -v mpirun >/dev/null && cmake --build "$build" --target help 2>/dev/null | grep -q 'nccl_sum' &&
      run_step nccl-build "cmake --build: nccl_sum" cmake --build "$build" -j "$jobs" --target nccl_sum; then
      run_step nccl-sum "tests/mpi/nccl_test.sh: a GPU tensor summed by ncclAllReduce, 1 rank and 1 per GPU" \
        bash "$src/tests/mpi/nccl_test.sh" "$build/tests/nccl_sum"
    else
      not_run nccl-sum "no mpirun or no MPI/NCCL build on this node" "tests/mpi/nccl_test.sh"
    fi
    # 1,224 training and 306 validation slices, rounded up to whole batches of 128: 10 steps, 3 passes.
    run_step tutorial-epoch "train_steps: the tutorial's epoch, 10 steps + 3 inference passes at batch 128, 176x176" \
      "$train" --device cuda --steps 10 --batch 128 --size 176 --eval-steps 3
    # Last: Inductor's compilation is the costliest step, and the eager race already places mriae.
    compile_note="run_gpu.sh: mriae vs torch.compile, FP32 and TF32, batch 128, 176x176"
    [[ $have_torch -eq 1 ]] || compile_note+=" (PyTorch with CUDA not available: mriae only)"
    run_step gpu-race-compile "$compile_note" env VARIANTS=compile PYTHON="$python" bash "$src/bench/run_gpu.sh" "$build"
  else
    not_run deterministic-bits "no build (the probe group makes it)" "two deterministic runs"
    not_run cpu-suite-gpu-cases "no build (the probe group makes it)" "mriae_tests -tc='*GPU*,*CUDA*'"
    not_run tutorial-epoch "no build (the probe group makes it)" "train_steps, batch 128"
    not_run gpu-race-compile "no build (the probe group makes it)" "run_gpu.sh, torch.compile"
  fi
fi

# The steps of every call so far, in group order.
names=() results=() durations=() notes=() step_groups=()
all_passed=1
for g in "${all_groups[@]}"; do
  while IFS=$'\t' read -r rg name status seconds note; do
    [[ $rg == "$g" ]] || continue
    step_groups+=("$rg") names+=("$name") results+=("$status") durations+=("$seconds") notes+=("$note")
    case $status in PASS | SKIP*) ;; *) all_passed=0 ;; esac
  done <"$records"
done
rm -rf "$out/logs"
cp -r "$logs" "$out/logs"

# ---- the report
probe_log=$logs/cuda-probe.log
probe_field() { grep -m1 "^$1" "$probe_log" 2>/dev/null | sed "s/^$1 *//" || true; }
cudnn_found=$(grep -m1 'mriae: cuDNN' "$logs/configure.log" 2>/dev/null | sed 's/.*mriae: cuDNN //')
{
  echo "# mriae GPU suite"
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Commit: $commit"
  echo "- GPU (name, driver, compute capability, memory): $gpu"
  echo "- CUDA toolkit: $cuda_version"
  echo "- cuDNN found by CMake (header version: include, library): ${cudnn_found:-not configured}"
  if [[ -s $probe_log ]]; then
    echo "- cuDNN at run time: $(probe_field 'cudnn runtime (cudnnGetVersion):') from $(probe_field 'cudnn library:')"
    echo "- CUDA runtime: $(probe_field 'cuda runtime:'); driver: $(probe_field 'cuda driver:')"
  else
    echo "- cuDNN and CUDA runtime at run time: not measured (bench/cuda_probe did not run)"
  fi
  echo "- compute-sanitizer: $sanitizer_version"
  echo "- PyTorch ($python): $torch_line"
  echo "- Offline bundle: $deps_line"
  echo "- CMAKE_CUDA_ARCHITECTURES: ${arch:-none}"
  echo "- Built from commit: $(cat "$state/built-commit" 2>/dev/null || echo "no successful build")"
  echo "- Groups run in this call: ${groups[*]}"
  echo
  missing=()
  for g in "${all_groups[@]}"; do
    [[ " ${step_groups[*]} " == *" $g "* ]] || missing+=("$g")
  done
  not_run_steps=()
  for i in "${!names[@]}"; do
    [[ ${results[$i]} == "NOT RUN"* ]] && not_run_steps+=("${names[$i]} (${results[$i]#NOT RUN: })")
  done
  if [[ ${#not_run_steps[@]} -gt 0 ]]; then
    echo "**Could not run here: ${#not_run_steps[@]} steps.** $(printf '%s; ' "${not_run_steps[@]}")"
    echo
  fi
  if [[ ${#missing[@]} -gt 0 ]]; then
    echo "**Incomplete: no results yet for ${missing[*]}.**"
  elif [[ $all_passed -eq 1 ]]; then
    echo "**All steps passed.**"
  else
    echo "**Some steps FAILED or did not run.**"
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
    case $name in bench_* | train-* | gpu-race* | tutorial-epoch) ;; *) continue ;; esac
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
    case $name in bench_* | train-* | gpu-race* | tutorial-epoch) continue ;; esac
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
