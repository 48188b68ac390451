#!/usr/bin/python3
"""The table of bench/run_cpu.sh, from the files its rounds left in WORK: for each round r and engine e,
WORK/r<r>-<e>.out (the engine's JSON line), .err and .rc; WORK/r<r>-peak.out (bench/cpu_peak --json).
Prints markdown (the header, the table, notes) and writes it to --md; writes every row, one JSON line each,
to --jsonl. Standard library only.

FLOP count, convolutions only (batchnorm, pooling, the loss and the optimiser are left out; they are a few
percent of the arithmetic): a 3x3 convolution's forward on an HxW image is 2*H*W*Cin*Cout*9 FLOP, its input
gradient and its weight gradient are one forward each, and the first layer's input gradient is not computed.
At 176x176 that is 3.18 GFLOP forward and 9.51 GFLOP a training image."""
import argparse
import json
import os
import statistics

# (side as a fraction of SIZE, Cin, Cout) for the eleven convolutions, in model order.
CONVS = [(1, 1, 32), (1, 32, 32), (2, 32, 64), (2, 64, 64), (4, 64, 128), (4, 128, 128), (4, 128, 64), (4, 64, 64),
         (2, 64, 32), (2, 32, 32), (1, 32, 1)]


def conv_flop(size, div, cin, cout):
    side = size // div
    return 2 * side * side * cin * cout * 9


def forward_flop(size):
    return sum(conv_flop(size, *c) for c in CONVS)


def training_flop(size):
    return 3 * forward_flop(size) - conv_flop(size, *CONVS[0])


# Engines by key: the row's name, given the engine's first good JSON row (its versions), or {} if none.
def label(key, row):
    def ver(k):
        v = str(row.get(k, ""))
        return " " + (v.split("-")[0] if k == "openvino" else v) if v else ""
    return {
        "mriae": "mriae CPU",
        "pytorch": f"PyTorch{ver('torch')} NCHW (Debian)",
        "pytorch-cl": f"PyTorch{ver('torch')} channels-last (Debian)",
        "keras-tf": f"Keras{ver('keras')} / TensorFlow{ver('tensorflow')}",
        "keras-tf-xla": f"Keras{ver('keras')} / TensorFlow{ver('tensorflow')} + XLA (jit_compile)",
        "keras-jax": f"Keras{ver('keras')} / JAX{ver('jax')}",
        "onnxruntime": f"ONNX Runtime{ver('onnxruntime')} (inference only)",
        "openvino": f"OpenVINO{ver('openvino')} (inference only)",
    }.get(key, key)


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return None


def why_failed(rc, err, timeout):
    lines = [ln.strip() for ln in (err or "").splitlines() if ln.strip()]
    # Tracebacks end with the exception; other tools print their reason last too.
    reason = lines[-1] if lines else "no output"
    if rc in (124, 137) and not lines:
        reason = f"timed out after {timeout} s" if rc == 124 else "killed (out of memory?)"
    elif rc == 124:
        reason = f"timed out after {timeout} s; last: " + reason
    elif rc == 137:
        reason = "killed (out of memory?); last: " + reason
    return reason[:240]


def load(work, rounds, engines, timeout):
    rows = []
    for r in range(1, rounds + 1):
        out = read(os.path.join(work, f"r{r}-peak.out"))
        if out and out.strip():
            rows.append({"round": r, "engine": "cpu-peak", **json.loads(out.strip().splitlines()[-1])})
        for e in engines:
            base = os.path.join(work, f"r{r}-{e}")
            rc_text = read(base + ".rc")
            if rc_text is None:
                continue  # this round did not reach the engine (the run was stopped)
            rc = int(rc_text.strip() or 1)
            out, err = read(base + ".out") or "", read(base + ".err") or ""
            row = None
            if rc == 0:
                for line in reversed(out.strip().splitlines()):
                    try:
                        row = json.loads(line)
                        break
                    except json.JSONDecodeError:
                        pass
            if row is None:
                rows.append({"round": r, "key": e, "engine": e, "error": why_failed(rc, err, timeout), "rc": rc})
            else:
                rows.append({"round": r, "key": e, **row})
    return rows


def spread(values, fmt):
    values = sorted(values)
    if not values:
        return ""
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(values[0])}-{fmt.format(values[-1])})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--engines", required=True, help="space-separated keys, in the order they ran")
    ap.add_argument("--meta", required=True, help="JSON: cpu, nproc, threads, batch, size, steps, ...")
    ap.add_argument("--md")
    ap.add_argument("--jsonl")
    a = ap.parse_args()
    meta = json.loads(a.meta)
    engines = a.engines.split()
    rows = load(a.work, a.rounds, engines, meta.get("engine_timeout", "?"))
    size, batch, threads = meta["size"], meta["batch"], meta["threads"]
    train_gflop, fwd_gflop = training_flop(size) / 1e9, forward_flop(size) / 1e9

    peaks = [r for r in rows if r.get("engine") == "cpu-peak"]
    peak = max((p["gflops"] for p in peaks), default=None)
    out = [f"mriae commit {meta.get('commit', '?')}, {meta.get('date', '?')}"]
    out.append(f"CPU: {meta['cpu']} ({meta['nproc']} CPUs online); load average {meta.get('load_before', '?')} "
               f"before the run, {meta.get('load_after', '?')} after")
    if peaks:
        out.append(f"float32 FMA peak (bench/cpu_peak, {peaks[0]['isa']}), measured each round: "
                   f"{spread([p['gflops'] for p in peaks], '{:.1f}')} GFLOP/s on {peaks[0]['threads']} "
                   f"thread{'s' if peaks[0]['threads'] > 1 else ''}"
                   + (f", {spread([p['gflops_1_thread'] for p in peaks], '{:.1f}')} on 1"
                      if peaks[0]['threads'] > 1 else "")
                   + f"; shares below are of the best, {peak:.1f}")
    else:
        out.append("float32 FMA peak: not measured (bench/cpu_peak missing or failed); no shares of peak")
    out.append("")
    out.append(f"Batch {batch}, {size}x{size}, float32, {threads} threads per engine; {a.rounds} interleaved rounds "
               f"(every engine once per round, in the table's order); each round's figure is the median of "
               f"{meta['steps']} training steps after {meta['warmup']} warm-up (mriae: 1) and {meta['eval_steps']} "
               f"inference passes after 1 (ONNX Runtime, OpenVINO: {meta['warmup']}). Cells: median over rounds "
               f"(min-max). 'vs mriae': the engine's images/s over mriae's in the same round, median over rounds "
               f"(above 1: faster than mriae). A training image is {train_gflop:.2f} GFLOP, an inference image "
               f"{fwd_gflop:.2f} GFLOP (convolutions only).")
    out.append("")
    out.append("| engine | threads | training img/s | inference img/s | training GFLOP/s | training % of peak | "
               "inference GFLOP/s | inference % of peak | training vs mriae | inference vs mriae | "
               "tutorial epoch (s) |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    ours = {r["round"]: r for r in rows if r.get("key") == "mriae" and "error" not in r}
    notes = []
    for e in engines:
        mine = [r for r in rows if r.get("key") == e]
        good = [r for r in mine if "error" not in r]
        bad = [r for r in mine if "error" in r]
        name = label(e, good[0] if good else {})
        if not good:
            reason = bad[0]["error"] if bad else "did not run"
            out.append(f"| {name} | {threads} | failed: {reason} |  |  |  |  |  |  |  |  |")
            continue
        tr = [r["images_per_s"] for r in good if "images_per_s" in r]
        ev = [r["eval_images_per_s"] for r in good if "eval_images_per_s" in r]
        cells = [name, str(sorted({r["threads"] for r in good})[0] if len({r["threads"] for r in good}) == 1
                           else "/".join(str(t) for t in sorted({r["threads"] for r in good})))]
        cells.append(spread(tr, "{:.2f}") if tr else "-")
        cells.append(spread(ev, "{:.2f}") if ev else "-")
        if tr:
            g = statistics.median(tr) * train_gflop
            cells += [f"{g:.1f}", f"{100 * g / peak:.0f}%" if peak else "-"]
        else:
            cells += ["-", "-"]
        if ev:
            g = statistics.median(ev) * fwd_gflop
            cells += [f"{g:.1f}", f"{100 * g / peak:.0f}%" if peak else "-"]
        else:
            cells += ["-", "-"]
        for key in ("images_per_s", "eval_images_per_s"):
            ratios = [r[key] / ours[r["round"]][key] for r in good
                      if key in r and r["round"] in ours and key in ours[r["round"]]]
            cells.append(f"{statistics.median(ratios):.2f}x" if ratios else "-")
        if tr and ev:
            # 1,224 training slices at the training rate, 306 validation slices at the inference rate.
            cells.append(f"{1224 / statistics.median(tr) + 306 / statistics.median(ev):.0f}")
        else:
            cells.append("-")
        if bad:
            cells[0] += f" (failed in {len(bad)} of {len(mine)} rounds)"
            notes.append(f"- {name}: failed in round(s) {', '.join(str(r['round']) for r in bad)}: {bad[0]['error']}")
        out.append("| " + " | ".join(cells) + " |")
        diffs = [r["max_abs_diff_vs_torch"] for r in good if r.get("max_abs_diff_vs_torch") is not None]
        if diffs:
            notes.append(f"- {name}: output for PyTorch's two reference images within {max(diffs):.1e} of PyTorch's "
                         f"(eval mode)")
        settings = good[0].get("thread_settings")
        if settings:
            notes.append(f"- {name}: thread settings {json.dumps(settings)}")
    out.append("")
    out.append("Tutorial epoch: 1,224 training slices / training img/s + 306 validation slices / inference img/s.")
    if notes:
        out.append("")
        out += notes
    if meta.get("venv"):
        out.append(f"\nThe Python peers' venv: {meta['venv']} (pinned by bench/cpu-peers-constraints.txt). "
                   f"OMP_NUM_THREADS={threads} for every engine.")
    text = "\n".join(out)
    print(text)
    if a.md:
        with open(a.md, "w") as f:
            f.write(text + "\n")
    if a.jsonl:
        with open(a.jsonl, "w") as f:
            f.write(json.dumps({"meta": meta}) + "\n")
            for r in rows:
                f.write(json.dumps({**{k: meta[k] for k in ("threads", "batch", "size") if k in meta}, **r}) + "\n")


if __name__ == "__main__":
    main()
