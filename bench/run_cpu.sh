#!/usr/bin/env bash
# CPU training-step race: the engine's CPU path against PyTorch CPU, same model, batch, size and thread count.
# Usage: bench/run_cpu.sh [BUILD_DIR] (default build/release); THREADS, BATCH, SIZE, STEPS override.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
threads=${THREADS:-2} batch=${BATCH:-8} size=${SIZE:-176} steps=${STEPS:-5}
[[ -x $build/bench/train_steps ]] || { echo "run_cpu: build first (cmake --build $build)" >&2; exit 1; }
export OMP_NUM_THREADS=$threads
# train_steps counts its first step as warm-up; PyTorch's script warms up with 2 steps of its own.
ours=$("$build/bench/train_steps" --device cpu --json --batch "$batch" --size "$size" --steps $((steps + 1)))
theirs=$(/usr/bin/python3 bench/torch_cpu_train_step.py --threads "$threads" --batch "$batch" --size "$size" --steps "$steps")
echo "$ours"
echo "$theirs"
/usr/bin/python3 - "$ours" "$theirs" <<'PY'
import json, sys
o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"mriae CPU {o['images_per_s']:.2f} img/s, PyTorch {t['torch']} CPU {t['images_per_s']:.2f} img/s: "
      f"ratio {o['images_per_s'] / t['images_per_s']:.2f}x (batch {o['batch']}, {o['size']}x{o['size']}, "
      f"{t['threads']} threads)")
PY
