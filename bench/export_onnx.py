#!/usr/bin/python3
"""Exports bench/torch_model.py's autoencoder to ONNX for the inference-only peers of bench/run_cpu.sh
(ONNX Runtime, OpenVINO): eval mode (batchnorm with its moving statistics), float32, the batch dimension
left dynamic so that one file serves every BATCH. Beside OUT.onnx it writes OUT.ref.npz, two random images
and PyTorch's output for them, which the inference script compares its runtime's output with. Runs with
Debian's python3-torch (its own exporter; the onnx package is not needed).
Usage: export_onnx.py OUT.onnx [--size S] [--opset N]"""
import argparse
import sys
import warnings

import numpy as np
import torch

from torch_model import autoencoder


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=176)
    ap.add_argument("--opset", type=int, default=13)
    a = ap.parse_args()
    torch.manual_seed(1)
    model = autoencoder().eval()
    x = torch.rand(2, 1, a.size, a.size)
    with torch.no_grad(), warnings.catch_warnings():
        # 1.13 warns that it cannot infer the shape of Upsample's scale constant; the Resize it writes is right.
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(model, x, a.out, opset_version=a.opset, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, do_constant_folding=True)
        y = model(x)
    np.savez(a.out.removesuffix(".onnx") + ".ref.npz", x=x.numpy(), y=y.numpy(), torch=torch.__version__)
    print(f"export_onnx: {a.out} (torch {torch.__version__}, opset {a.opset}, {a.size}x{a.size})", file=sys.stderr)


if __name__ == "__main__":
    main()
