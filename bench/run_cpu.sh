#!/usr/bin/env bash
# The CPU race: training steps of the engine's CPU path against PyTorch CPU (Debian python3-torch), same
# model, batch, image size and thread count, in one run; prints a markdown table. Each engine also times
# inference passes, so the table can give the tutorial's epoch: 1,224 training slices plus 306 validation
# slices run forward only.
# Usage: bench/run_cpu.sh [BUILD_DIR] (default build/release); THREADS, BATCH, SIZE, STEPS, EVAL_STEPS override.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
threads=${THREADS:-2} batch=${BATCH:-8} size=${SIZE:-176} steps=${STEPS:-5} eval_steps=${EVAL_STEPS:-3}
[[ -x $build/bench/train_steps ]] || { echo "run_cpu: build first (cmake --build $build)" >&2; exit 1; }
((eval_steps >= 1)) || { echo "run_cpu: EVAL_STEPS must be at least 1 (the epoch needs the inference rate)" >&2; exit 2; }
export OMP_NUM_THREADS=$threads
# train_steps counts its first step and pass as warm-up; PyTorch's script warms up on its own.
rows=("$("$build/bench/train_steps" --device cpu --json --batch "$batch" --size "$size" --steps $((steps + 1)) \
  --eval-steps $((eval_steps + 1)))")
for layout in "" --channels-last; do
  # shellcheck disable=SC2086 # the empty layout is meant to vanish
  rows+=("$(/usr/bin/python3 bench/torch_cpu_train_step.py --threads "$threads" --batch "$batch" --size "$size" \
    --steps "$steps" --eval-steps "$eval_steps" $layout)")
done
printf '%s\n' "${rows[@]}"
/usr/bin/python3 - "${rows[@]}" <<'PY'
import json, sys
rows = [json.loads(r) for r in sys.argv[1:]]
ours = rows[0]["images_per_s"]
r0 = rows[0]
print(f"\nCPU training step, batch {r0['batch']}, {r0['size']}x{r0['size']}, {r0['threads']} threads, float32\n")
print("| engine | images/s | step (s) | vs mriae | inference images/s | tutorial epoch (s) |")
print("|---|---|---|---|---|---|")
for r in rows:
    name = r["engine"] + (f" ({r['torch']})" if "torch" in r else "")
    # 1,224 training slices at the training rate, 306 validation slices at the inference rate.
    epoch = 1224 / r["images_per_s"] + 306 / r["eval_images_per_s"]
    print(f"| {name} | {r['images_per_s']:.2f} | {r['median_step_s']:.3f} | {r['images_per_s'] / ours:.2f}x | "
          f"{r['eval_images_per_s']:.2f} | {epoch:.0f} |")
print("\nTutorial epoch: 1,224 training slices / images/s + 306 validation slices / inference images/s.")
print(f"\nmriae CPU {ours:.2f} img/s, PyTorch CPU {rows[1]['images_per_s']:.2f} img/s: "
      f"ratio {ours / rows[1]['images_per_s']:.2f}x")
PY
