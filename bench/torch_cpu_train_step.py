#!/usr/bin/python3
"""The same autoencoder in PyTorch (Keras layer order, RMSprop as Keras 2.2), timed like
bench/train_steps.cpp: training steps, then inference passes (eval mode, no_grad, forward and loss, as
validation runs). Uses Debian's python3-torch; prints one JSON line."""
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
    ap.add_argument("--eval-steps", type=int, default=0, help="timed inference passes after the training steps")
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
    row = {"engine": "pytorch-cpu" + ("-channels-last" if a.channels_last else ""), "precision": "fp32",
           "torch": torch.__version__, "threads": torch.get_num_threads(), "batch": a.batch, "size": a.size, "steps": a.steps,
           "median_step_s": round(med, 5), "images_per_s": round(a.batch / med, 3), "last_loss": round(loss.item(), 6)}
    if a.eval_steps > 0:
        model.eval()
        eval_times = []
        with torch.no_grad():
            # One untimed pass first, as train_steps leaves its first pass out.
            for s in range(1 + a.eval_steps):
                t0 = time.perf_counter()
                loss_fn(model(x), x).item()
                if s > 0:
                    eval_times.append(time.perf_counter() - t0)
        eval_med = statistics.median(eval_times)
        row.update({"eval_steps": a.eval_steps, "eval_median_s": round(eval_med, 5),
                    "eval_images_per_s": round(a.batch / eval_med, 3)})
    print(json.dumps(row))


if __name__ == "__main__":
    main()
