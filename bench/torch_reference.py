#!/usr/bin/env python3
"""The same autoencoder and training step in PyTorch on the GPU, the reference for bench/run_gpu.sh. In one
run on one GPU: eager NCHW, eager channels-last and torch.compile (default mode), each in strict FP32 and
with TF32 allowed; cudnn.benchmark on (per-shape algorithm search, as mriae's default). For each: the median
training step after warm-up, then the median inference pass (eval mode, no_grad, forward and loss, as
validation runs in training).

The step mirrors mriae's: gradients zeroed in place (set_to_none=False) and accumulated, MSE against the
input, Keras 2.2's RMSprop. torch.compile compiles the model; the optimiser step stays eager. A variant that
fails (torch.compile without a working Triton, say) gives a row with an "error" field instead of numbers.

usage: torch_reference.py [--batch N] [--size S] [--steps N] [--warmup N] [--compile-warmup N]
                          [--eval-steps N] [--precision fp32|tf32|both] [--variants LIST] [--json]

--variants takes a comma-separated subset of eager, eager-channels-last and compile (default: all three), so
that the eager race and torch.compile, whose compilation takes minutes, can run in separate commands.
--json prints one line per variant, with the fields of train_steps --json (engine, precision, batch, size,
median_step_s, images_per_s, eval_images_per_s, ...). Exit status 77 when PyTorch or a CUDA GPU for it is
missing; 1 when an eager variant failed.
"""
import argparse
import json
import statistics
import sys
import time

VARIANTS = ("eager", "eager-channels-last", "compile")


def log(msg):
    print(f"torch_reference: {msg}", file=sys.stderr, flush=True)


def set_precision(torch, tf32):
    """Allows or forbids TF32 in convolutions and matrix products; returns what was set."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        # PyTorch >= 2.9 replaces the allow_tf32 flags and objects to the two APIs being mixed.
        value = "tf32" if tf32 else "ieee"
        torch.backends.cudnn.conv.fp32_precision = value
        torch.backends.cuda.matmul.fp32_precision = value
        return f"cudnn.conv.fp32_precision={value}, cuda.matmul.fp32_precision={value}"
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    return f"cudnn.allow_tf32={tf32}, cuda.matmul.allow_tf32={tf32}"


def median_s(fn, warmup, steps):
    """Median seconds of fn() over `steps` calls after `warmup`; fn must wait for its GPU work."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_variant(torch, autoencoder, variant, a):
    """Trains then evaluates one fresh model; returns the row's measured fields."""
    from torch import nn

    dev = torch.device("cuda")
    torch.manual_seed(13)
    model = autoencoder().to(dev)
    x = torch.rand(a.batch, 1, a.size, a.size, device=dev)
    if variant == "eager-channels-last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    # Keras 2.2 RMSprop: eps added after the square root, as torch does.
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    forward = model
    warmup = a.warmup
    if variant == "compile":
        if not hasattr(torch, "compile"):
            raise RuntimeError(f"torch.compile needs PyTorch 2 or later, this is {torch.__version__}")
        import torch._dynamo

        torch._dynamo.reset()  # no graph compiled under the other precision is reused
        forward = torch.compile(model)
        warmup = a.compile_warmup
    last = {}

    def train_step():
        opt.zero_grad(set_to_none=False)
        loss = nn.functional.mse_loss(forward(x), x)
        loss.backward()
        opt.step()
        last["loss"] = loss.item()  # waits for the step's GPU work

    def eval_step():
        with torch.no_grad():
            nn.functional.mse_loss(forward(x), x).item()

    model.train()
    step_s = median_s(train_step, warmup, a.steps)
    model.eval()  # a new graph for torch.compile: it recompiles during the warm-up
    eval_s = median_s(eval_step, warmup, a.eval_steps)
    return {"steps": a.steps, "median_step_s": round(step_s, 5), "images_per_s": round(a.batch / step_s, 3),
            "eval_steps": a.eval_steps, "eval_median_s": round(eval_s, 5),
            "eval_images_per_s": round(a.batch / eval_s, 3), "last_loss": round(last["loss"], 6)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--size", type=int, default=176)
    p.add_argument("--steps", type=int, default=20, help="timed training steps per variant")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (eager)")
    p.add_argument("--compile-warmup", type=int, default=15, help="untimed steps first (torch.compile)")
    p.add_argument("--eval-steps", type=int, default=20, help="timed inference passes per variant")
    p.add_argument("--precision", choices=("fp32", "tf32", "both"), default="both")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS))
    p.add_argument("--json", action="store_true", help="one JSON line per variant, nothing else on stdout")
    a = p.parse_args()
    variants = [v for v in a.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        p.error(f"--variants: unknown {unknown or 'empty list'}; choose from {', '.join(VARIANTS)}")
    if min(a.batch, a.size, a.steps, a.eval_steps) <= 0 or min(a.warmup, a.compile_warmup) < 0:
        p.error("sizes and step counts must be positive")
    try:
        import torch
    except ImportError as e:
        log(f"PyTorch is not importable ({e}): skipped")
        return 77
    if not torch.cuda.is_available():
        log(f"PyTorch {torch.__version__} sees no CUDA GPU: skipped")
        return 77
    from torch_model import autoencoder

    torch.backends.cudnn.benchmark = True
    device = torch.cuda.get_device_name()
    precisions = ("fp32", "tf32") if a.precision == "both" else (a.precision,)
    rows, eager_failed = [], False
    for precision in precisions:
        flags = set_precision(torch, precision == "tf32")
        for variant in variants:
            log(f"{variant}, {precision} ({flags})")
            row = {"engine": f"pytorch-cuda-{variant}", "precision": precision, "batch": a.batch, "size": a.size,
                   "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                   "device": device}
            try:
                row.update(run_variant(torch, autoencoder, variant, a))
            except Exception as e:  # noqa: BLE001 -- any failure becomes the row's note
                first_line = (str(e).strip().splitlines() or [""])[0][:200]
                row["error"] = f"{type(e).__name__}: {first_line}".rstrip(": ")
                eager_failed |= variant != "compile"
                log(f"{variant}, {precision} failed: {row['error']}")
            finally:
                torch.cuda.empty_cache()
            rows.append(row)
            if a.json:
                print(json.dumps(row), flush=True)
    if not a.json:
        print(f"PyTorch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
              f"{device}; batch {a.batch}, {a.size}x{a.size}\n")
        print("| variant | precision | step (ms) | train images/s | inference images/s |")
        print("|---|---|---|---|---|")
        for r in rows:
            if "error" in r:
                print(f"| {r['engine']} | {r['precision']} | failed: {r['error']} | | |")
            else:
                print(f"| {r['engine']} | {r['precision']} | {1000 * r['median_step_s']:.2f} | "
                      f"{r['images_per_s']:.1f} | {r['eval_images_per_s']:.1f} |")
    return 1 if eager_failed else 0


if __name__ == "__main__":
    sys.exit(main())
