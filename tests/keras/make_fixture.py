#!/usr/bin/env python3
"""Writes the Keras fixtures of tests/test_keras_weights.cpp: the tutorial's model, built in real Keras, its
weights in both of Keras's HDF5 layouts, and its predictions on two real slices.

Made once, with (a venv outside the repository; the packages are large and not in Debian):
    python3 -m venv /work/wt/keras-venv
    /work/wt/keras-venv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 keras==3.15.1 h5py==3.14.0 \
        nibabel==5.4.2 numpy==2.4.6
    /work/wt/keras-venv/bin/python tests/keras/make_fixture.py
(Python 3.11.7.) The script refuses to run with other versions, so the files say exactly what made them.

Writes, next to itself:
  tutorial_keras2.h5          tf_keras Model.save_weights (Keras 2's HDF5 layout: root attribute layer_names,
                              one group per layer with attribute weight_names, kernel:0 in HWIO order)
  tutorial_keras3.weights.h5  keras 3 Model.save_weights (layers/<class>[_k]/vars/0..)
  predictions.safetensors     input  [2, 1, 184, 184] float32: coronal slices 100 and 120 of Colin27
                              (/usr/share/mricron/templates/ch2.nii.gz, nibabel get_fdata), each a[:, j, :]
                              as the tutorial slices, min-max scaled by the whole volume's min and max, three
                              rows and columns of zeros at the top and left (the tutorial's temp[:, 3:, 3:]);
                              keras2, keras3 [2, 1, 184, 184]: each Keras's predict() of those slices;
                              keras2_f64 (F64): tf_keras's predict() in float64 (floatx float64, the
                              same weights), the reference that float32 rounding does not blur.
The model is the tutorial's exactly (427,713 parameters). Its weights: Glorot-uniform kernels as Keras draws
them (seed 7), and random non-zero conv biases, batchnorm gamma and beta, and moving statistics near the real ones
(see set_weights), so that a
mistake in any of them (a transposed kernel, gamma and beta swapped, mean and variance swapped) shows.
The Keras 2 model is built after nine throwaway Conv2D and five BatchNormalization layers, so its layer
names (conv2d_9 ... conv2d_19, batch_normalization_5 ... _14) sort differently by text than by position:
a reader has to follow the file's layer_names, as Keras does.
"""
import json
import os
import struct
import sys

import numpy as np

EXPECTED = {"tensorflow": "2.21.0", "tf_keras": "2.21.0", "keras": "3.15.1", "h5py": "3.14.0",
            "nibabel": "5.4.2", "numpy": "2.4.6"}
HERE = os.path.dirname(os.path.abspath(__file__))
CH2 = "/usr/share/mricron/templates/ch2.nii.gz"
SLICES = [100, 120]


def check_versions():
    import importlib
    bad = []
    for name, want in EXPECTED.items():
        have = importlib.import_module(name).__version__
        if have != want:
            bad.append(f"{name} {have} (want {want})")
    if bad:
        sys.exit("make_fixture.py: wrong package versions: " + ", ".join(bad))


def build(layers, Model, name_prefix=None):
    """The tutorial's autoencoder (tests/../seed tutorial, section 'The Convolutional Autoencoder')."""
    input_img = layers.Input(shape=(184, 184, 1))
    h = input_img
    for i, c in enumerate([32, 32, "pool", 64, 64, "pool", 128, 128, 64, 64, "up", 32, 32, "up"]):
        if c == "pool":
            h = layers.MaxPooling2D(pool_size=(2, 2))(h)
        elif c == "up":
            h = layers.UpSampling2D((2, 2))(h)
        else:
            h = layers.Conv2D(c, (3, 3), activation="relu", padding="same")(h)
            h = layers.BatchNormalization()(h)
    decoded = layers.Conv2D(1, (3, 3), activation="sigmoid", padding="same")(h)
    return Model(input_img, decoded)


def set_weights(model, x, rng):
    """Keras's own kernels; random conv biases, gamma and beta; and moving statistics near the real ones: each
    batchnorm's mean and variance of its input on x (the layers before it already set), times a random factor
    in [0.8, 1.25]. Statistics far from the data's would saturate the sigmoid, where a wrong weight would not
    show in the output."""
    Model = type(model)
    for layer in model.layers:
        w = layer.get_weights()
        kind = type(layer).__name__
        if kind == "Conv2D":
            layer.set_weights([w[0], rng.uniform(-0.1, 0.1, w[1].shape).astype(np.float32)])
        elif kind == "BatchNormalization":
            a = np.asarray(Model(model.input, layer.input).predict(x, verbose=0), np.float64)
            mean, var = a.mean(axis=(0, 1, 2)), a.var(axis=(0, 1, 2))
            n = mean.shape
            new = [rng.uniform(0.5, 1.5, n), rng.uniform(-0.3, 0.3, n), mean * rng.uniform(0.8, 1.25, n),
                   var * rng.uniform(0.8, 1.25, n) + 1e-4]
            layer.set_weights([v.astype(np.float32) for v in new])
        else:
            assert not w, kind
    return [layer.get_weights() for layer in model.layers]


def slices():
    import nibabel as nib
    vol = nib.load(CH2).get_fdata(dtype=np.float32)
    mi, m = float(vol.min()), float(vol.max())
    x = np.zeros((len(SLICES), 184, 184, 1), np.float32)
    for k, j in enumerate(SLICES):
        s = vol[:, j, :]
        assert s.shape == (181, 181), s.shape
        x[k, 3:, 3:, 0] = (s - mi) / (m - mi)
    return x


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        assert a.dtype in (np.float32, np.float64), a.dtype
        header[name] = {"dtype": "F32" if a.dtype == np.float32 else "F64", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    check_versions()
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import tensorflow as tf
    import tf_keras
    import keras

    tf_keras.utils.set_random_seed(7)
    _ = [tf_keras.layers.Conv2D(1, 3) for _ in range(9)] + [tf_keras.layers.BatchNormalization() for _ in range(5)]
    m2 = build(tf_keras.layers, tf_keras.Model)
    assert m2.count_params() == 427713, m2.count_params()
    x = slices()
    weights = set_weights(m2, x, np.random.default_rng(7))
    m3 = build(keras.layers, keras.Model)
    assert m3.count_params() == 427713, m3.count_params()
    for layer, w in zip(m3.layers, weights):
        layer.set_weights(w)

    y2 = m2.predict(x, verbose=0)
    y3 = m3.predict(x, verbose=0)
    # The same weights in a float64 Keras model: the reference that rounding does not blur.
    tf_keras.backend.set_floatx("float64")
    m64 = build(tf_keras.layers, tf_keras.Model)
    for layer, w in zip(m64.layers, weights):
        layer.set_weights([v.astype(np.float64) for v in w])
    y64 = m64.predict(x.astype(np.float64), verbose=0)
    assert y64.dtype == np.float64, y64.dtype
    print("layers (Keras 2):", [l.name for l in m2.layers])
    print("prediction range %.4f..%.4f, mean %.4f; max |diff| keras2 vs keras3 %.3g, vs float64 %.3g, %.3g"
          % (y2.min(), y2.max(), y2.mean(), np.abs(y2 - y3).max(), np.abs(y2 - y64).max(), np.abs(y3 - y64).max()))

    m2.save_weights(os.path.join(HERE, "tutorial_keras2.h5"))
    m3.save_weights(os.path.join(HERE, "tutorial_keras3.weights.h5"))
    nchw = lambda a: np.transpose(a, (0, 3, 1, 2))
    meta = {"made_by": "tests/keras/make_fixture.py", "source": CH2, "slices_axis1": json.dumps(SLICES)}
    meta.update({k: v for k, v in EXPECTED.items()})
    write_safetensors(os.path.join(HERE, "predictions.safetensors"),
                      {"input": nchw(x), "keras2": nchw(y2), "keras3": nchw(y3), "keras2_f64": nchw(y64)}, meta)


if __name__ == "__main__":
    main()
