"""The model in PyTorch: torch.nn.functional ops, autograd, torch.optim.RMSprop, in the trace's dtype on the
CPU. The Keras 2.2 moving statistics are written out (PyTorch's BatchNorm2d keeps another rule)."""
import numpy as np

from .trace import CHANNELS, LAYERS, PARAMS

NAME = "torch"


def available():
    try:
        import torch  # noqa: F401
        return None
    except ImportError as e:
        return f"PyTorch is not importable ({e})"


def version():
    import torch
    return f"PyTorch {torch.__version__}"


def run_step(trace, state, x, plant=None):
    import torch
    import torch.nn.functional as F

    torch.set_grad_enabled(True)
    dt = {np.float32: torch.float32, np.float64: torch.float64}[trace.dtype]
    h = trace.hyper
    bn_eps = 1e-5 if plant == "bn-eps" else h["bn_eps"]
    m = h["bn_momentum"]
    P = {n: torch.tensor(v, dtype=dt).requires_grad_(True) for n, v in state["params"].items()}
    out, acts = {}, []

    def keep(name, t):
        t.retain_grad()
        acts.append((name, t))
        return t

    y = torch.tensor(x, dtype=dt)
    target = y
    for i in range(1, len(CHANNELS)):
        z = keep(f"conv{i}", F.conv2d(y, P[f"conv{i}.weight"], P[f"conv{i}.bias"], padding=1))
        r = torch.relu(z)
        y = keep(f"bn{i}", F.batch_norm(r, None, None, P[f"bn{i}.weight"], P[f"bn{i}.bias"], training=True,
                                        eps=bn_eps))
        with torch.no_grad():
            s = state["bn"][i - 1]
            n = r.numel() // r.shape[1]
            mean = r.mean(dim=(0, 2, 3))
            var = r.var(dim=(0, 2, 3), unbiased=True)  # Bessel-corrected, as Keras 2.2 feeds its EMA
            t = s["steps"] + 1
            hm = m * torch.tensor(s["hidden_mean"], dtype=dt) + (1 - m) * mean
            denom = 1 - torch.tensor(m, dtype=dt) ** t
            out[f"after/bn{i}.running_mean"] = (hm / denom).numpy()
            if plant == "running-var":  # PyTorch's rule: a plain EMA of the published variance
                out[f"after/bn{i}.running_var"] = (m * torch.tensor(s["var"], dtype=dt) + (1 - m) * var).numpy()
            else:
                hv = m * torch.tensor(s["hidden_var"], dtype=dt) + (1 - m) * var
                out[f"after/bn{i}.running_var"] = (hv / denom).numpy()
            del n
        if i in (2, 4):
            y = keep(f"pool{i // 2}", F.max_pool2d(y, 2))
        if i in (8, 10):
            y = keep(f"up{i // 2 - 3}", F.interpolate(y, scale_factor=2, mode="nearest"))
    z = keep("conv11", F.conv2d(y, P["conv11.weight"], P["conv11.bias"], padding=1))
    y = keep("sigmoid", torch.sigmoid(z))
    loss = F.mse_loss(y, target)
    loss.backward()
    for name, t in acts:
        out[f"act/{name}"] = t.detach().numpy()
        out[f"act_grad/{name}"] = t.grad.numpy()
    out["loss"] = np.array([loss.item()], dtype=trace.dtype)
    for n in PARAMS:
        out[f"grad/{n}"] = P[n].grad.numpy().copy()

    params = [P[n] for n in PARAMS]
    if plant == "rmsprop-eps-inside":
        with torch.no_grad():
            for n, p in zip(PARAMS, params):
                a = h["rmsprop_rho"] * torch.tensor(state["acc"][n], dtype=dt) + (1 - h["rmsprop_rho"]) * p.grad ** 2
                p -= h["rmsprop_lr"] * p.grad / torch.sqrt(a + h["rmsprop_eps"])
                out[f"after/optimizer.accumulator.{n}"] = a.numpy()
    else:
        opt = torch.optim.RMSprop(params, lr=h["rmsprop_lr"], alpha=h["rmsprop_rho"], eps=h["rmsprop_eps"])
        for n, p in zip(PARAMS, params):
            opt.state[p] = {"step": torch.tensor(float(state["opt_steps"])),
                            "square_avg": torch.tensor(state["acc"][n], dtype=dt)}
        opt.step()
        for n, p in zip(PARAMS, params):
            out[f"after/optimizer.accumulator.{n}"] = opt.state[p]["square_avg"].numpy()
    for n, p in zip(PARAMS, params):
        out[f"after/{n}"] = p.detach().numpy()
    assert [a for a, _ in acts] == LAYERS
    return out
