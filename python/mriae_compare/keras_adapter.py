"""The model in Keras 3 on its JAX backend: keras.layers Conv2D, ReLU, BatchNormalization (training mode),
MaxPooling2D, UpSampling2D and the sigmoid, channels-last, each called through Layer.stateless_call inside
jax.grad, in the trace's dtype.

Two of Keras 3's own rules are not Keras 2.2's, which the trace follows, so they are written out here:
- BatchNormalization's moving statistics are a plain EMA of the biased batch variance (Keras 2.2: the
  zero-debiased EMA of the Bessel-corrected one);
- keras.optimizers.RMSprop adds eps inside the square root (Keras 2.2: after it). `--plant
  rmsprop-eps-inside` runs Keras 3's own RMSprop, so the comparison shows what that difference does.
And one that cannot be changed from outside: BatchNormalization computes in
keras.backend.result_type(input dtype, "float32"), which is float32 even for float64 inputs, so a float64
trace fails at bn1 (relative error ~2e-7): Keras 3 has no float64 batchnorm. float32 traces pass."""
import os

import numpy as np

from .trace import CHANNELS, LAYERS, PARAMS

NAME = "keras"


def available():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError as e:
        return f"Keras is not importable ({e}); pip install keras jax"
    if keras.backend.backend() != "jax":
        return f"this adapter needs Keras' JAX backend (KERAS_BACKEND=jax), not {keras.backend.backend()}"
    return None


def version():
    import jax
    import keras
    return f"Keras {keras.__version__} (backend {keras.backend.backend()}, JAX {jax.__version__})"


def _layers(dtype, bn_eps):
    import keras
    L = keras.layers
    d = {"dtype": dtype}
    out = {}
    for i, (_, cout) in enumerate(CHANNELS, start=1):
        out[f"conv{i}"] = L.Conv2D(cout, 3, padding="same", name=f"conv{i}", **d)
        if i < len(CHANNELS):
            out[f"relu{i}"] = L.ReLU(name=f"relu{i}", **d)
            out[f"bn{i}"] = L.BatchNormalization(epsilon=bn_eps, momentum=0.99, name=f"bn{i}", **d)
    out["pool1"], out["pool2"] = L.MaxPooling2D(2, name="pool1", **d), L.MaxPooling2D(2, name="pool2", **d)
    out["up1"], out["up2"] = L.UpSampling2D(2, name="up1", **d), L.UpSampling2D(2, name="up2", **d)
    out["sigmoid"] = L.Activation("sigmoid", name="sigmoid", **d)
    return out


def run_step(trace, state, x, plant=None):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import jax
    jax.config.update("jax_platforms", "cpu")
    if trace.dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import keras

    dt = trace.dtype
    dname = np.dtype(dt).name
    h = trace.hyper
    layers = _layers(dname, 1e-5 if plant == "bn-eps" else h["bn_eps"])
    nhwc = lambda a: jnp.transpose(jnp.asarray(a, dtype=dt), (0, 2, 3, 1))  # noqa: E731
    nchw = lambda a: np.asarray(jnp.transpose(a, (0, 3, 1, 2)))  # noqa: E731
    xs = nhwc(x)

    # Build every layer on its input shape, then give it the trace's values (kernels OIHW -> HWIO).
    shape = xs.shape
    order = []
    for name in LAYERS:
        if name.startswith("bn"):
            i = name[2:]
            order += [f"relu{i}", name]
        else:
            order.append(name)
    for name in order:
        layer = layers[name]
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
        if name.startswith("conv"):
            layer.kernel.assign(np.transpose(state["params"][f"{name}.weight"], (2, 3, 1, 0)))
            layer.bias.assign(state["params"][f"{name}.bias"])
        elif name.startswith("bn"):
            layer.gamma.assign(state["params"][f"{name}.weight"])
            layer.beta.assign(state["params"][f"{name}.bias"])
    trainable = {n: [v.value for v in layers[n].trainable_variables] for n in order}
    frozen = {n: [v.value for v in layers[n].non_trainable_variables] for n in order}
    taps = {l: jnp.zeros(nhwc(trace.get(f"step1/act/{l}")).shape, dtype=dt) for l in LAYERS}

    def forward(tv, taps):
        acts, relu_out = {}, {}
        y = xs
        for name in order:
            y, _ = layers[name].stateless_call(tv[name], frozen[name], y, **({"training": True} if name.startswith("bn") else {}))
            if name.startswith("relu"):
                relu_out[name[4:]] = y
            else:
                y = y + taps[name]
                acts[name] = y
        return jnp.mean((y - xs) ** 2), (acts, relu_out)

    (loss, (acts, relu_out)), (gv, gt) = jax.value_and_grad(forward, argnums=(0, 1), has_aux=True)(trainable, taps)
    out = {"loss": np.array([float(loss)], dtype=dt)}
    for l in LAYERS:
        out[f"act/{l}"] = nchw(acts[l])
        out[f"act_grad/{l}"] = nchw(gt[l])
    m = h["bn_momentum"]
    for i in range(1, len(CHANNELS)):
        r = relu_out[str(i)]
        n = r.size // r.shape[-1]
        mean = jnp.mean(r, axis=(0, 1, 2))
        var = jnp.var(r, axis=(0, 1, 2)) * n / (n - 1)
        s = state["bn"][i - 1]
        denom = 1 - jnp.asarray(m, dtype=dt) ** (s["steps"] + 1)
        out[f"after/bn{i}.running_mean"] = np.asarray((m * s["hidden_mean"] + (1 - m) * mean) / denom)
        if plant == "running-var":
            out[f"after/bn{i}.running_var"] = np.asarray(m * s["var"] + (1 - m) * var)
        else:
            out[f"after/bn{i}.running_var"] = np.asarray((m * s["hidden_var"] + (1 - m) * var) / denom)

    # Gradients back in the trace's layout, by parameter name.
    grads = {}
    for name in order:
        if name.startswith("conv"):
            grads[f"{name}.weight"] = np.transpose(np.asarray(gv[name][0]), (3, 2, 0, 1))
            grads[f"{name}.bias"] = np.asarray(gv[name][1])
        elif name.startswith("bn"):
            grads[f"{name}.weight"], grads[f"{name}.bias"] = np.asarray(gv[name][0]), np.asarray(gv[name][1])
    lr, rho, eps = h["rmsprop_lr"], h["rmsprop_rho"], h["rmsprop_eps"]
    if plant == "rmsprop-eps-inside":  # Keras 3's own RMSprop
        opt = keras.optimizers.RMSprop(learning_rate=lr, rho=rho, epsilon=eps)
        vars_ = [keras.Variable(state["params"][n], dtype=dname) for n in PARAMS]
        opt.build(vars_)
        for v, n in zip(opt._velocities, PARAMS):
            v.assign(state["acc"][n])
        opt.apply([jnp.asarray(grads[n], dtype=dt) for n in PARAMS], vars_)
        for v, acc, n in zip(vars_, opt._velocities, PARAMS):
            out[f"after/{n}"] = np.asarray(v.value)
            out[f"after/optimizer.accumulator.{n}"] = np.asarray(acc.value)
    else:
        for n in PARAMS:
            g = grads[n].astype(dt)
            a = rho * state["acc"][n] + (1 - rho) * g * g
            out[f"after/optimizer.accumulator.{n}"] = a
            out[f"after/{n}"] = state["params"][n] - lr * g / (np.sqrt(a) + eps)
    for n in PARAMS:
        out[f"grad/{n}"] = grads[n]
    return out
