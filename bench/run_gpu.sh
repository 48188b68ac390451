#!/usr/bin/env bash
# The GPU race: training steps of mriae's CUDA path against PyTorch (eager NCHW, eager channels-last,
# torch.compile) on the same GPU, same model, batch and image size, in strict FP32 and with TF32 allowed,
# in one run. Every engine also times inference passes, for the tutorial's epoch: 1,224 training slices
# plus 306 validation slices run forward only. Prints the JSON rows, then one markdown table.
#
# Usage: bench/run_gpu.sh [BUILD_DIR] (default: the repository's build/); BATCH, SIZE, STEPS, EVAL_STEPS,
# PYTHON (an interpreter with PyTorch for CUDA; default python3) and VARIANTS (PyTorch's variants,
# comma-separated, default eager,eager-channels-last,compile) override. bench/gpu_suite.sh races the eager
# variants first and torch.compile, whose compilation takes minutes, in a later command.
# Exit status: 0 when mriae's rows were measured (PyTorch rows are added when PyTorch can run); 77 when
# there is no GPU for mriae; 1 on a failure.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$src/build}
batch=${BATCH:-128} size=${SIZE:-176} steps=${STEPS:-20} eval_steps=${EVAL_STEPS:-20} python=${PYTHON:-python3}
variants=${VARIANTS:-eager,eager-channels-last,compile}
train=$build/bench/train_steps
[[ -x $train ]] || { echo "run_gpu: $train not found: build first (cmake --build $build --target train_steps)" >&2; exit 1; }
((steps >= 1 && eval_steps >= 1)) || { echo "run_gpu: STEPS and EVAL_STEPS must be at least 1" >&2; exit 2; }

rows=()
for precision in "" --tf32; do
  # train_steps leaves its first step and first pass out as warm-up (algorithm search, allocations).
  # shellcheck disable=SC2086 # the empty precision is meant to vanish
  if row=$("$train" --device cuda --json --batch "$batch" --size "$size" --steps $((steps + 1)) \
    --eval-steps $((eval_steps + 1)) $precision); then
    rows+=("$row")
  else
    rc=$?
    if ((rc == 77)); then
      echo "run_gpu: no CUDA GPU for mriae here: skipped, nothing measured" >&2
      exit 77
    fi
    echo "run_gpu: train_steps --device cuda $precision failed (exit $rc)" >&2
    exit 1
  fi
done

torch_note=""
if torch_out=$("$python" "$src/bench/torch_reference.py" --json --batch "$batch" --size "$size" --steps "$steps" \
  --eval-steps "$eval_steps" --variants "$variants"); then
  rc=0
else
  rc=$?
fi
if ((rc == 77)); then
  torch_note="PyTorch with CUDA is not available to $python: no PyTorch rows."
elif ((rc != 0)); then
  torch_note="torch_reference.py failed (exit $rc): the rows it printed are kept."
fi
while IFS= read -r line; do
  if [[ $line == \{* ]]; then rows+=("$line"); fi
done <<<"$torch_out"

printf '%s\n' "${rows[@]}"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || true)
"$python" - "${gpu:-unknown GPU}" "$torch_note" "${rows[@]}" <<'PY'
import json, sys
gpu, note, rows = sys.argv[1], sys.argv[2], [json.loads(r) for r in sys.argv[3:]]
precisions = ("fp32", "tf32")
engines = list(dict.fromkeys(r["engine"] for r in rows))
by = {(r["engine"], r["precision"]): r for r in rows}
ours = {p: by[("mriae-cuda", p)]["images_per_s"] for p in precisions}
r0 = rows[0]

def cells(r, p):
    if r is None:
        return ["-", "-", "-"]
    if "error" in r:
        return [f"failed: {r['error']}", "-", "-"]
    # 1,224 training slices at the training rate, 306 validation slices at the inference rate.
    epoch = 1224 / r["images_per_s"] + 306 / r["eval_images_per_s"]
    return [f"{r['images_per_s']:.1f}", f"{r['images_per_s'] / ours[p]:.2f}x", f"{epoch:.1f}"]

print(f"\nGPU training step, {gpu}, batch {r0['batch']}, {r0['size']}x{r0['size']}\n")
print("| engine | FP32 images/s | FP32 vs mriae | FP32 epoch (s) | TF32 images/s | TF32 vs mriae | TF32 epoch (s) |")
print("|---|---|---|---|---|---|---|")
for e in engines:
    versions = next((f" ({r['torch']})" for r in rows if r["engine"] == e and "torch" in r), "")
    line = [e + versions] + cells(by.get((e, "fp32")), "fp32") + cells(by.get((e, "tf32")), "tf32")
    print("| " + " | ".join(line) + " |")
print("\nvs mriae: images/s over mriae's at the same precision (above 1.00x: faster than mriae). Epoch: 1,224 "
      "training slices / training images/s + 306 validation slices / inference images/s.")
if note:
    print(f"\n{note}")
PY
