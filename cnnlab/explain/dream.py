"""Deep Dream (Mordvintsev, Olah & Tyka, Google 2015): "the CNN exaggerates what it sees".

As in Google's deepdream notebook: gradient ascent on the image to raise the objective
E = mean(a²) over a layer's activations a, where at each step

    (1) the image is rolled by a random (dy, dx) in [−jitter, jitter]  (jitter),
    (2) x ← x + step_size · g / mean|g|,  g = ∂E/∂x  (the step normalised by the mean
        absolute gradient, so every octave and layer moves at the same pace),
    (3) the roll is undone and the pixels clipped to [0, 1];

over octaves from the smallest (the image shrunk by octave_scale^(octaves−1)) to the full
size, the detail (dreamed − original at that scale) carried up between octaves and added
to the next octave's original. The model is used fully convolutionally: only the layers up
to ``layer`` run, so the image may have any size the model can take.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cnnlab._checks import check_int
from cnnlab.explain.probe import (
    ExplainError,
    as_images,
    check_large_enough,
    find_layer,
    forward,
    input_gradient,
    inspecting,
)
from cnnlab.nn.module import Module
from cnnlab.tensor import Tensor

__all__ = ["DreamResult", "deep_dream"]

#: the notebook's jitter is in pixels of a 224 px GoogLeNet input; scaled to the image
REFERENCE_SIDE = 224


@dataclasses.dataclass
class DreamResult:
    """What ``deep_dream`` returns.

    image: (C, H, W) in [0, 1]. sizes: (H, W) of each octave, smallest first.
    objective: (octaves, 2) mean(a²) at each octave's start and end; mean_activation: the
    same for mean(a).
    """

    image: np.ndarray
    sizes: list
    objective: np.ndarray
    mean_activation: np.ndarray


def _zoom(image: np.ndarray, size) -> np.ndarray:
    """(C, H, W) resampled bilinearly to (C, *size), as the notebook's nd.zoom(order=1)."""
    from scipy import ndimage  # lazy: scipy

    h, w = image.shape[1:]
    out = ndimage.zoom(image, (1, size[0] / h, size[1] / w), order=1)
    if out.shape[1:] != tuple(size):  # zoom rounds; pad or crop the last row or column
        fixed = np.zeros(image.shape[:1] + tuple(size), dtype=image.dtype)
        hh, ww = min(size[0], out.shape[1]), min(size[1], out.shape[2])
        fixed[:, :hh, :ww] = out[:, :hh, :ww]
        out = fixed
    return out


def _objective(out):
    flat = out.reshape((out.shape[0], -1))
    return (flat * flat).mean(axis=1)


def _measure(model, x, layer):
    """(mean(a²), mean(a)) of ``layer`` for one image x (1, C, H, W)."""
    with inspecting(model):
        out = forward(model, Tensor(x), layer).data.astype(np.float64)
    return float((out * out).mean()), float(out.mean())


def deep_dream(model: Module, image, layer: str, octaves: int = 4, octave_scale: float = 1.4,
               steps: int = 10, step_size: float = 1.5, jitter: int = 32, seed: int = 0,
               progress=None) -> DreamResult:
    """Dream ``image`` (C, H, W) in [0, 1] (or uint8) with ``layer`` of ``model``.

    Args:
        octaves, octave_scale, steps: as the notebook (4, 1.4, 10 steps per octave).
            Octaves that would be smaller than the model can take are left out.
        step_size: in 8-bit grey levels, the notebook's unit (1.5 of 255).
        jitter: the largest roll, in pixels of a 224 px image; scaled to each octave's size
            (32 at 224 px is 4 at 28 px).
        seed: the rolls' random generator.
        progress: called with 1 after every step (a tqdm bar's ``update``), or None.
    Returns: ``DreamResult``.
    """
    octaves = check_int(octaves, "deep_dream", "octaves", minimum=1)
    steps = check_int(steps, "deep_dream", "steps", minimum=1)
    jitter = check_int(jitter, "deep_dream", "jitter", minimum=0)
    seed = check_int(seed, "deep_dream", "seed", minimum=0)
    for name, value in (("octave_scale", octave_scale), ("step_size", step_size)):
        if not np.isfinite(value) or value <= (1.0 if name == "octave_scale" else 0.0):
            bound = "> 1" if name == "octave_scale" else "> 0"
            raise ExplainError(f"deep_dream: {name} must be finite and {bound}, received {value}")
    find_layer(model, layer)  # an unknown name is the first thing to report
    base = as_images(model, image, "deep_dream", size_free=True, layer=layer)
    if base.shape[0] != 1:
        raise ExplainError(f"deep_dream: expected one image (C, H, W), received {base.shape[0]}")
    base = base[0]
    rng = np.random.default_rng(seed)

    sizes = [tuple(base.shape[1:])]
    for _ in range(octaves - 1):
        h, w = sizes[-1]
        smaller = (max(1, round(h / octave_scale)), max(1, round(w / octave_scale)))
        try:
            check_large_enough(model, (base.shape[0], *smaller), "deep_dream", layer)
        except ExplainError:
            break
        sizes.append(smaller)
    sizes.reverse()
    originals = [base if s == sizes[-1] else _zoom(base, s) for s in sizes]

    step = step_size / 255.0
    detail = np.zeros_like(originals[0])
    objective, activation = [], []
    for original in originals:
        h, w = original.shape[1:]
        detail = _zoom(detail, (h, w))
        x = np.clip(original + detail, 0.0, 1.0)[None].astype(base.dtype)
        reach = round(jitter * min(h, w) / REFERENCE_SIDE)
        start = _measure(model, x, layer)
        for _ in range(steps):
            dy, dx = rng.integers(-reach, reach + 1, size=2)
            rolled = np.roll(x, (dy, dx), axis=(2, 3))
            _, grad = input_gradient(model, rolled, _objective, layer)
            scale = np.abs(grad).mean()
            if scale > 0:
                rolled = rolled + (step / scale) * grad
            x = np.clip(np.roll(rolled, (-dy, -dx), axis=(2, 3)), 0.0, 1.0).astype(base.dtype)
            if progress is not None:
                progress(1)
        end = _measure(model, x, layer)
        objective.append((start[0], end[0]))
        activation.append((start[1], end[1]))
        detail = x[0] - original
    return DreamResult(image=x[0], sizes=sizes, objective=np.array(objective),
                       mean_activation=np.array(activation))
