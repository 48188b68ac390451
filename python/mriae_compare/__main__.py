"""python3 -m mriae_compare TRACE [--framework torch|jax|keras] [--plant bn-eps|running-var|rmsprop-eps-inside]

Exit status: 0 when every tensor is within its limit, 1 when one is not (the first, in execution order, is
named), 2 on a bad trace or option, 3 when the framework cannot be imported."""
import argparse
import importlib
import sys

from .comparison import compare_step, format_table
from .safetensors_io import TraceError
from .trace import Trace

FRAMEWORKS = {"torch": "torch_adapter", "jax": "jax_adapter", "keras": "keras_adapter"}
PLANTS = {
    "bn-eps": "batchnorm eps 1e-5 (PyTorch's default) instead of Keras' 1e-3",
    "running-var": "PyTorch's running-variance rule (a plain EMA of the published variance, no zero-debiasing)",
    "rmsprop-eps-inside": "RMSprop with eps inside the square root",
}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m mriae_compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("trace", help="a file written by `mriae trace`")
    ap.add_argument("--framework", choices=sorted(FRAMEWORKS), default="torch")
    ap.add_argument("--plant", choices=sorted(PLANTS), help="run the framework with this mistake (it must fail)")
    ap.add_argument("--failures-only", action="store_true", help="print only the rows out of their limits")
    a = ap.parse_args(argv)
    adapter = importlib.import_module(f".{FRAMEWORKS[a.framework]}", __package__)
    why = adapter.available()
    if why:
        print(f"mriae_compare: {why}", file=sys.stderr)
        return 3
    try:
        trace = Trace(a.trace)
    except TraceError as e:
        print(f"mriae_compare: error: {e}", file=sys.stderr)
        return 2
    print(f"{a.trace}: {trace.meta.get('dtype')}, {trace.steps} step(s) of batch {trace.meta.get('batch')}, "
          f"from {trace.meta.get('source')}; framework {adapter.version()}"
          + (f"; PLANTED: {PLANTS[a.plant]}" if a.plant else ""))
    print("Each step starts from the trace's state before it (parameters, RMSprop accumulators, moving "
          "statistics).")
    rows = []
    kink_lines = []
    for k in range(1, trace.steps + 1):
        ours = adapter.run_step(trace, trace.state(k), trace.get(f"step{k}/input"), a.plant)
        r, kinks = compare_step(trace, k, ours)
        rows += r
        near = {i: n for i, (n, _) in kinks.items() if n}
        real = {i: n for i, (_, n) in kinks.items() if n}
        if near:
            kink_lines.append(f"step {k}: kink crossings within rounding (ReLU inputs near 0, max-pool near-ties): "
                              + ", ".join(f"{i} {n}" for i, n in near.items()))
        if real:
            kink_lines.append(f"step {k}: crossings beyond rounding (a real difference): "
                              + ", ".join(f"{i} {n}" for i, n in real.items()))
    shown = [r for r in rows if r.failed] if a.failures_only else rows
    print(format_table(shown))
    for line in kink_lines:
        print(line)
    failed = [r for r in rows if r.failed]
    kinked = sum(r.verdict == "kink" for r in rows)
    if failed:
        f = failed[0]
        print(f"FAIL: {len(failed)} of {len(rows)} checks out of their limits; first out of limits: {f.name} "
              f"(relative L2 {f.rel:.3g}, limit {f.limit:.0e}){'; ' + f.note if f.note else ''}")
        return 1
    print(f"PASS: all {len(rows)} checks within their limits" +
          (f" ({kinked} within the kink-crossing limits)" if kinked else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
