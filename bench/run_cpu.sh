#!/usr/bin/env bash
# The CPU peer table: mriae's CPU training step and inference pass against other engines running the same
# model (the tutorial's autoencoder, 427,713 parameters), batch, image size, float32, random images in
# [0, 1), MSE loss and RMSprop (lr 1e-3, rho 0.9, eps 1e-7, Keras semantics), each on the same number of
# threads, with the machine's float32 FMA peak (bench/cpu_peak) measured in the same run:
#   mriae            bench/train_steps --json
#   pytorch          Debian's python3-torch, NCHW            bench/torch_cpu_train_step.py
#   pytorch-cl       the same in channels-last               bench/torch_cpu_train_step.py --channels-last
#   keras-tf         Keras 3 on TensorFlow CPU (graph)       bench/keras_cpu_train_step.py   (venv)
#   keras-tf-xla     the same, jit_compile=True              bench/keras_cpu_train_step.py --jit-compile
#   keras-jax        Keras 3 on JAX (XLA)                    bench/keras_cpu_train_step.py --backend jax
#   onnxruntime      inference only, the model exported from PyTorch (bench/export_onnx.py, eval mode)
#   openvino         inference only, the same ONNX file      bench/onnx_cpu_inference.py     (venv)
# Engines run in that order, one process each, and the whole list again, ROUNDS times (interleaved, so that
# a change in the machine's load falls on every engine); the table gives median (min-max) over rounds, and
# each peer's ratio to mriae within a round, median over rounds. An engine that cannot be installed or
# fails is a row saying why. FLOP counts (convolutions only): bench/cpu_table.py's docstring.
#
# Usage: bench/run_cpu.sh [--sweep] [--out DIR] [BUILD_DIR]      (BUILD_DIR default build/release)
#   THREADS (2), BATCH (8), SIZE (176), ROUNDS (5); STEPS timed training steps (5; 1 at BATCH >= 64),
#   WARMUP untimed steps before them (2; 1 at BATCH >= 64; mriae always leaves out 1), EVAL_STEPS timed
#   inference passes (3; 1 at BATCH >= 64); ENGINES (the list above, space-separated) to run a subset;
#   ENGINE_TIMEOUT seconds per engine process (1800).
#   --out DIR (or OUT=DIR): also write DIR/cpu-DATE-tTHREADS-bBATCH-sSIZE.md and .jsonl (every round's rows).
#   --sweep: the table for every THREADS in SWEEP_THREADS ("1 2") and BATCH in SWEEP_BATCHES ("1 8 128").
#     Batch 128 takes about 30 s a training step for mriae on 2 threads here, more for the slower peers:
#     expect an hour or more for the whole sweep at 3 rounds; ROUNDS=1 for a first look.
#   The Python peers run in a venv the script makes the first time (VENV, default ~/.cache/mriae/bench-venv,
#   with VENV_PYTHON, default /usr/bin/python3, else the python3 on PATH), installing from PyPI with pip,
#   pinned by bench/cpu-peers-constraints.txt. Later runs need no network; NO_INSTALL=1 never calls pip.
set -euo pipefail
cd "$(dirname "$0")/.."

sweep=0 out=${OUT:-} build=build/release
while (($#)); do
  case $1 in
    --sweep) sweep=1 ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) build=$1 ;;
  esac
  shift
done
if ((sweep)); then
  for t in ${SWEEP_THREADS:-1 2}; do
    for b in ${SWEEP_BATCHES:-1 8 128}; do
      echo "== run_cpu: THREADS=$t BATCH=$b =="
      THREADS=$t BATCH=$b OUT=$out "$0" "$build"
      echo
    done
  done
  exit 0
fi

threads=${THREADS:-2} batch=${BATCH:-8} size=${SIZE:-176} rounds=${ROUNDS:-5}
if ((batch >= 64)); then big=1; else big=0; fi
steps=${STEPS:-$((big ? 1 : 5))} warmup=${WARMUP:-$((big ? 1 : 2))} eval_steps=${EVAL_STEPS:-$((big ? 1 : 3))}
engines=${ENGINES:-mriae pytorch pytorch-cl keras-tf keras-tf-xla keras-jax onnxruntime openvino}
engine_timeout=${ENGINE_TIMEOUT:-1800}
venv=${VENV:-$HOME/.cache/mriae/bench-venv}
constraints=bench/cpu-peers-constraints.txt
[[ -x $build/bench/train_steps ]] || { echo "run_cpu: build first (ninja -C $build bench/train_steps bench/cpu_peak)" >&2; exit 1; }
((eval_steps >= 1 && steps >= 1 && rounds >= 1)) || { echo "run_cpu: STEPS, EVAL_STEPS and ROUNDS must be at least 1" >&2; exit 2; }
((size % 4 == 0)) || { echo "run_cpu: SIZE must be a multiple of 4 (two poolings)" >&2; exit 2; }
export OMP_NUM_THREADS=$threads

work=$(mktemp -d "${TMPDIR:-/tmp}/run_cpu.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- The venv and its groups. A group is installed once; its stamp holds the constraints file's hash, so a
# changed pin reinstalls it. A failure is remembered in the stamp's .failed twin for the rows to quote.
declare -A group_of=([keras-tf]=tensorflow [keras-tf-xla]=tensorflow [keras-jax]=jax [onnxruntime]=onnxruntime
                     [openvino]=openvino)
declare -A packages=([tensorflow]="tensorflow-cpu keras" [jax]="jax jaxlib keras" [onnxruntime]="onnxruntime numpy"
                     [openvino]="openvino numpy")
declare -A missing=()  # group -> why it cannot run
hash=$(sha256sum "$constraints" | cut -c1-16)
make_venv() {
  [[ -x $venv/bin/python ]] && return 0
  if ((${NO_INSTALL:-0})); then echo "no venv at $venv and NO_INSTALL=1"; return 1; fi
  mkdir -p "$(dirname "$venv")"
  local py
  for py in ${VENV_PYTHON:-/usr/bin/python3} "$(command -v python3)"; do
    echo "run_cpu: making the benchmark venv $venv with $py" >&2
    "$py" -m venv "$venv" >>"$venv.log" 2>&1 && return 0
    rm -rf "$venv"
  done
  echo "could not make a venv at $venv (see $venv.log)"
  return 1
}
wanted_groups=$(for e in $engines; do if [[ -n ${group_of[$e]:-} ]]; then echo "${group_of[$e]}"; fi; done | sort -u)
if [[ -n $wanted_groups ]]; then
  if ! why=$(make_venv); then
    for g in $wanted_groups; do missing[$g]="not installed: $why"; done
  else
    for g in $wanted_groups; do
      stamp=$venv/.mriae-$g
      [[ -f $stamp && $(cat "$stamp") == "$hash" ]] && continue
      if ((${NO_INSTALL:-0})); then missing[$g]="not installed in $venv (NO_INSTALL=1)"; continue; fi
      echo "run_cpu: installing ${packages[$g]} into $venv (pinned by $constraints; log $venv.log)" >&2
      # shellcheck disable=SC2086 # the package list splits into names
      if "$venv/bin/python" -m pip install --disable-pip-version-check -q -c "$constraints" ${packages[$g]} \
          >"$work/pip-$g.log" 2>&1; then
        echo "$hash" >"$stamp"
      else
        missing[$g]="not installed: pip install ${packages[$g]} failed ($(grep -m1 ERROR "$work/pip-$g.log" | cut -c1-160 || true); log $venv.log)"
      fi
      cat "$work/pip-$g.log" >>"$venv.log"
    done
  fi
fi
vpy=$venv/bin/python

# --- The ONNX file for the inference-only peers, exported once by Debian's PyTorch.
onnx_missing=""
if [[ " $engines " == *" onnxruntime "* || " $engines " == *" openvino "* ]]; then
  if ! /usr/bin/python3 bench/export_onnx.py "$work/autoencoder.onnx" --size "$size" 2>"$work/export.err"; then
    onnx_missing="ONNX export failed: $(grep -v '^\s*$' "$work/export.err" | tail -1 | cut -c1-200 || true)"
  fi
fi

# why_not prints why engine $1 cannot run (nothing if it can); engine_cmd sets cmd to the command that runs it.
py_train=(--threads "$threads" --batch "$batch" --size "$size" --steps "$steps" --warmup "$warmup" --eval-steps "$eval_steps")
py_infer=(--threads "$threads" --batch "$batch" --size "$size" --warmup "$warmup" --eval-steps "$eval_steps")
why_not() {
  local g=${group_of[$1]:-}
  if [[ -n $g && -n ${missing[$g]:-} ]]; then echo "${missing[$g]}"; return; fi
  case $1 in
    onnxruntime|openvino) [[ -n $onnx_missing ]] && echo "$onnx_missing" ;;
    pytorch|pytorch-cl) /usr/bin/python3 -c 'import torch' 2>/dev/null || echo "no torch for /usr/bin/python3 (apt-get install python3-torch)" ;;
    mriae|keras-tf|keras-tf-xla|keras-jax) ;;
    *) echo "unknown engine '$1' (known: mriae pytorch pytorch-cl keras-tf keras-tf-xla keras-jax onnxruntime openvino)" ;;
  esac
  return 0
}
engine_cmd() {
  case $1 in
    # train_steps leaves its first step and pass out as warm-up.
    mriae) cmd=("$build/bench/train_steps" --device cpu --json --batch "$batch" --size "$size" --steps $((steps + 1))
                --eval-steps $((eval_steps + 1))) ;;
    pytorch) cmd=(/usr/bin/python3 bench/torch_cpu_train_step.py "${py_train[@]}") ;;
    pytorch-cl) cmd=(/usr/bin/python3 bench/torch_cpu_train_step.py "${py_train[@]}" --channels-last) ;;
    keras-tf) cmd=("$vpy" bench/keras_cpu_train_step.py --backend tensorflow "${py_train[@]}") ;;
    keras-tf-xla) cmd=("$vpy" bench/keras_cpu_train_step.py --backend tensorflow --jit-compile "${py_train[@]}") ;;
    keras-jax) cmd=("$vpy" bench/keras_cpu_train_step.py --backend jax "${py_train[@]}") ;;
    onnxruntime|openvino) cmd=("$vpy" bench/onnx_cpu_inference.py --runtime "$1" --model "$work/autoencoder.onnx"
                               "${py_infer[@]}") ;;
  esac
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "run_cpu: $rounds rounds of: cpu_peak $engines (THREADS=$threads BATCH=$batch SIZE=$size; venv $venv)" >&2
for ((r = 1; r <= rounds; ++r)); do
  if [[ -x $build/bench/cpu_peak ]]; then "$build/bench/cpu_peak" --json >"$work/r$r-peak.out" 2>/dev/null || true; fi
  for e in $engines; do
    base=$work/r$r-$e
    why=$(why_not "$e")
    if [[ -n $why ]]; then
      echo "$why" >"$base.err"
      echo 127 >"$base.rc"
      continue
    fi
    engine_cmd "$e"
    rc=0
    timeout -k 30 "$engine_timeout" "${cmd[@]}" >"$base.out" 2>"$base.err" </dev/null || rc=$?
    echo "$rc" >"$base.rc"
    if ((rc == 0)); then msg=$(tail -1 "$base.out" | cut -c1-150 || true)
    else msg="failed (rc $rc): $(grep -v '^\s*$' "$base.err" | tail -1 | cut -c1-150 || true)"; fi
    echo "run_cpu: round $r $e: $msg" >&2
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
meta=$(/usr/bin/python3 -c 'import json, sys
m = dict(zip(sys.argv[1::2], sys.argv[2::2]))
print(json.dumps({k: int(v) if v.isdigit() else v for k, v in m.items()}))' \
  cpu "${cpu:-unknown}" nproc "$(getconf _NPROCESSORS_ONLN)" load_before "$load_before" load_after "$load_after" venv "$venv" \
  commit "$commit" date "$(date -u +%FT%TZ)" threads "$threads" batch "$batch" size "$size" steps "$steps" \
  warmup "$warmup" eval_steps "$eval_steps" engine_timeout "$engine_timeout")
table_args=(--work "$work" --rounds "$rounds" --engines "$engines" --meta "$meta")
if [[ -n $out ]]; then
  mkdir -p "$out"
  stem=$out/cpu-$(date +%F)-t$threads-b$batch-s$size
  table_args+=(--md "$stem.md" --jsonl "$stem.jsonl")
fi
echo
/usr/bin/python3 bench/cpu_table.py "${table_args[@]}"
[[ -z $out ]] || echo -e "\nrun_cpu: wrote $stem.md and $stem.jsonl"
