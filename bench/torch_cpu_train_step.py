#!/usr/bin/python3
"""The same autoencoder in PyTorch (Keras layer order, RMSprop as Keras 2.2), timed like
bench/cpu_train_step.cpp. Uses Debian's python3-torch; prints one JSON line."""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn

from torch_model import autoencoder


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=176)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels-last", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = autoencoder()
    x = torch.rand(a.batch, 1, a.size, a.size)
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    loss_fn = nn.MSELoss()
    times = []
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), x)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if s >= a.warmup:
            times.append(dt)
    med = statistics.median(times)
    print(json.dumps({"engine": "pytorch-cpu" + ("-channels-last" if a.channels_last else ""),
                      "torch": torch.__version__, "threads": a.threads, "batch": a.batch, "size": a.size,
                      "steps": a.steps, "median_step_s": round(med, 4), "images_per_s": round(a.batch / med, 3),
                      "last_loss": round(loss.item(), 6)}))


if __name__ == "__main__":
    main()
