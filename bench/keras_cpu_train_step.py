"""The autoencoder in Keras 3 (the tutorial's framework), timed like bench/train_steps.cpp: training steps
(train_on_batch: forward, MSE, backward, RMSprop with Keras's own semantics, lr 1e-3, rho 0.9, eps 1e-7),
then inference passes (test_on_batch: forward with the moving statistics and the loss, as validation runs).
Keras layer defaults as the tutorial used them: Conv2D 3x3 'same' + ReLU, BatchNormalization (momentum 0.99,
eps 1e-3), channels-last (TensorFlow's CPU convolutions are NHWC only). float32, random images in [0, 1).
Runs in the benchmark venv (bench/run_cpu.sh makes it); imports no project code but
bench/step_timing.py (standard library only).

--backend tensorflow|jax picks Keras's backend; --jit-compile asks for XLA (with tensorflow; the JAX backend
always compiles with XLA). Threads: OMP_NUM_THREADS, and TensorFlow's intra-op pool set to --threads with
an inter-op pool of --inter-op (default 1, so at most --threads threads compute at once, as in the other
engines). JAX has no thread setting of its own on the CPU: the process is bound to --threads CPUs
(sched_setaffinity) before JAX starts, and XLA sizes its pool from that. Prints one JSON line."""
import argparse
import json
import os
import sys

from step_timing import median_seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["tensorflow", "jax"], default="tensorflow")
    ap.add_argument("--jit-compile", action="store_true")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=176)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--eval-steps", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--inter-op", type=int, default=1)
    a = ap.parse_args()
    os.environ["KERAS_BACKEND"] = a.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    settings = {}
    if a.backend == "jax":
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < a.threads:
            sys.exit(f"keras_cpu_train_step: {a.threads} threads asked for, {len(cpus)} CPUs available")
        os.sched_setaffinity(0, cpus[:a.threads])
        settings["cpu_affinity"] = cpus[:a.threads]
        jit = True
    else:
        jit = a.jit_compile
    import numpy as np
    import keras
    from keras import layers
    versions = {"keras": keras.__version__}
    if a.backend == "tensorflow":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
        tf.config.threading.set_inter_op_parallelism_threads(a.inter_op)
        settings.update(intra_op=tf.config.threading.get_intra_op_parallelism_threads(),
                        inter_op=tf.config.threading.get_inter_op_parallelism_threads(),
                        onednn_opts=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"))
        versions["tensorflow"] = tf.__version__
    else:
        import jax
        import jaxlib
        versions.update(jax=jax.__version__, jaxlib=jaxlib.__version__)
        settings["devices"] = [str(d) for d in jax.devices()]

    keras.utils.set_random_seed(1)

    def block(t, c):
        t = layers.Conv2D(c, 3, padding="same", activation="relu")(t)
        return layers.BatchNormalization(momentum=0.99, epsilon=1e-3)(t)

    inp = keras.Input((a.size, a.size, 1))
    t = block(block(inp, 32), 32)
    t = layers.MaxPooling2D(2)(t)
    t = block(block(t, 64), 64)
    t = layers.MaxPooling2D(2)(t)
    t = block(block(t, 128), 128)
    t = block(block(t, 64), 64)
    t = layers.UpSampling2D(2)(t)
    t = block(block(t, 32), 32)
    t = layers.UpSampling2D(2)(t)
    out = layers.Conv2D(1, 3, padding="same", activation="sigmoid")(t)
    model = keras.Model(inp, out)
    params = model.count_params()
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-3, rho=0.9, epsilon=1e-7),
                  loss="mse", jit_compile=jit)

    x = np.random.default_rng(1).random((a.batch, a.size, a.size, 1), dtype=np.float32)
    # train_on_batch returns the loss as a host value: the step is done when it returns.
    med, loss = median_seconds(lambda: float(model.train_on_batch(x, x)), a.steps, a.warmup)
    name = "keras-" + a.backend + ("-xla" if jit and a.backend == "tensorflow" else "") + "-cpu"
    row = {"engine": name, "precision": "fp32", **versions, "threads": a.threads, "thread_settings": settings,
           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "jit_compile": jit, "parameters": params,
           "batch": a.batch, "size": a.size, "steps": a.steps, "median_step_s": round(med, 5),
           "images_per_s": round(a.batch / med, 3), "last_loss": round(loss, 6)}
    if a.eval_steps > 0:
        eval_med, _ = median_seconds(lambda: float(model.test_on_batch(x, x)), a.eval_steps, 1)
        row.update({"eval_steps": a.eval_steps, "eval_median_s": round(eval_med, 5),
                    "eval_images_per_s": round(a.batch / eval_med, 3)})
    print(json.dumps(row))


if __name__ == "__main__":
    main()
