"""Writes N real 2-D images for `mriae trace --input`: SIZE x SIZE crops of coronal slices of Colin27
(mricron-data's ch2.nii.gz, nibabel's axis 1), centred in the brain, scaled to [0, 1] by the volume's range.

    make_input.py OUT.safetensors N SIZE
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

from mriae_compare import safetensors_io  # noqa: E402

out, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
v = np.asarray(nib.load("/usr/share/mricron/templates/ch2.nii.gz").dataobj, dtype=np.float64)
lo, hi = v.min(), v.max()
cx, cz = v.shape[0] // 2, v.shape[2] // 2
crops = [v[cx - size // 2:cx + size // 2, j, cz - size // 2:cz + size // 2] for j in range(96, 96 + 4 * n, 4)]
safetensors_io.write(out, {"input": ((np.stack(crops)[:, None] - lo) / (hi - lo)).astype(np.float32)})
