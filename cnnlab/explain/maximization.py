"""Activation maximisation: the input that most excites a unit, by gradient ascent on the image.

The lecture's definition: for filter k of a conv layer, a^k = Σ_ij A^k_ij, the sum of its
feature map, and x* = argmax_x a^k; the same for a dense neuron and for an output class (on
its logit, not its probability). Unregularised, x* is high-frequency noise, hence the
lecture's penalised version x* = argmax_x (y − λ Σ|x|) and the regularisers of Yosinski et
al. (2015) and Olah et al. (2017) — see ``param`` for each.

Each step: the image x = g(p) from the parameters p (``PixelImage`` or ``FourierImage``), a
random view T(x) (``Transform``: shift, scale, rotation, roll — transformation robustness),
the gradient of the target at T(x) (``probe.input_gradient``), back through Tᵀ and g to p,
minus the penalties' gradient, then one Adam step *up* (Kingma and Ba's Adam with the
gradient's sign flipped; lr 0.05 as Lucid). Every few steps the image may be blurred.
Several units are optimised together, one image each, as one batch.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from cnnlab.explain import param, probe
from cnnlab.explain.probe import ExplainError
from cnnlab.nn.activation import Softmax
from cnnlab.tensor import Tensor

__all__ = ["Maximized", "maximize"]


@dataclass
class Maximized:
    """What ``maximize`` found.

    images: (N, C, H, W) in [0, 1], one per unit; ``image`` is the first, (C, H, W).
    history: (steps, N): the objective maximised at each step (the target's activation on
    that step's random view, minus the penalties). start, final: (N,) the target's activation
    on the random start image and on the result, both seen as they are (no transform).
    """

    images: np.ndarray
    layer: str | None
    units: tuple[int, ...]
    history: np.ndarray
    start: np.ndarray
    final: np.ndarray

    @property
    def image(self) -> np.ndarray:
        return self.images[0]


def _as_units(unit) -> tuple[int, ...]:
    units = (unit,) if np.ndim(unit) == 0 else tuple(np.asarray(unit).ravel().tolist())
    if not units or any(isinstance(u, bool) or not isinstance(u, (int, np.integer)) for u in units):
        raise ExplainError(f"maximize: unit must be an int or a list of ints, received {unit!r}")
    return tuple(int(u) for u in units)


def _resolve_layer(model, layer):
    """None for the logits, also when ``layer`` names the last layer (its logit is the target)."""
    if layer is None:
        return None
    probe.find_layer(model, layer)
    names = probe.layer_names(model)
    last = names[-1]
    if isinstance(probe.find_layer(model, last), Softmax) and len(names) > 1:
        last = names[-2]
    return None if layer == last else layer


def _target_mask(shape, units, position, layer) -> np.ndarray:
    """A 0/1 mask over the layer's output (N, ...) picking each image's unit."""
    what = "output class" if layer is None else f"unit of layer {layer!r}"
    count = shape[1]
    for u in units:
        if not 0 <= u < count:
            raise ExplainError(
                f"maximize: unknown {what} {u}; valid units are 0 to {count - 1}"
            )
    mask = np.zeros((len(units),) + tuple(shape[1:]))
    if position is not None:
        if len(shape) != 4:
            raise ExplainError(
                f"maximize: position applies to a conv layer's map; layer {layer!r} "
                f"outputs shape {tuple(shape[1:])}"
            )
        y, x = (int(v) for v in position)
        if not (0 <= y < shape[2] and 0 <= x < shape[3]):
            raise ExplainError(
                f"maximize: position {(y, x)} is outside the {shape[2]}×{shape[3]} feature map"
            )
    for i, u in enumerate(units):
        if position is None:
            mask[i, u] = 1.0
        else:
            mask[i, u, y, x] = 1.0
    return mask


def _normalization(model, channels: int) -> tuple[np.ndarray, np.ndarray]:
    stats = getattr(model, "normalization", None) or {"mean": 0.0, "std": 1.0}
    mean = np.broadcast_to(np.asarray(stats["mean"], dtype=np.float64), (channels,)).copy()
    std = np.broadcast_to(np.asarray(stats["std"], dtype=np.float64), (channels,)).copy()
    return mean, std


def maximize(model, layer: str | None = None, unit=0, *, steps: int = 256, lr: float = 0.05,
             l1: float = 0.0, l2: float = 0.0, tv: float = 0.0, blur_every: int = 0,
             blur_sigma: float | None = None, pad: int | None = None, jitter: int | None = None,
             scale: float = 0.1, rotate: float = 10.0, fourier: bool = False,
             position=None, size=None, redirect_steps: int | None = None, seed: int = 0,
             progress: bool = False) -> Maximized:
    """Gradient ascent on the input to maximise one unit per image (see the module docstring).

    Args:
        layer: a layer name as ``summary()`` prints it; None (or the last layer): the logits.
        unit: an int, or a list of ints (one image each, one batch): a conv channel
            (a^k = Σ_ij A^k_ij, or A^k at ``position`` = (y, x)), a dense neuron, a class.
        steps, lr: Adam steps and step size on the parameters.
        l1, l2, tv: penalties λ₁Σ|z| + λ₂Σz² + λ_tv·TV(x) (``param.penalties``; z is the
            image as the model sees it, so L1 pulls pixels to the data's mean pixel).
        blur_every, blur_sigma: blur the image every so many steps (0: never); sigma in px,
            default 0.5 px per 28 px of image side.
        pad, jitter, scale, rotate: transformation robustness (``param.random_transform``);
            pad/jitter None: Lucid's magnitudes scaled to the image (``default_robustness``);
            all 0 for none.
        fourier: the decorrelated Fourier parameterisation instead of pixels.
        size: (H, W) for a model that takes any size (conv layers only); default the model's.
        redirect_steps: the first steps pass a gradient through ReLUs that are dead
            everywhere (``F.redirected_relu``), so a unit silent on the start image can move;
            default half the steps (16 left some units of the README's nets at 0 that half
            the steps switch on; a live unit's gradient is ReLU's own either way).
        seed: the start image and the random views.
        progress: a progress bar on stderr.

    Returns:
        ``Maximized``; images (N, C, H, W) in [0, 1], N = the number of units.
    """
    units = _as_units(unit)
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ExplainError(f"maximize: steps must be a positive int, received {steps!r}")
    for name, value in (("lr", lr), ("l1", l1), ("l2", l2), ("tv", tv)):
        if not np.isfinite(value) or value < 0 or (name == "lr" and value == 0):
            raise ExplainError(f"maximize: {name} must be a finite number >= 0 (lr > 0), "
                               f"received {value!r}")
    if model.input_shape is None:
        raise ExplainError("maximize: the model is not built (it has no input shape)")
    channels = model.input_shape[0]
    hw = tuple(model.input_shape[1:]) if size is None else tuple(int(s) for s in size)
    shape = (len(units), channels) + hw
    if size is not None and hw != tuple(model.input_shape[1:]) and probe.dense_layer_names(model):
        raise ExplainError(
            f"maximize: size {hw} differs from the model's input {tuple(model.input_shape[1:])}, "
            f"which its dense layers fix; size applies to models of conv layers only"
        )
    probe.as_images(model, np.zeros(shape[1:]), "maximize", size_free=size is not None)
    layer = _resolve_layer(model, layer)

    rng = np.random.default_rng(seed)
    image = (param.FourierImage if fourier else param.PixelImage)(shape, rng)
    mean, std = _normalization(model, channels)
    # Start from the neutral image (the pixel the model sees as 0) plus a little noise: a
    # grey start would already excite every unit that likes bright pixels.
    neutral = np.clip(mean, 0.05, 0.95).reshape(1, -1, 1, 1)
    image.set_image(image.image() - 0.5 + neutral)
    robustness = param.default_robustness(min(hw))
    robustness.update(scale=scale, rotate=rotate)
    robustness.update({k: v for k, v in (("pad", pad), ("jitter", jitter)) if v is not None})
    sigma = 0.5 * min(hw) / 28 if blur_sigma is None else blur_sigma
    redirect_steps = steps // 2 if redirect_steps is None else redirect_steps

    start_images = image.image()
    start_out = _activations(model, start_images, layer)
    mask = _target_mask(start_out.shape, units, position, layer).astype(model.dtype)

    def objective(out):
        return (out * mask).sum(axis=tuple(range(1, out.ndim)))

    history = np.zeros((steps, len(units)))
    m = np.zeros_like(image.params)
    v = np.zeros_like(image.params)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in _steps(steps, progress):
        x = image.image()
        view = param.random_transform(rng, hw, mean, **robustness)
        values, grad = probe.input_gradient(
            model, view.apply(x).astype(model.dtype), objective, layer,
            redirect=step < redirect_steps,
        )
        penalty, penalty_grad = param.penalties(x, mean, std, l1, l2, tv)
        history[step] = values - penalty
        g = image.backward(view.adjoint(grad.astype(np.float64)) - penalty_grad)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        t = step + 1
        image.params += lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
        if blur_every and t % blur_every == 0 and t < steps:
            image.set_image(param.blur(image.image(), sigma))
    result = image.image()
    final = objective_values(model, result, layer, mask)
    start = (start_out * mask).reshape(len(units), -1).sum(axis=1).astype(np.float64)
    return Maximized(result, layer, units, history, start, final)


def _steps(steps: int, progress: bool):
    if not progress:
        return range(steps)
    from tqdm import tqdm  # lazy: only for a progress bar

    return tqdm(range(steps), desc="maximize", unit="step", file=sys.stderr, leave=False)


def _activations(model, images: np.ndarray, layer) -> np.ndarray:
    with probe.inspecting(model):
        return probe.forward(model, Tensor(images.astype(model.dtype)), layer).data


def objective_values(model, images: np.ndarray, layer, mask: np.ndarray) -> np.ndarray:
    """Each image's target activation (the masked sum of ``layer``'s output): (N,)."""
    out = _activations(model, images, layer)
    return (out * mask).reshape(len(images), -1).sum(axis=1).astype(np.float64)
