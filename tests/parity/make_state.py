#!/usr/bin/python3
"""Writes tests/parity/state_v1.bin, the PyTorch reference that tests/test_parity.cpp checks the engine against.

Run from anywhere with the Debian interpreter (the pyenv `python3` on PATH lacks these packages):

    /usr/bin/python3 tests/parity/make_state.py [--out PATH] [--volume PATH]
    /usr/bin/python3 tests/parity/make_state.py --dtype float64   # tests/parity/state_v2_f64.bin

Needs the Debian packages python3-torch (1.13, CPU is enough) and python3-nibabel, and the T1 template
/usr/share/mricron/templates/ch2.nii.gz from mricron-data. The output is deterministic: running it twice
gives the same bytes, so a regenerated file only differs from the committed one if the model changed.

The model is the engine's autoencoder written functionally: 11 convs 3x3 'same' with bias; conv i (i <= 10)
is followed by ReLU then training-mode BatchNorm (Keras order); maxpool 2x2 after bn2 and bn4; nearest
upsampling x2 after bn8 and bn10; conv11 then sigmoid. Loss MSE against the input, Keras-2.2 RMSprop,
Keras-2.2 moving statistics. Everything runs in float64 from float32 starting values, so the stored
reference (rounded to float32) is the exact answer and the engine's float32 error is pure rounding.

File format v1, little-endian: magic b"MRIAEST1", uint32 version, uint32 tensor count, then per tensor
uint32 name length, utf-8 name, uint32 ndim, int64 dims[ndim], float32 data (row-major).

With --dtype float64 the same trajectory is stored unrounded, for the engine's float64 path, in format v2:
as v1 but each tensor's ndim is preceded by a uint32 dtype code (1 float32, 2 float64). The input and the
starting values are exactly float32 and are stored so; everything else is float64. It holds every step's
gradients and the parameters after the last step (the earlier steps' parameters show in the next step's
gradients), to keep the file at 16 MB.
"""
import argparse
import math
import os
import struct

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F

MAGIC = b"MRIAEST1"
VERSION = 1
VERSION_F64 = 2
DTYPE_CODES = {"<f4": 1, "<f8": 2}
SEED = 20240917
SLICES = (96, 104, 112, 120)  # nibabel axis-1 (coronal) slices, spread through the middle of the brain
CROP = 64
STEPS = 3
BN_EPS = 1e-3
BN_MOMENTUM = 0.99
LR, RHO, RMS_EPS = 1e-3, 0.9, 1e-7

# (Cin, Cout) of conv1..conv11; what follows each conv is fixed by ARCH below.
CONVS = [(1, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128), (128, 64), (64, 64), (64, 32), (32, 32),
         (32, 1)]
POOL_AFTER_BN = {2, 4}
UP_AFTER_BN = {8, 10}


def param_specs():
    """Names and shapes in the engine's declaration order (model/autoencoder.cpp)."""
    specs = []
    for i, (cin, cout) in enumerate(CONVS, start=1):
        specs.append((f"conv{i}.weight", (cout, cin, 3, 3)))
        specs.append((f"conv{i}.bias", (cout,)))
        if i < len(CONVS):
            specs.append((f"bn{i}.weight", (cout,)))
            specs.append((f"bn{i}.bias", (cout,)))
    return specs


def make_input(volume_path):
    vol = np.asarray(nib.load(volume_path).dataobj).astype(np.float64)
    lo, hi = vol.min(), vol.max()
    # Centre each crop on the slice's bright tissue (above the volume's 75th percentile) so every crop is
    # mostly brain rather than background.
    bright = np.percentile(vol, 75)
    crops = []
    for j in SLICES:
        s = vol[:, j, :]
        cy, cx = np.rint(np.argwhere(s > bright).mean(axis=0)).astype(int)
        y0 = min(max(cy - CROP // 2, 0), s.shape[0] - CROP)
        x0 = min(max(cx - CROP // 2, 0), s.shape[1] - CROP)
        crops.append(s[y0:y0 + CROP, x0:x0 + CROP])
    x = (np.stack(crops)[:, None] - lo) / (hi - lo)
    return torch.from_numpy(x.astype(np.float32))


def init_params(gen):
    """float32 starting values; non-trivial biases, gammas and betas so every gradient path is exercised."""
    params = {}
    for name, shape in param_specs():
        u = torch.rand(shape, generator=gen, dtype=torch.float64)
        if name.startswith("conv") and name.endswith(".weight"):
            cout, cin = shape[0], shape[1]
            limit = math.sqrt(6.0 / (9.0 * (cin + cout)))
            v = (2 * u - 1) * limit
        elif name.startswith("conv"):
            v = (2 * u - 1) * 0.05
        elif name.endswith(".weight"):
            v = 0.8 + 0.4 * u
        else:
            v = (2 * u - 1) * 0.1
        params[name] = v.float()
    return params


class MovingStats:
    """Keras 2.2 moving statistics: a zero-started hidden EMA, published divided by 1 - momentum^t."""

    def __init__(self, channels):
        self.t = 0
        self.hidden_mean = torch.zeros(channels, dtype=torch.float64)
        self.hidden_var = torch.zeros(channels, dtype=torch.float64)
        self.mean = torch.zeros(channels, dtype=torch.float64)
        self.var = torch.ones(channels, dtype=torch.float64)

    def update(self, batch_mean, batch_biased_var, n):
        self.t += 1
        self.hidden_mean = BN_MOMENTUM * self.hidden_mean + (1 - BN_MOMENTUM) * batch_mean
        self.hidden_var = BN_MOMENTUM * self.hidden_var + (1 - BN_MOMENTUM) * batch_biased_var * (n / (n - 1))
        debias = 1 - BN_MOMENTUM ** self.t
        self.mean = self.hidden_mean / debias
        self.var = self.hidden_var / debias


def forward(p, x, stats, training, torch_bn=False):
    """torch_bn: normalise with F.batch_norm instead (no moving statistics), to cross-check the written-out rule."""
    h = x
    for i in range(1, len(CONVS)):
        h = torch.relu(F.conv2d(h, p[f"conv{i}.weight"], p[f"conv{i}.bias"], stride=1, padding=1))
        gamma, beta = p[f"bn{i}.weight"], p[f"bn{i}.bias"]
        if torch_bn:
            h = F.batch_norm(h, None, None, gamma, beta, training=True, eps=BN_EPS)
        else:
            if training:
                mean = h.mean(dim=(0, 2, 3))
                var = ((h - mean.view(1, -1, 1, 1)) ** 2).mean(dim=(0, 2, 3))  # biased, as normalisation uses
                stats[i].update(mean.detach(), var.detach(), h.shape[0] * h.shape[2] * h.shape[3])
            else:
                mean, var = stats[i].mean, stats[i].var
            h = (h - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + BN_EPS) * gamma.view(1, -1, 1, 1) \
                + beta.view(1, -1, 1, 1)
        if i in POOL_AFTER_BN:
            h = F.max_pool2d(h, 2)  # backward sends the gradient to the first maximum in row-major order
        if i in UP_AFTER_BN:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
    last = len(CONVS)
    return torch.sigmoid(F.conv2d(h, p[f"conv{last}.weight"], p[f"conv{last}.bias"], stride=1, padding=1))


def build_state(volume_path, every_step_grads=False):
    gen = torch.Generator().manual_seed(SEED)
    x32 = make_input(volume_path)
    init = init_params(gen)

    out = [("input", x32)]
    out += [(f"init/{k}", v) for k, v in init.items()]

    names = list(init)
    p = {k: v.double().requires_grad_(True) for k, v in init.items()}
    acc = {k: torch.zeros_like(v, dtype=torch.float64) for k, v in init.items()}
    stats = {i: MovingStats(CONVS[i - 1][1]) for i in range(1, len(CONVS))}
    x = x32.double()

    for step in range(1, STEPS + 1):
        y = forward(p, x, stats, training=True)
        with torch.no_grad():
            y_torch_bn = forward(p, x, None, training=True, torch_bn=True)
        assert torch.allclose(y, y_torch_bn, rtol=0, atol=1e-12), "the batchnorm rule differs from F.batch_norm"
        loss = ((y - x) ** 2).mean()
        grads = torch.autograd.grad(loss, [p[k] for k in names])
        out.append((f"step{step}/output", y.detach()))
        out.append((f"step{step}/loss", loss.detach().reshape(1)))
        if step == 1 or every_step_grads:
            out += [(f"step{step}/grad/{k}", g) for k, g in zip(names, grads)]
        with torch.no_grad():
            for k, g in zip(names, grads):
                acc[k] = RHO * acc[k] + (1 - RHO) * g * g
                p[k] -= LR * g / (torch.sqrt(acc[k]) + RMS_EPS)
        # clone: the in-place updates of later steps would otherwise rewrite what this step recorded
        out += [(f"step{step}/param/{k}", p[k].detach().clone()) for k in names]
        for i, s in stats.items():
            out.append((f"step{step}/bn{i}.running_mean", s.mean))
            out.append((f"step{step}/bn{i}.running_var", s.var))

    with torch.no_grad():
        out.append(("eval/output", forward(p, x, stats, training=False)))
    return out


def serialise(tensors):
    names = [n for n, _ in tensors]
    assert len(names) == len(set(names)), "duplicate tensor names"
    chunks = [MAGIC, struct.pack("<II", VERSION, len(tensors))]
    for name, t in tensors:
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4"))
        nb = name.encode("utf-8")
        chunks.append(struct.pack("<I", len(nb)) + nb)
        chunks.append(struct.pack("<I", a.ndim) + struct.pack(f"<{a.ndim}q", *a.shape))
        chunks.append(a.tobytes())
    return b"".join(chunks)


def serialise_f64(tensors):
    """Format v2: the float64 trajectory, minus the parameters of all but the last step."""
    kept = [(n, t) for n, t in tensors if "/param/" not in n or n.startswith(f"step{STEPS}/")]
    chunks = [MAGIC, struct.pack("<II", VERSION_F64, len(kept))]
    for name, t in kept:
        exact_f32 = name == "input" or name.startswith("init/")
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4" if exact_f32 else "<f8"))
        if exact_f32:
            assert np.array_equal(a.astype(np.float64), t.detach().double().cpu().numpy()), name
        nb = name.encode("utf-8")
        chunks.append(struct.pack("<I", len(nb)) + nb)
        chunks.append(struct.pack("<II", DTYPE_CODES[a.dtype.str], a.ndim) + struct.pack(f"<{a.ndim}q", *a.shape))
        chunks.append(a.tobytes())
    return b"".join(chunks)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                    help="float32: state_v1.bin (rounded); float64: state_v2_f64.bin (format v2, unrounded)")
    ap.add_argument("--out", help="default: state_v1.bin or state_v2_f64.bin beside this script")
    ap.add_argument("--volume", default="/usr/share/mricron/templates/ch2.nii.gz")
    args = ap.parse_args()
    f64 = args.dtype == "float64"
    if args.out is None:
        args.out = os.path.join(here, "state_v2_f64.bin" if f64 else "state_v1.bin")
    # One thread and deterministic kernels: the float64 sums must not depend on the machine's core count.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    state = build_state(args.volume, every_step_grads=f64)
    data = serialise_f64(state) if f64 else serialise(state)
    with open(args.out, "wb") as f:
        f.write(data)
    print(f"wrote {args.out}: {len(data)} bytes")


if __name__ == "__main__":
    main()
