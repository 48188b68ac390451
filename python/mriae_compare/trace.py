"""An `mriae trace` file: the starting state, each step's batch, every layer output and gradient, and the
state after each step (names: the trace's metadata "names")."""
import numpy as np

from .safetensors_io import TraceError, read

FORMAT_VERSION = "1"
# (in, out) channels of conv1..conv11; conv i <= 10 is followed by ReLU and batchnorm bn i.
CHANNELS = [(1, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128), (128, 64), (64, 64), (64, 32), (32, 32),
            (32, 1)]
# The layers in forward order, as mriae names them (the PyTorch modules of the same model).
LAYERS = ["conv1", "bn1", "conv2", "bn2", "pool1", "conv3", "bn3", "conv4", "bn4", "pool2", "conv5", "bn5", "conv6",
          "bn6", "conv7", "bn7", "conv8", "bn8", "up1", "conv9", "bn9", "conv10", "bn10", "up2", "conv11", "sigmoid"]
PARAMS = [f"{m}{i}.{p}" for i in range(1, 12) for m, p in
          ([("conv", "weight"), ("conv", "bias")] + ([("bn", "weight"), ("bn", "bias")] if i < 11 else []))]


class Trace:
    def __init__(self, path):
        self.path = path
        self.tensors, self.meta = read(path)
        if self.meta.get("format") != "mriae-trace":
            raise TraceError(f"{path}: not an mriae trace (metadata format is {self.meta.get('format')!r})")
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise TraceError(f"{path}: trace format version {self.meta.get('format_version')!r}; this adapter "
                             f"reads version {FORMAT_VERSION}")
        if self.meta.get("layers", "").split(",") != LAYERS:
            raise TraceError(f"{path}: the trace's layers are not this model's")
        self.dtype = {"float32": np.float32, "float64": np.float64}.get(self.meta.get("dtype"))
        if self.dtype is None:
            raise TraceError(f"{path}: unknown dtype {self.meta.get('dtype')!r}")
        self.steps = int(self.meta["steps"])
        self.hyper = {k: float(self.meta[k]) for k in ("bn_eps", "bn_momentum", "rmsprop_lr", "rmsprop_rho",
                                                       "rmsprop_eps")}
        for k in range(1, self.steps + 1):
            for name in [f"step{k}/input", f"step{k}/loss"] + [f"step{k}/act/{l}" for l in LAYERS]:
                self.get(name)

    def get(self, name):
        if name not in self.tensors:
            raise TraceError(f"{self.path}: no tensor '{name}' (a damaged or incomplete trace)")
        return self.tensors[name]

    def state(self, k):
        """The state before step k (1-based): params, accumulators, optimizer steps, and per batchnorm the
        moving mean and variance, the hidden EMAs and the update count."""
        p = "init/" if k == 1 else f"step{k - 1}/after/"
        s = {"params": {n: self.get(p + n) for n in PARAMS},
             "acc": {n: self.get(p + "optimizer.accumulator." + n) for n in PARAMS},
             "opt_steps": int(self.get(p + "optimizer.steps")), "bn": []}
        for i in range(1, 11):
            s["bn"].append({"mean": self.get(f"{p}bn{i}.running_mean"), "var": self.get(f"{p}bn{i}.running_var"),
                            "hidden_mean": self.get(f"{p}bn_ema.bn{i}.hidden_mean"),
                            "hidden_var": self.get(f"{p}bn_ema.bn{i}.hidden_var"),
                            "steps": int(self.get(f"{p}bn{i}.num_batches_tracked"))})
        return s


def execution_order():
    """The names a step computes (without the "stepK/" prefix), in the order an implementation computes them:
    forward (each batchnorm's moving statistics with it), loss, backward (each layer's output gradient, then
    its parameters' gradients), then the optimizer (accumulator, then the parameter)."""
    order = []
    for l in LAYERS:
        order.append(f"act/{l}")
        if l.startswith("bn"):
            order += [f"after/{l}.running_mean", f"after/{l}.running_var"]
    order.append("loss")
    for l in reversed(LAYERS):
        order.append(f"act_grad/{l}")
        if l.startswith(("conv", "bn")):
            order += [f"grad/{l}.weight", f"grad/{l}.bias"]
    for n in PARAMS:
        order += [f"after/optimizer.accumulator.{n}", f"after/{n}"]
    return order
