#!/usr/bin/env python3
"""The same autoencoder and training step in PyTorch, timed on the GPU: a reference point for
train_steps in bench/gpu_suite.sh's report. Strict FP32 by default, as mriae's default.

usage: torch_reference.py [--steps N] [--batch N] [--size S] [--tf32]
"""
import argparse
import sys
import time

import torch
from torch import nn

from torch_model import autoencoder


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=176)
    p.add_argument("--tf32", action="store_true")
    a = p.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU for PyTorch: skipped")
        return 77
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = True  # per-shape algorithm search, as mriae's default
    torch.manual_seed(13)
    dev = torch.device("cuda")
    model = autoencoder().to(dev)
    # Keras 2.2 RMSprop: eps added after the square root, as torch does.
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    x = torch.rand(a.batch, 1, a.size, a.size, device=dev)
    times = []
    for step in range(1, a.steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = nn.functional.mse_loss(model(x), x)
        loss.backward()
        opt.step()
        value = loss.item()  # waits for the step's GPU work
        times.append((time.perf_counter() - t0) * 1000)
        print(f"step {step} loss {value:.7g} time {times[-1]:.2f} ms")
    if len(times) > 1:
        mean = sum(times[1:]) / (len(times) - 1)
        print(f"mean step time (steps 2-{a.steps}): {mean:.2f} ms, {1000 * a.batch / mean:.1f} images/s")
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
          f"{torch.cuda.get_device_name()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
