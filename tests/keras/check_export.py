#!/usr/bin/env python3
"""Checks `mriae export --keras` in real Keras: weights trained by mriae, exported in both layouts, loaded by
the tutorial's model in tf_keras (Keras 2 file) and keras 3 (both files), must predict what `mriae reconstruct`
computes from the checkpoint itself, on every coronal slice of Colin27.

Needs Keras (not in Debian; the venv of make_fixture.py, same versions), so it is run by hand, not by ctest:
    /work/wt/keras-venv/bin/python tests/keras/check_export.py build/cpu/apps/mriae [WORKDIR]
Prints the largest difference in the model's [0, 1] output scale and exits non-zero above 1e-4 (two float32
computations of eleven convolutions; tests/test_keras_weights.cpp measures that scale).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixture import CH2, build, check_versions  # noqa: E402


def run(*args):
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True)


def main():
    check_versions()
    mriae = os.path.abspath(sys.argv[1])
    work = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="mriae_export_")
    os.makedirs(work, exist_ok=True)
    ckpt = os.path.join(work, "run", "last.safetensors")
    run(mriae, "train", "--data", CH2, "--out", os.path.join(work, "run"), "--epochs", "2", "--batch", "4",
        "--central", "8", "--normalize", "volume", "--no-conform", "--device", "cpu", "--quiet")
    k2, k3 = os.path.join(work, "exported.h5"), os.path.join(work, "exported.weights.h5")
    run(mriae, "export", "--weights", ckpt, "--keras", k2)
    run(mriae, "export", "--weights", ckpt, "--keras", k3, "--format", "keras3")
    rec = os.path.join(work, "reconstruction.nii")
    run(mriae, "reconstruct", "--weights", ckpt, "--in", CH2, "--out", rec, "--device", "cpu")

    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import nibabel as nib
    import tf_keras
    import keras
    vol = nib.load(CH2).get_fdata(dtype=np.float32)
    mi, m = float(vol.min()), float(vol.max())
    x = np.zeros((vol.shape[1], 184, 184, 1), np.float32)
    for j in range(vol.shape[1]):
        x[j, 3:, 3:, 0] = (vol[:, j, :] - mi) / (m - mi)
    mriae_out = np.asarray(nib.load(rec).dataobj, np.float64)
    mriae_norm = np.stack([(mriae_out[:, j, :] - mi) / (m - mi) for j in range(vol.shape[1])])

    worst = 0.0
    for label, layers, Model, path in [("tf_keras %s" % tf_keras.__version__, tf_keras.layers, tf_keras.Model, k2),
                                       ("keras %s" % keras.__version__, keras.layers, keras.Model, k2),
                                       ("keras %s" % keras.__version__, keras.layers, keras.Model, k3)]:
        model = build(layers, Model)
        model.load_weights(path)
        y = model.predict(x, batch_size=16, verbose=0)[:, 3:, 3:, 0]
        d = float(np.abs(y - mriae_norm).max())
        worst = max(worst, d)
        print("%-14s loads %-22s predictions vs mriae reconstruct: max |diff| %.3g, mean %.3g (output mean %.3f)"
              % (label, os.path.basename(path), d, float(np.abs(y - mriae_norm).mean()), float(y.mean())))
    if worst > 1e-4:
        sys.exit("check_export.py: Keras's predictions from the exported weights differ from mriae's by %.3g" % worst)
    print("OK")


if __name__ == "__main__":
    main()
