"""Compares one framework's steps with an mriae trace, tensor by tensor, in execution order.

Limits are relative L2 errors, ||framework - trace|| / ||trace||, by class (tests/parity/README.md measures and
explains the float32 ones). In float64 every tensor is held to 1e-9: both sides compute the same numbers to
~1e-14. Behind a ReLU, a float32 gradient can be off by far more than rounding without any mistake: a ReLU
input within rounding of zero that lands on the other side of it (a "kink crossing") changes that element's
gradient by its whole dy, and the batchnorm spreads the jump over its channel and every layer upstream. Such a
gradient gets the loose kink limit only when the step really has a crossing at or after its layer: an input
whose sign differs between the framework and the trace and that lies within rounding of zero (|z| at most
10 x the activation limit x the layer's RMS). A sign change farther from zero is a real difference, and a
large gradient error without a crossing is one too.
"""
import math

import numpy as np

from .trace import LAYERS, execution_order

# Limits by class: activations, loss, moving statistics; gradients (of layers no ReLU or max-pool lies behind:
# conv11, up2, bn10), those behind one, and those behind one where the step has a kink crossing; the same for the
# RMSprop accumulators and for the parameters' updates. A parameter after the step is compared by its update
# (after - before; both sides start from the trace's values): relative to the parameter it would depend on the
# starting values' size, and zero-initialised biases would make it the update anyway. RMSprop's update
# g / (sqrt(a) + eps) passes on at most the gradient's relative error, so the update limits are the
# gradients'.
LIMITS = {
    np.float64: dict(act=1e-9, loss=1e-9, stat=1e-9, grad=1e-9, grad_relu=1e-9, grad_kink=5e-2, acc=1e-9,
                     acc_relu=1e-9, acc_kink=1e-1, param=1e-8, param_relu=1e-8, param_kink=5e-2),
    np.float32: dict(act=2e-5, loss=1e-6, stat=1e-5, grad=3e-5, grad_relu=2e-4, grad_kink=5e-2, acc=6e-5,
                     acc_relu=4e-4, acc_kink=1e-1, param=1e-4, param_relu=1e-3, param_kink=5e-2),
}
# An element whose gradient is off by more than half its trace value is "uncertain": RMSprop's first step
# follows the gradient's sign, so such an element may move a full step the other way. Those are left out of
# the parameter limits but must stay within two full steps, and may be at most 2% of all parameters.
# So is a bias whose gradient, a sum over the batch and the plane of its layer's output gradient, is within
# rounding of zero (below ROUNDING_SUMS x the dtype's epsilon x the sum of the terms' magnitudes): a conv bias
# ahead of ReLU+batchnorm has such gradients by construction (exactly 0 where the ReLU never clips, as the
# batchnorm cancels a shift), and RMSprop, whose update is lr*g/eps for |g| << eps, turns that noise into moves.
UNCERTAIN_REL = 0.5
ROUNDING_SUMS = 64
MAX_UNCERTAIN = 2e-2


def position(layer):
    return LAYERS.index(layer)


# The non-smooth points of the model, and how far upstream a crossing at each reaches: a ReLU input that
# changes sides changes the gradient of its convolution's output and of everything before it; a 2x2 window
# whose two largest values are within rounding of each other may send its gradient to the other one, which
# changes the gradient of the batchnorm output it pools and of everything before it.
KINK_SITES = {**{f"relu{i}": position(f"conv{i}") for i in range(1, 11)},
              "pool1": position("bn2"), "pool2": position("bn4")}
BEHIND_A_KINK = max(KINK_SITES.values())


def _windows(a):
    n, c, h, w = a.shape
    return a.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)


def errors(ours, ref, keep=None):
    d = ours.astype(np.float64) - ref.astype(np.float64)
    r = ref.astype(np.float64)
    if keep is not None:
        d, r = np.where(keep, d, 0.0), np.where(keep, r, 0.0)
    nr = float(np.sqrt(np.sum(r * r)))
    nd = float(np.sqrt(np.sum(d * d)))
    rel = nd / nr if nr > 0 else nd
    i = int(np.argmax(np.abs(d))) if d.size else 0
    return rel, float(np.abs(d).max()) if d.size else 0.0, np.unravel_index(i, d.shape) if d.ndim else ()


class Row:
    def __init__(self, name, rel, max_abs, worst, limit, verdict, note=""):
        self.name, self.rel, self.max_abs, self.worst, self.limit, self.verdict, self.note = (
            name, rel, max_abs, worst, limit, verdict, note)

    @property
    def failed(self):
        return self.verdict == "FAIL"


def kink_crossings(trace, k, ours, lim):
    """Per kink site: (crossings within rounding, crossings beyond it). A ReLU crossing: conv i's output has
    another sign in the framework than in the trace. A max-pool crossing: a window's first maximum is another
    element. Within rounding: the trace's value is within 10 x the activation limit x the layer's RMS of zero
    (of the window's runner-up, for a pool)."""
    out = {}
    for i in range(1, 11):
        zt = trace.get(f"step{k}/act/conv{i}").astype(np.float64)
        zf = ours[f"act/conv{i}"].astype(np.float64)
        flip = (zt > 0) != (zf > 0)
        near = np.abs(zt) <= 10 * lim["act"] * (math.sqrt(float(np.mean(zt * zt))) or 1.0)
        out[f"relu{i}"] = (int(np.sum(flip & near)), int(np.sum(flip & ~near)))
    for p, bn in (("pool1", "bn2"), ("pool2", "bn4")):
        at = trace.get(f"step{k}/act/{bn}").astype(np.float64)
        wt, wf = _windows(at), _windows(ours[f"act/{bn}"].astype(np.float64))
        moved = wt.argmax(-1) != wf.argmax(-1)
        top2 = np.sort(wt, -1)[..., 2:]
        near = top2[..., 1] - top2[..., 0] <= 10 * lim["act"] * (math.sqrt(float(np.mean(at * at))) or 1.0)
        out[p] = (int(np.sum(moved & near)), int(np.sum(moved & ~near)))
    return out


def compare_step(trace, k, ours):
    lim = LIMITS[trace.dtype]
    rows = []
    kinks = kink_crossings(trace, k, ours, lim)
    reach = max([KINK_SITES[site] for site, (n, _) in kinks.items() if n > 0], default=-1)
    sites = ", ".join(site for site, (n, _) in kinks.items() if n > 0)
    lr = trace.hyper["rmsprop_lr"]
    uncertain = total = 0
    before = trace.state(k)["params"]
    for short in execution_order():
        name = f"step{k}/{short}"
        ref = trace.get(name)
        if short not in ours:
            rows.append(Row(name, math.nan, math.nan, (), 0, "FAIL", "the framework did not compute it"))
            continue
        mine = np.asarray(ours[short])
        if mine.shape != ref.shape:
            rows.append(Row(name, math.nan, math.nan, (), 0, "FAIL", f"shape {mine.shape}, trace {ref.shape}"))
            continue
        kind, _, what = short.partition("/")
        layer = what.split(".")[0] if kind != "loss" else ""
        keep, note = None, ""
        behind = bool(layer) and layer in LAYERS and position(layer) <= BEHIND_A_KINK
        explained = behind and position(layer) <= reach
        if kind == "act":
            limit = lim["act"]
        elif kind == "loss":
            limit = lim["loss"]
        elif kind == "after" and what.endswith(("running_mean", "running_var")):
            limit = lim["stat"]
        elif kind in ("act_grad", "grad"):
            limit = lim["grad_kink"] if explained else lim["grad_relu"] if behind else lim["grad"]
        elif what.startswith("optimizer.accumulator."):
            layer = what[len("optimizer.accumulator."):].split(".")[0]
            behind = position(layer) <= BEHIND_A_KINK
            explained = behind and position(layer) <= reach
            limit = lim["acc_kink"] if explained else lim["acc_relu"] if behind else lim["acc"]
        else:  # a parameter after the update: compared by its update
            mine, ref = mine.astype(np.float64) - before[what], ref.astype(np.float64) - before[what]
            note = "update"
            limit = lim["param_kink"] if explained else lim["param_relu"] if behind else lim["param"]
            g_ref = trace.get(f"step{k}/grad/{what}").astype(np.float64)
            g = ours[f"grad/{what}"].astype(np.float64)
            keep = np.abs(g - g_ref) <= UNCERTAIN_REL * np.abs(g_ref)
            if what.endswith(".bias") and layer != "conv11":
                terms = np.abs(trace.get(f"step{k}/act_grad/{layer}").astype(np.float64)).sum(axis=(0, 2, 3))
                keep &= np.abs(g_ref) > ROUNDING_SUMS * np.finfo(trace.dtype).eps * terms
            n_unc = int(keep.size - np.sum(keep))
            uncertain += n_unc
            total += keep.size
            if n_unc:
                far = float(np.max(np.abs(mine.astype(np.float64) - ref)[~keep]))
                note = f"update; {n_unc} uncertain element(s) left out"
                if far > 2 * lr * math.sqrt(10):
                    rows.append(Row(name, *errors(mine, ref), 2 * lr * math.sqrt(10), "FAIL",
                                    f"an uncertain element moved {far:.3g}, more than two full RMSprop steps"))
                    continue
        rel, mx, worst = errors(mine, ref, keep)
        verdict = "ok" if rel <= limit else "FAIL"
        if verdict == "ok" and explained and kind != "act" and rel > (lim["grad_relu"] if kind in ("act_grad", "grad")
                                                                         else lim["acc_relu"] if "accumulator" in what
                                                                         else lim["param_relu"]):
            verdict, note = "kink", f"explained by a kink crossing within rounding ({sites})"
        elif verdict == "FAIL" and behind and not explained and kind in ("act_grad", "grad"):
            note = "no ReLU input or max-pool tie within rounding changed sides: a real difference"
        rows.append(Row(name, rel, mx, worst, limit, verdict, note))
    if total:
        frac = uncertain / total
        rows.append(Row(f"step{k}/uncertain gradient elements", frac, math.nan, (), MAX_UNCERTAIN,
                        "ok" if frac <= MAX_UNCERTAIN else "FAIL", f"{uncertain} of {total}"))
    return rows, kinks


def format_table(rows):
    lines = [f"{'tensor':<44} {'rel L2':>9} {'max abs':>9} {'worst element':<18} {'limit':>7}  verdict"]
    for r in rows:
        w = "(" + ",".join(str(int(i)) for i in r.worst) + ")" if r.worst != () else ""
        lines.append(f"{r.name:<44} {r.rel:9.2e} {r.max_abs:9.2e} {w:<18} {r.limit:7.0e}  {r.verdict}"
                     + (f"  {r.note}" if r.note else ""))
    return "\n".join(lines)
