"""SGD's update as one compiled pass per parameter (numba), split across the BLAS threads.

NumPy's in-place form of v ← μv + g, θ ← θ − ηv reads and writes the parameter-sized
arrays in four passes (v *= μ; v += g; s = v·η; θ −= s); this loop does the same float
operations, in the same order and the arrays' dtype (μ and η rounded to it first, as NumPy
does with a Python float), in one pass: the bits are the same (tested). The fashion net's
SGD-momentum step (871,082 float32 parameters), one thread, interleaved medians: see
``SGD._update``.
"""

from __future__ import annotations

from numba import njit


# Flat views of one range each, indexed from 0: with run-time bounds (range(first, stop)) numba
# checks every index for wrap-around and the loop does not vectorise (4.0 ms against 0.9 ms
# for 802,816 float32 values).
@njit(cache=True, nogil=True)
def momentum_step(param, velocity, grad, momentum, lr):
    """v ← v·μ + g, θ ← θ − v·η element-wise over flat arrays (μ, η in their dtype)."""
    for i in range(param.size):
        v = velocity[i] * momentum + grad[i]
        velocity[i] = v
        param[i] = param[i] - v * lr


@njit(cache=True, nogil=True)
def plain_step(param, grad, lr):
    """θ ← θ − g·η element-wise over flat arrays (η in their dtype)."""
    for i in range(param.size):
        param[i] = param[i] - grad[i] * lr
