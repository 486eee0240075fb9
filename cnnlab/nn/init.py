"""Weight initialisers, driven by an explicit NumPy ``Generator``.

Each initialiser is ``init(rng, shape, fan_in, fan_out, dtype) -> ndarray``:

==================  ==============================================
he_normal           N(0, σ²),  σ = √(2 / fan_in)          (He et al. 2015)
he_uniform          U(−l, l),  l = √(6 / fan_in)
glorot_normal       N(0, σ²),  σ = √(2 / (fan_in + fan_out))   (Glorot & Bengio 2010)
glorot_uniform      U(−l, l),  l = √(6 / (fan_in + fan_out))
normal              N(0, 0.05²)        (Keras's RandomNormal default)
uniform             U(−0.05, 0.05)     (Keras's RandomUniform default)
zeros, ones         constants
==================  ==============================================

``fans(shape, groups)`` gives fan-in and fan-out: for a dense weight
(out, in) they are ``in`` and ``out``; for a convolution weight
(C_out, C_in/groups, k…) each output sees ``C_in/groups · Πk`` inputs and
each input feeds ``C_out/groups · Πk`` outputs.
"""

from __future__ import annotations

import math

import numpy as np

from cnnlab._checks import check_choice, check_type


def fans(shape: tuple[int, ...], groups: int = 1) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape``: (out, in) dense or (C_out, C_in/groups, k…) conv."""
    if len(shape) < 2:
        n = int(shape[0]) if shape else 1
        return n, n
    receptive = math.prod(shape[2:])
    return int(shape[1]) * receptive, int(shape[0]) // groups * receptive


def he_normal(rng, shape, fan_in, fan_out, dtype=np.float32):
    return _normal(rng, shape, math.sqrt(2.0 / fan_in), dtype)


def he_uniform(rng, shape, fan_in, fan_out, dtype=np.float32):
    return _uniform(rng, shape, math.sqrt(6.0 / fan_in), dtype)


def glorot_normal(rng, shape, fan_in, fan_out, dtype=np.float32):
    return _normal(rng, shape, math.sqrt(2.0 / (fan_in + fan_out)), dtype)


def glorot_uniform(rng, shape, fan_in, fan_out, dtype=np.float32):
    return _uniform(rng, shape, math.sqrt(6.0 / (fan_in + fan_out)), dtype)


def normal(rng, shape, fan_in, fan_out, dtype=np.float32):
    return _normal(rng, shape, 0.05, dtype)


def uniform(rng, shape, fan_in, fan_out, dtype=np.float32):
    return _uniform(rng, shape, 0.05, dtype)


def zeros(rng, shape, fan_in, fan_out, dtype=np.float32):
    return np.zeros(shape, dtype=dtype)


def ones(rng, shape, fan_in, fan_out, dtype=np.float32):
    return np.ones(shape, dtype=dtype)


def _normal(rng, shape, std, dtype):
    dtype = np.dtype(dtype)
    draw_dtype = dtype if dtype in (np.float32, np.float64) else np.float64
    return (rng.standard_normal(shape, dtype=draw_dtype) * draw_dtype.type(std)).astype(dtype, copy=False)


def _uniform(rng, shape, limit, dtype):
    dtype = np.dtype(dtype)
    draw_dtype = dtype if dtype in (np.float32, np.float64) else np.float64
    draw = rng.random(shape, dtype=draw_dtype)
    return ((draw * 2 - 1) * draw_dtype.type(limit)).astype(dtype, copy=False)


INITIALIZERS = {
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "normal": normal,
    "uniform": uniform,
    "zeros": zeros,
    "ones": ones,
}


def get(name: str):
    """The initialiser called ``name``: TypeError for a non-str, ValueError listing the known names
    for an unknown one."""
    check_type(name, str, "init.get", "name", "an initializer name")
    return INITIALIZERS[check_choice(name, sorted(INITIALIZERS), "init.get", "name")]
