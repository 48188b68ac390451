"""Inference passes of the autoencoder exported to ONNX (bench/export_onnx.py), in ONNX Runtime or OpenVINO
on the CPU, timed like bench/train_steps.cpp's: each pass is the forward on one batch of random images in
[0, 1) and the MSE loss against the input (computed with numpy after the runtime returns, as the others read
their loss back). Runs in the benchmark venv (bench/run_cpu.sh makes it); imports no project code but bench/step_timing.py (standard library only). First
checks the runtime's output for PyTorch's two reference images (OUT.ref.npz beside the model) and reports the
largest difference. Prints one JSON line, in bench/torch_cpu_train_step.py's format, inference fields only."""
import argparse
import json
import os

import numpy as np

from step_timing import median_seconds


def ort_session(path, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    settings = {"intra_op_num_threads": threads, "inter_op_num_threads": 1, "graph_optimization": "all"}
    return (lambda x: sess.run(None, {"x": x})[0]), {"onnxruntime": ort.__version__}, settings


def openvino_model(path, threads):
    import openvino as ov
    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": "f32"}
    compiled = core.compile_model(core.read_model(path), "CPU", config)
    request = compiled.create_infer_request()
    got = {}
    for k in config:  # what the compiled model reports, which is what it runs with
        v = compiled.get_property(k)
        got[k] = v.to_string() if hasattr(v, "to_string") else str(v)
    return (lambda x: request.infer({0: x})[0]), {"openvino": ov.get_version()}, got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", choices=["onnxruntime", "openvino"], required=True)
    ap.add_argument("--model", required=True, help="the .onnx file from bench/export_onnx.py")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=176)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--eval-steps", type=int, default=5)
    a = ap.parse_args()
    run, versions, settings = (ort_session if a.runtime == "onnxruntime" else openvino_model)(a.model, a.threads)

    ref = np.load(a.model.removesuffix(".onnx") + ".ref.npz")
    diff = None
    if ref["x"].shape[-1] == a.size:
        diff = float(np.max(np.abs(run(ref["x"]) - ref["y"])))

    x = np.random.default_rng(1).random((a.batch, 1, a.size, a.size), dtype=np.float32)
    med, loss = median_seconds(lambda: float(np.mean(np.square(run(x) - x))), a.eval_steps, a.warmup)
    row = {"engine": a.runtime + "-cpu", "precision": "fp32", **versions, "threads": a.threads,
           "thread_settings": settings, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "batch": a.batch,
           "size": a.size, "eval_steps": a.eval_steps, "eval_median_s": round(med, 5),
           "eval_images_per_s": round(a.batch / med, 3), "last_loss": round(loss, 6),
           "max_abs_diff_vs_torch": diff}
    print(json.dumps(row))


if __name__ == "__main__":
    main()
