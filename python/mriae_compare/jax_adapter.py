"""The model in JAX on the CPU: jax.lax convolutions and windows, jax.grad under jax.jit, in the trace's dtype
(float64 with jax_enable_x64). JAX has no batchnorm or optimiser of its own: both are written out (Keras 2.2
rules; the plants change them as in the PyTorch adapter). Activation gradients are the gradients with respect
to zero "taps" added to each layer's output."""
import numpy as np

from .trace import CHANNELS, LAYERS, PARAMS

NAME = "jax"


def available():
    try:
        import jax  # noqa: F401
        return None
    except ImportError as e:
        return f"JAX is not importable ({e}); pip install jax"


def version():
    import jax
    return f"JAX {jax.__version__} ({jax.default_backend()})"


_STEPS = {}


def _step_function(bn_eps):
    """(loss, (activations, batch statistics)) and the gradients with respect to the parameters and the taps,
    jitted once per eps (new shapes or dtypes retrace by themselves)."""
    if bn_eps in _STEPS:
        return _STEPS[bn_eps]
    import jax
    import jax.numpy as jnp
    from jax import lax

    def conv(params, y, i):
        z = lax.conv_general_dilated(y, params[f"conv{i}.weight"], (1, 1), "SAME",
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"), precision=lax.Precision.HIGHEST)
        return z + params[f"conv{i}.bias"][None, :, None, None]

    def forward(params, taps, x):
        acts, stats = {}, []

        def tap(name, t):
            t = t + taps[name]
            acts[name] = t
            return t

        y = x
        for i in range(1, len(CHANNELS)):
            z = tap(f"conv{i}", conv(params, y, i))
            r = jax.nn.relu(z)
            mean = jnp.mean(r, axis=(0, 2, 3))
            var = jnp.mean((r - mean[None, :, None, None]) ** 2, axis=(0, 2, 3))
            xhat = (r - mean[None, :, None, None]) / jnp.sqrt(var + bn_eps)[None, :, None, None]
            y = tap(f"bn{i}", xhat * params[f"bn{i}.weight"][None, :, None, None]
                    + params[f"bn{i}.bias"][None, :, None, None])
            n = r.size // r.shape[1]
            stats.append((mean, var * n / (n - 1)))  # Bessel-corrected for the moving variance
            if i in (2, 4):
                y = tap(f"pool{i // 2}", lax.reduce_window(y, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID"))
            if i in (8, 10):
                y = tap(f"up{i // 2 - 3}", jnp.repeat(jnp.repeat(y, 2, axis=2), 2, axis=3))
        z = tap("conv11", conv(params, y, 11))
        y = tap("sigmoid", jax.nn.sigmoid(z))
        return jnp.mean((y - x) ** 2), (acts, stats)

    _STEPS[bn_eps] = jax.jit(jax.value_and_grad(forward, argnums=(0, 1), has_aux=True))
    return _STEPS[bn_eps]


def run_step(trace, state, x, plant=None):
    import jax
    jax.config.update("jax_platforms", "cpu")
    if trace.dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    h = trace.hyper
    bn_eps = 1e-5 if plant == "bn-eps" else h["bn_eps"]
    dt = trace.dtype
    P = {n: jnp.asarray(v, dtype=dt) for n, v in state["params"].items()}
    x = jnp.asarray(x, dtype=dt)
    # The taps have the layers' output shapes (the trace's; the comparison checks the framework's against them).
    taps = {l: jnp.zeros(trace.get(f"step1/act/{l}").shape, dtype=dt) for l in LAYERS}
    (loss, (acts, stats)), (gp, gt) = _step_function(bn_eps)(P, taps, x)
    out = {"loss": np.array([float(loss)], dtype=dt)}
    for l in LAYERS:
        out[f"act/{l}"] = np.asarray(acts[l])
        out[f"act_grad/{l}"] = np.asarray(gt[l])
    m = h["bn_momentum"]
    for i, (mean, var) in enumerate(stats, start=1):
        s = state["bn"][i - 1]
        denom = 1 - jnp.asarray(m, dtype=dt) ** (s["steps"] + 1)
        out[f"after/bn{i}.running_mean"] = np.asarray((m * s["hidden_mean"] + (1 - m) * mean) / denom)
        if plant == "running-var":  # PyTorch's rule: a plain EMA of the published variance
            out[f"after/bn{i}.running_var"] = np.asarray(m * s["var"] + (1 - m) * var)
        else:
            out[f"after/bn{i}.running_var"] = np.asarray((m * s["hidden_var"] + (1 - m) * var) / denom)
    lr, rho, eps = h["rmsprop_lr"], h["rmsprop_rho"], h["rmsprop_eps"]
    for n in PARAMS:
        g = gp[n]
        a = rho * jnp.asarray(state["acc"][n], dtype=dt) + (1 - rho) * g * g
        p = P[n] - lr * g / (jnp.sqrt(a + eps) if plant == "rmsprop-eps-inside" else jnp.sqrt(a) + eps)
        out[f"grad/{n}"] = np.asarray(g)
        out[f"after/optimizer.accumulator.{n}"] = np.asarray(a)
        out[f"after/{n}"] = np.asarray(p)
    return out
