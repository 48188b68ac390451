#!/usr/bin/python3
"""The same autoencoder in PyTorch (Keras layer order, RMSprop as Keras 2.2), timed like
bench/train_steps.cpp: training steps, then inference passes (eval mode, no_grad, forward and loss, as
validation runs). Uses Debian's python3-torch; prints one JSON line."""
import argparse
import json

import torch
import torch.nn as nn

from step_timing import median_seconds
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

    def train_step():
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), x)
        loss.backward()
        opt.step()
        return loss

    med, loss = median_seconds(train_step, a.steps, a.warmup)
    row = {"engine": "pytorch-cpu" + ("-channels-last" if a.channels_last else ""), "precision": "fp32",
           "torch": torch.__version__, "threads": torch.get_num_threads(), "batch": a.batch, "size": a.size, "steps": a.steps,
           "median_step_s": round(med, 5), "images_per_s": round(a.batch / med, 3), "last_loss": round(loss.item(), 6)}
    if a.eval_steps > 0:
        model.eval()
        with torch.no_grad():
            eval_med, _ = median_seconds(lambda: loss_fn(model(x), x).item(), a.eval_steps, 1)
        row.update({"eval_steps": a.eval_steps, "eval_median_s": round(eval_med, 5),
                    "eval_images_per_s": round(a.batch / eval_med, 3)})
    print(json.dumps(row))


if __name__ == "__main__":
    main()
