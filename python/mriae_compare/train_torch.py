"""The same training run as `mriae train`, in PyTorch: from the run's starting state (RUN/initial.safetensors),
on its slices and split (`mriae slices`), with its batches (the shuffled order of every epoch, the windows of
--crop and the noise of --train-noise, redrawn here from mriae's seeded SplitMix64 streams), its schedule
(epochs, batch, RMSprop's lr, rho 0.9, eps 1e-7, the constant or cosine lr) and Keras 2.2's batchnorm. It
writes a weights-only mriae checkpoint of the epoch with the lowest validation loss, so `mriae evaluate
--weights OUT/best.safetensors` scores both engines with the same code.

    mriae slices --weights RUN/initial.safetensors --out slices.safetensors
    python3 -m mriae_compare.train_torch RUN/initial.safetensors slices.safetensors --out TORCH_RUN

Float32 arithmetic in another order diverges from mriae's within a few hundred steps (a ReLU input that
rounding moves across 0 changes the path), so the two runs end at different weights of the same quality:
the comparison is of results (losses, PSNR), against the run-to-run spread (--order-seed: the same start
and data in another order, with other noise).
"""
import argparse
import math
import os
import sys
import time

import numpy as np

from .safetensors_io import TraceError, read, write
from .trace import CHANNELS

MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
VALIDATION_EPOCH = -1  # apps/input_noise.h: kValidationEpoch


def _mix64(z):
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & MASK
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & MASK
    return z ^ (z >> 31)


class Rng:
    """engine/random.h: SplitMix64, one draw at a time (for the shuffle)."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next_u64(self):
        self.state = (self.state + GAMMA) & MASK
        return _mix64(self.state)


def _draws(seed, first, n):
    """Draws first .. first + n - 1 of the stream seeded `seed`, vectorised (uint64 arithmetic wraps)."""
    with np.errstate(over="ignore"):
        k = np.arange(first + 1, first + n + 1, dtype=np.uint64)
        z = np.uint64(seed & MASK) + k * np.uint64(GAMMA)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def normals(seed, first_value, n):
    """Rng::normal() values first_value .. of the stream: Box-Muller on two draws each, one value."""
    d = _draws(seed, 2 * first_value, 2 * n).reshape(n, 2)
    u = (d >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    return np.sqrt(-2.0 * np.log(1.0 - u[:, 0])) * np.cos(6.283185307179586 * u[:, 1])


def mix(state, value):
    """One component mixed into a stream seed, as apps/input_noise.cpp and io/crop.cpp do: a SplitMix64 step."""
    return Rng(state ^ (value & MASK)).next_u64()


def batch_noise_seed(seed, epoch, batch):
    """apps/input_noise.cpp."""
    s = mix(seed, 0x6E6F697365)
    s = mix(s, epoch)
    return mix(s, batch)


def uniform_below(rng, n):
    """io/permutation.cpp: unbiased, skipping the 2^64 mod n lowest draws."""
    threshold = ((1 << 64) - n) % n
    while True:
        r = rng.next_u64()
        if r >= threshold:
            return r % n


def crop_window(seed, epoch, position, height, width, size):
    """io/crop.cpp: the (top, left) of the size x size window at `position` of `epoch`."""
    s = mix(seed, 0x63726F70)
    s = mix(s, epoch)
    rng = Rng(mix(s, position))
    top = uniform_below(rng, height - size + 1)
    return top, uniform_below(rng, width - size + 1)


def epoch_order(indices, seed, epoch):
    """io/batch_loader.cpp's epoch_order: Fisher-Yates with io/permutation.cpp's unbiased uniform_below."""
    rng = Rng(((Rng(seed ^ 0x6A09E667F3BCC909).next_u64()) + epoch) & MASK)
    v = list(indices)
    for i in range(len(v), 1, -1):
        j = uniform_below(rng, i)
        v[i - 1], v[j] = v[j], v[i - 1]
    return v


def windows(slices, idx, seed, epoch, first_position, crop):
    """The batch's inputs before noise: whole slices, or with crop > 0 the window io/crop.cpp draws for each
    position (io/batch_loader.cpp: position first_position + i of the epoch)."""
    if not crop:
        return slices[idx]  # a copy (indexed by a list), float32 as main() converts them
    h, w = slices.shape[2], slices.shape[3]
    out = np.empty((len(idx), 1, crop, crop), dtype=np.float32)
    for i, n in enumerate(idx):
        top, left = crop_window(seed, epoch, first_position + i, h, w, crop)
        out[i] = slices[n, :, top:top + crop, left:left + crop]
    return out


def noisy(x, sigma, seed, epoch, batch_size, first_position):
    """apps/input_noise.cpp's noisy_batch: the input at position p takes batch p // B's stream from
    (p % B) * H * W (H x W the input's, a window's with --crop), added in float32 as there (the model's dtype
    comes after)."""
    x = x.copy()
    plane = x.shape[2] * x.shape[3]
    for i in range(x.shape[0]):
        p = first_position + i
        z = normals(batch_noise_seed(seed, epoch, p // batch_size), (p % batch_size) * plane, plane)
        x[i, 0] += (sigma * z).astype(np.float32).reshape(x.shape[2:])
    return x


def lr_at(step, total, lr, kind, floor):
    """engine/lr_schedule.cpp."""
    if kind == "constant":
        return lr
    t = min(max(step, 0), total) / total
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m mriae_compare.train_torch", description=__doc__.split("\n\n")[0])
    ap.add_argument("initial", help="RUN/initial.safetensors, the run's starting state")
    ap.add_argument("slices", help="the run's slices, from `mriae slices --weights RUN/initial.safetensors`")
    ap.add_argument("--out", required=True, help="output folder: best.safetensors, last.safetensors, history.csv")
    ap.add_argument("--epochs", type=int, help="default: the run's")
    ap.add_argument("--order-seed", type=int, help="shuffle and noise seed (default: the run's --seed)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    a = ap.parse_args(argv)
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        print(f"train_torch: PyTorch is not importable ({e})", file=sys.stderr)
        return 2
    try:
        init, meta = read(a.initial)
        data, smeta = read(a.slices)
    except TraceError as e:
        print(f"train_torch: {e}", file=sys.stderr)
        return 1
    if meta.get("format") != "mriae-checkpoint" or meta.get("train.batches_done") != "0" or \
            meta.get("train.epochs_done") != "0":
        print(f"train_torch: {a.initial}: not the starting state of an mriae run (initial.safetensors)", file=sys.stderr)
        return 1
    if smeta.get("format") != "mriae-slices" or smeta.get("data.paths") != meta.get("data.paths"):
        print(f"train_torch: {a.slices}: not the slices of this run (mriae slices --weights {a.initial})",
              file=sys.stderr)
        return 1
    torch.set_num_threads(a.threads)
    dt = torch.float64 if meta.get("dtype") == "float64" else torch.float32
    npdt = np.float64 if dt == torch.float64 else np.float32
    epochs = a.epochs or int(meta["train.epochs"])
    batch = int(meta["train.batch"])
    lr, kind = float(meta["train.lr"]), meta.get("train.lr_schedule", "constant")
    floor = float(meta.get("train.lr_floor", "0"))
    sigma = float(meta.get("train.noise_sigma", "0"))
    seed = int(meta["data.seed"]) if a.order_seed is None else a.order_seed
    slices = data["slices"].astype(np.float32)  # as mriae holds them; the model's dtype comes at the input
    train_idx, val_idx = [int(i) for i in data["train"]], [int(i) for i in data["validation"]]
    crop, per_slice = int(meta.get("train.crop", "0")), int(meta.get("train.crops_per_slice", "0"))
    if crop and not 0 < crop <= min(slices.shape[2], slices.shape[3]):
        print(f"train_torch: {a.initial}: --crop {crop} does not fit the {slices.shape[2]}x{slices.shape[3]} slices "
              f"of {a.slices}", file=sys.stderr)
        return 1
    # apps/trainer.cpp: an epoch's samples are the training slices, crops_per_slice times over with --crop.
    samples = train_idx * (max(1, per_slice) if crop else 1)
    steps_per_epoch = -(-len(samples) // batch)
    total = epochs * steps_per_epoch
    momentum, bn_eps = 0.99, 1e-3

    P = {}
    for i in range(1, len(CHANNELS) + 1):
        for p in ("weight", "bias"):
            P[f"conv{i}.{p}"] = torch.tensor(init[f"conv{i}.{p}"], dtype=dt, requires_grad=True)
            if i < len(CHANNELS):
                P[f"bn{i}.{p}"] = torch.tensor(init[f"bn{i}.{p}"], dtype=dt, requires_grad=True)
    bn = [{k: torch.tensor(init[f"{pre}bn{i}.{k2}"], dtype=dt) for k, pre, k2 in
           (("hidden_mean", "bn_ema.", "hidden_mean"), ("hidden_var", "bn_ema.", "hidden_var"),
            ("mean", "", "running_mean"), ("var", "", "running_var"))} for i in range(1, len(CHANNELS))]
    bn_steps = [int(init[f"bn{i}.num_batches_tracked"].reshape(-1)[0]) for i in range(1, len(CHANNELS))]
    params = list(P.values())
    opt = torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7)

    def forward(x, training):
        for i in range(1, len(CHANNELS)):
            r = torch.relu(F.conv2d(x, P[f"conv{i}.weight"], P[f"conv{i}.bias"], padding=1))
            s = bn[i - 1]
            if training:
                x = F.batch_norm(r, None, None, P[f"bn{i}.weight"], P[f"bn{i}.bias"], training=True, eps=bn_eps)
                with torch.no_grad():  # Keras 2.2: zero-debiased EMA of the mean and the Bessel-corrected variance
                    bn_steps[i - 1] += 1
                    denom = 1 - momentum ** bn_steps[i - 1]
                    s["hidden_mean"] = momentum * s["hidden_mean"] + (1 - momentum) * r.mean(dim=(0, 2, 3))
                    s["hidden_var"] = momentum * s["hidden_var"] + (1 - momentum) * r.var(dim=(0, 2, 3), unbiased=True)
                    s["mean"], s["var"] = s["hidden_mean"] / denom, s["hidden_var"] / denom
            else:
                x = F.batch_norm(r, s["mean"], s["var"], P[f"bn{i}.weight"], P[f"bn{i}.bias"], training=False,
                                 eps=bn_eps)
            if i in (2, 4):
                x = F.max_pool2d(x, 2)
            if i in (8, 10):
                x = F.interpolate(x, scale_factor=2, mode="nearest")
        return torch.sigmoid(F.conv2d(x, P["conv11.weight"], P["conv11.bias"], padding=1))

    # Validation inputs are the same every epoch (noise of kValidationEpoch), as mriae draws them.
    val_batches = []
    for b0 in range(0, len(val_idx), batch):
        idx = val_idx[b0:b0 + batch]
        x = noisy(slices[idx], sigma, seed, VALIDATION_EPOCH, batch, b0) if sigma > 0 else slices[idx]
        val_batches.append((torch.tensor(x, dtype=dt), torch.tensor(slices[idx], dtype=dt)))

    def checkpoint(path, epochs_done):
        t = {n: v.detach().numpy().astype(npdt) for n, v in P.items()}
        for i, s in enumerate(bn, start=1):
            t[f"bn{i}.running_mean"], t[f"bn{i}.running_var"] = s["mean"].numpy(), s["var"].numpy()
            t[f"bn{i}.num_batches_tracked"] = np.array(bn_steps[i - 1], dtype=np.int64).reshape(
                init[f"bn{i}.num_batches_tracked"].shape)
            t[f"bn_ema.bn{i}.hidden_mean"], t[f"bn_ema.bn{i}.hidden_var"] = s["hidden_mean"].numpy(), s["hidden_var"].numpy()
        m = dict(meta)
        m["train.epochs_done"] = str(epochs_done)
        m["trained_by"] = f"PyTorch {torch.__version__} (python/mriae_compare/train_torch.py), order seed {seed}"
        tmp = path + ".tmp"
        write(tmp, t, m)
        os.replace(tmp, path)

    os.makedirs(a.out, exist_ok=True)
    history = ["epoch,loss,val_loss,seconds"]
    best = math.inf
    crops = f" ({per_slice} {crop}x{crop} crops of each an epoch)" if crop else ""
    print(f"train_torch: {len(train_idx)} training{crops}, {len(val_idx)} validation slices of {slices.shape[2]}x"
          f"{slices.shape[3]}; {epochs} epochs at batch {batch}, lr {lr:g} ({kind}), noise {sigma:g}, "
          f"order seed {seed}, {a.threads} threads, PyTorch {torch.__version__}", flush=True)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        order = epoch_order(samples, seed, epoch)
        loss_sum, n = 0.0, 0
        for b in range(steps_per_epoch):
            idx = order[b * batch:(b + 1) * batch]
            clean = windows(slices, idx, seed, epoch, b * batch, crop)
            target = torch.tensor(clean, dtype=dt)
            x = torch.tensor(noisy(clean, sigma, seed, epoch, batch, b * batch), dtype=dt) if sigma > 0 else target
            for g in opt.param_groups:
                g["lr"] = lr_at(epoch * steps_per_epoch + b, total, lr, kind, floor)
            opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(forward(x, True), target)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            n += len(idx)
            if not math.isfinite(loss.item()):
                print(f"train_torch: the loss became {loss.item()} at epoch {epoch + 1}, batch {b + 1}", file=sys.stderr)
                return 1
        with torch.no_grad():
            vs = sum(F.mse_loss(forward(x, False), y).item() * x.shape[0] for x, y in val_batches)
        val = vs / len(val_idx)
        seconds = time.perf_counter() - t0
        history.append(f"{epoch + 1},{loss_sum / n!r},{val!r},{seconds!r}")
        print(f"epoch {epoch + 1}/{epochs} - {seconds:.1f}s - loss: {loss_sum / n:.4g} - val_loss: {val:.4g}", flush=True)
        checkpoint(os.path.join(a.out, "last.safetensors"), epoch + 1)
        if val < best:
            best = val
            checkpoint(os.path.join(a.out, "best.safetensors"), epoch + 1)
        with open(os.path.join(a.out, "history.csv.tmp"), "w") as f:
            f.write("\n".join(history) + "\n")
        os.replace(os.path.join(a.out, "history.csv.tmp"), os.path.join(a.out, "history.csv"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
