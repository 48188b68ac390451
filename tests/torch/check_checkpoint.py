#!/usr/bin/python3
"""An independent check of mriae's checkpoints and of `mriae reconstruct`, in PyTorch.

    check_checkpoint.py crop VOLUME OUT.nii.gz [reoriented] [A B]
        writes a small crop of VOLUME (every second voxel in x and z, 10 slices in y) with nibabel, its
        intensities mapped to A * v + B when given (the same scan in another scanner's units); with
        `reoriented`, stored in another axis order and direction (x flipped, y and z swapped) at 1.5 mm, so a
        run that conforms its volumes has to reorient and resample it
    check_checkpoint.py compare CHECKPOINT INPUT.nii.gz RECON.nii.gz
        loads CHECKPOINT into a torch.nn.Module by its state_dict names (strict), redoes the reconstruction of
        INPUT in PyTorch (slices along the run's axis, its normalisation method with numpy's own min, max or
        percentiles, its padding, the model in inference mode, cropped and mapped back to intensities) and
        compares it with mriae's RECON voxel by voxel. For a run that conformed its volumes, INPUT is conformed
        with nibabel (as_closest_canonical, then nibabel.processing.resample_to_output at the run's voxel size
        and order), normalised from the conformed voxels as training does, and the output mapped back onto
        INPUT's voxels with scipy.ndimage.map_coordinates.

The checkpoint is parsed here with json and numpy alone (the safetensors layout: 8-byte header length, JSON
header, raw little-endian data), so this also shows the files are readable without mriae. Exit status 77 when
PyTorch or nibabel is missing (a skip for ctest), 1 on a mismatch.
"""
import json
import struct
import sys

try:
    import nibabel as nib
    import numpy as np
    import torch
    import torch.nn as nn
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"skipped: {e} (Debian packages python3-torch and python3-nibabel)")
    sys.exit(77)

CHANNELS = [(1, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128), (128, 64), (64, 64), (64, 32), (32, 32),
            (32, 1)]


class Autoencoder(nn.Module):
    """The tutorial's model with PyTorch modules named as mriae names its tensors."""

    def __init__(self):
        super().__init__()
        for i, (cin, cout) in enumerate(CHANNELS, start=1):
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, 3, padding=1))
            if i < len(CHANNELS):
                setattr(self, f"bn{i}", nn.BatchNorm2d(cout, eps=1e-3))

    def forward(self, x):
        for i in range(1, len(CHANNELS)):
            x = getattr(self, f"bn{i}")(torch.relu(getattr(self, f"conv{i}")(x)))
            if i in (2, 4):
                x = nn.functional.max_pool2d(x, 2)
            if i in (8, 10):
                x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
        return torch.sigmoid(self.conv11(x))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    tensors = {}
    for name, t in header.items():
        lo, hi = t["data_offsets"]
        tensors[name] = np.frombuffer(body[lo:hi], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
    return tensors, meta


def crop(volume, out, reoriented=False, a=1.0, b=0.0):
    img = nib.load(volume)
    v = np.asarray(img.dataobj, dtype=np.float32)
    # 40 x 10 x 38: in-plane 40 x 38 along axis 1, padded to 40 x 40
    small = v[50:130:2, 95:105, 50:126:2] * np.float32(a) + np.float32(b)
    affine = img.affine
    if reoriented:
        small = np.ascontiguousarray(np.flip(small, axis=0).transpose(0, 2, 1))  # 40 x 38 x 10
        m = np.array([[-1.5, 0, 0, 39 * 1.5], [0, 0, 1.5, 0], [0, 1.5, 0, 0], [0, 0, 0, 1]])
        affine = img.affine @ m
    nib.save(nib.Nifti1Image(small, affine), out)
    return 0


def conform(img, voxel, order):
    """nibabel's conformed image of img's float data, as io/conform.h defines it."""
    import nibabel.processing as nproc
    canon = nib.as_closest_canonical(nib.Nifti1Image(img.get_fdata(), img.affine))
    if np.all(np.abs(canon.affine[:3, :3] - voxel * np.eye(3)) <= 1e-6):
        return canon
    return nproc.resample_to_output(canon, voxel, order=order, mode="constant", cval=0.0)


def unconform(values, conformed_affine, img, order):
    """values on the conformed grid, sampled at img's own voxel centres."""
    import scipy.ndimage as nd
    m = np.linalg.inv(conformed_affine) @ img.affine
    idx = np.indices(img.shape[:3], dtype=np.float64).reshape(3, -1)
    coords = m[:3, :3] @ idx + m[:3, 3:4]
    return nd.map_coordinates(values, coords, order=order, mode="nearest").reshape(img.shape[:3])


def compare(checkpoint, volume, recon):
    tensors, meta = read_safetensors(checkpoint)
    state = {k: torch.from_numpy(v.copy()) for k, v in tensors.items() if not k.startswith(("optimizer.", "bn_ema."))}
    f64 = tensors["conv1.weight"].dtype == np.float64  # a checkpoint of mriae train --dtype float64
    model = Autoencoder().double() if f64 else Autoencoder()
    model.load_state_dict(state, strict=True)  # every name and shape must match
    model.eval()

    axis = int(meta["data.axis"])
    method = meta["data.normalize"]
    top_left = meta["data.pad"] == "top-left"
    img = nib.load(volume)
    conformed = meta.get("data.conform") == "1"
    if conformed:
        order = 1 if meta["data.interp"] == "linear" else 0
        grid = conform(img, float(meta["data.voxel"]), order)
        v = np.asarray(grid.dataobj, dtype=np.float32)
    else:
        v = np.asarray(img.dataobj, dtype=np.float32)
    clip = False
    if method in ("train", "all"):  # the training data's range, stored in the checkpoint
        lo, hi = float(meta["data.norm_min"]), float(meta["data.norm_max"])
    elif method == "volume":  # the input's own
        lo, hi = float(v.min()), float(v.max())
    elif method == "percentile":  # the input's own, clipped
        lo, hi = (float(p) for p in np.percentile(v.astype(np.float64), [float(q) for q in meta["data.percentiles"].split(",")]))
        clip = True
    else:
        print(f"unknown normalisation method {method!r}")
        return 1
    slices = np.moveaxis(v, axis, 0)  # slice j along axis 1 is v[:, j, :], as numpy gives it
    h, w = slices.shape[1:]
    ph, pw = -(-h // 4) * 4, -(-w // 4) * 4
    oy, ox = (ph - h, pw - w) if top_left else ((ph - h) // 2, (pw - w) // 2)
    x = np.zeros((slices.shape[0], 1, ph, pw), dtype=np.float32)
    scaled = (slices - np.float32(lo)) / np.float32(hi - lo)
    x[:, 0, oy:oy + h, ox:ox + w] = np.clip(scaled, 0, 1) if clip else scaled
    with torch.no_grad():
        y = model(torch.from_numpy(x.astype(np.float64) if f64 else x)).numpy()[:, 0, oy:oy + h, ox:ox + w]
    expected = np.moveaxis(y * (hi - lo) + lo, 0, axis)
    if conformed:
        expected = unconform(expected.astype(np.float64), grid.affine, img, order)

    got = np.asarray(nib.load(recon).dataobj, dtype=np.float32)
    if got.shape != expected.shape:
        print(f"shape: mriae {got.shape}, PyTorch {expected.shape}")
        return 1
    if not np.allclose(nib.load(recon).affine, nib.load(volume).affine, atol=1e-5):
        print("the reconstruction's affine differs from the input's")
        return 1
    # float32 through 11 layers in two engines. Measured: up to 7e-7 of the output's [0, 1] scale on a trained
    # model, 5e-6 on the barely trained one of tests/cli/cli_test.sh; a wrong layer or scaling gives 0.1 or more.
    # In float64 only the float32 volumes' own rounding remains (~1e-7 of the scale).
    limit = (1e-6 if f64 else 1e-4) * (hi - lo)
    err = np.abs(got.astype(np.float64) - expected)
    print(f"mriae reconstruct vs PyTorch ({method}: {lo:.6g} .. {hi:.6g}): max |diff| {err.max():.3g}, "
          f"mean {err.mean():.3g} (limit {limit:.3g}), "
          f"{len(state)} {'float64' if f64 else 'float32'} state_dict tensors loaded strictly"
          + (f"; conformed {img.shape} -> {v.shape} and mapped back" if conformed else ""))
    return 0 if err.max() <= limit else 1


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "crop":
        extra = sys.argv[4:]
        reoriented = bool(extra) and extra[0] == "reoriented"
        if reoriented:
            extra = extra[1:]
        if len(extra) in (0, 2):
            sys.exit(crop(sys.argv[2], sys.argv[3], reoriented, *(float(x) for x in extra)))
    if len(sys.argv) == 5 and sys.argv[1] == "compare":
        sys.exit(compare(*sys.argv[2:]))
    print(__doc__)
    sys.exit(2)
