"""Which pixels matter: gradient saliency, SmoothGrad, integrated gradients and Grad-CAM.

Every method explains one class score per image, the LOGIT y_k (not the softmax): the target
is the predicted class by default, or a class number, or one class number per image. Images
are float pixels in [0, 1], (N, C, H, W) (or one (C, H, W)); maps come back as (N, H, W).

- ``gradient``: |∂y_k/∂x|, the largest over the colour channels (Simonyan et al. 2014).
- ``smoothgrad``: that map averaged over noisy copies x + N(0, σ²) (Smilkov et al. 2017).
- ``integrated_gradients``: (x − x̄) · ∫₀¹ ∂y_k/∂x(x̄ + α(x − x̄)) dα from a baseline x̄
  (Sundararajan et al. 2017), with its completeness error.
- ``gradcam``: ReLU(Σ_k α_k A^k) on a conv layer, α_k the mean of ∂y_c/∂A^k over positions,
  upsampled bilinearly to the image (Selvaraju et al. 2017).
"""

from __future__ import annotations

import inspect
from typing import NamedTuple

import numpy as np

from cnnlab.explain import probe
from cnnlab.explain.probe import ExplainError
from cnnlab.nn.conv import Conv2D
from cnnlab.tensor import Tensor, no_grad

__all__ = [
    "METHODS",
    "RULES",
    "IntegratedGradients",
    "batch_for",
    "default_cam_layer",
    "gradcam",
    "gradient",
    "integrated_gradients",
    "logits",
    "path_points",
    "resolve_targets",
    "saliency",
    "smoothgrad",
    "upsample_bilinear",
]

METHODS = ("gradient", "smoothgrad", "integrated_gradients", "gradcam")
RULES = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")


# Images per forward/backward pass when ``batch_size`` is None: about a million pixels (64 at
# 128 px, 16 at 256 px, 4 at 512 px), so that activations stay within a few GB
PIXELS_PER_PASS = 2**20


def batch_for(images: np.ndarray, batch_size: int | None, most: int = 64) -> int:
    """``batch_size``, or when None, as many images as fit ``PIXELS_PER_PASS`` (1 to ``most``)."""
    if batch_size is not None:
        return _positive(batch_size, "batch_size")
    return int(np.clip(PIXELS_PER_PASS // max(1, images.shape[-2] * images.shape[-1]), 1, most))


class IntegratedGradients(NamedTuple):
    """Signed attributions (N, C, H, W) and the completeness error Σattr − (F(x) − F(x̄)) (N,)."""

    attributions: np.ndarray
    delta: np.ndarray


def logits(model, images, batch_size: int | None = None) -> np.ndarray:
    """The logits (N, classes) of images in [0, 1] (N, C, H, W), without a graph."""
    images = probe.as_images(model, images, "logits")
    batch_size = batch_for(images, batch_size, most=256)
    out = []
    with probe.inspecting(model), no_grad():
        for start in range(0, len(images), batch_size):
            out.append(probe.forward(model, Tensor(images[start:start + batch_size])).data)
    return np.concatenate(out).reshape(len(images), -1)


def resolve_targets(target, scores: np.ndarray, owner: str) -> np.ndarray:
    """One class number per image: None → the predicted class (argmax of ``scores`` (N, K)),
    an int → that class for every image, a sequence → one per image. ExplainError otherwise."""
    n, classes = scores.shape
    if target is None:
        return scores.argmax(axis=1)
    values = np.atleast_1d(np.asarray(target))
    if values.dtype.kind not in "iu" or values.ndim != 1 or len(values) not in (1, n):
        raise ExplainError(
            f"{owner}: target must be None, a class number or one per image ({n}), "
            f"received {target!r}"
        )
    if values.min() < 0 or values.max() >= classes:
        raise ExplainError(
            f"{owner}: target class {target!r} is out of range; the model has {classes} "
            f"classes (0 to {classes - 1})"
        )
    return np.broadcast_to(values, (n,)).astype(np.int64)


def _score(targets: np.ndarray, classes: int, dtype):
    """The objective out ↦ y_k per image: the logits times a one-hot of the targets, summed."""
    onehot = np.zeros((len(targets), classes), dtype=dtype)
    onehot[np.arange(len(targets)), targets] = 1
    return lambda out: (out * onehot).sum(axis=1)


def _prepare(model, images, target, owner):
    images = probe.as_images(model, images, owner)
    scores = logits(model, images)
    return images, resolve_targets(target, scores, owner), scores


def _input_gradients(model, images, targets, classes, batch_size, progress=None):
    """(y_k per image (N,), ∂y_k/∂x (N, C, H, W)), ``batch_size`` images per pass."""
    values = np.empty(len(images), dtype=np.float64)
    grads = np.empty_like(images)
    for start in range(0, len(images), batch_size):
        end = start + batch_size
        score = _score(targets[start:end], classes, model.dtype)
        values[start:end], grads[start:end] = probe.input_gradient(model, images[start:end], score)
        if progress is not None:
            progress(min(end, len(images)), len(images))
    return values, grads


def gradient(model, images, target=None, batch_size: int | None = None) -> np.ndarray:
    """Gradient saliency M(i, j) = max_c |∂y_k/∂x_cij|: (N, H, W), y_k the target's logit."""
    images, targets, scores = _prepare(model, images, target, "saliency")
    batch_size = batch_for(images, batch_size)
    _, grads = _input_gradients(model, images, targets, scores.shape[1], batch_size)
    return np.abs(grads).max(axis=1).astype(np.float64)


def smoothgrad(model, images, target=None, samples: int = 50, noise: float = 0.15,
               average: str = "map", seed: int = 0, batch_size: int | None = None,
               progress=None) -> np.ndarray:
    """SmoothGrad: M̂(x) = 1/n Σ_i M(x + ε_i), ε_i ~ N(0, σ²), σ = ``noise``·(max x − min x).

    ``average="map"`` (the paper's figures) averages the gradient maps max_c |∂y_k/∂x|, so the
    absolute value comes BEFORE the mean; ``average="gradient"`` (Captum's NoiseTunnel
    "smoothgrad") averages the signed gradients and takes max_c |.| after, which lets noise
    cancel. The target is chosen on the clean image. The noisy copies are not clipped to
    [0, 1] (as in the paper). Seeded: the same ``seed`` gives the same map. Returns (N, H, W).
    """
    if average not in ("map", "gradient"):
        raise ExplainError(
            f"smoothgrad: average must be 'map' or 'gradient', received {average!r}")
    samples = _positive(samples, "samples")
    if not (np.isfinite(noise) and noise >= 0):
        raise ExplainError(f"smoothgrad: noise must be a number >= 0, received {noise!r}")
    images, targets, scores = _prepare(model, images, target, "saliency")
    n = len(images)
    rng = np.random.default_rng(seed)
    spread = images.reshape(n, -1).max(axis=1) - images.reshape(n, -1).min(axis=1)
    sigma = (noise * np.where(spread > 0, spread, 1.0)).reshape(n, 1, 1, 1)
    total = np.zeros(images.shape if average == "gradient" else (n, *images.shape[2:]))
    # all samples of a few images per pass: (samples · N) copies would not fit at 512 px
    per_pass = batch_for(images, batch_size)
    copies = np.repeat(np.arange(n), samples)
    for start in range(0, len(copies), per_pass):
        index = copies[start:start + per_pass]
        # drawn pass by pass, in order: the same stream as one draw for all, in bounded memory
        noise_part = sigma[index] * rng.standard_normal((len(index), *images.shape[1:]))
        noisy = images[index] + noise_part.astype(images.dtype)
        _, grads = _input_gradients(model, noisy, targets[index], scores.shape[1], per_pass)
        contribution = grads if average == "gradient" else np.abs(grads).max(axis=1)
        np.add.at(total, index, contribution)
        if progress is not None:
            progress(min(start + per_pass, len(copies)), len(copies))
    total /= samples
    return np.abs(total).max(axis=1) if average == "gradient" else total


def _positive(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ExplainError(f"saliency: {name} must be an int >= 1, received {value!r}")
    return int(value)


def path_points(steps: int, rule: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """(α_i, w_i) with ∫₀¹ f(α) dα ≈ Σ_i w_i f(α_i), for ``steps`` points of ``rule``.

    Riemann sums on m = steps intervals: left α_i = i/m (i = 0..m−1), right i/m (i = 1..m),
    middle (i + ½)/m, each with w_i = 1/m; the trapezoid rule on α_i = i/(m−1), i = 0..m−1,
    w = 1/(m−1) halved at both ends; Gauss–Legendre nodes and weights (``numpy.polynomial.
    legendre.leggauss``) mapped from [−1, 1] to [0, 1]. Every rule's weights sum to 1.
    """
    m = _positive(steps, "steps")
    if rule not in RULES:
        raise ExplainError(f"integrated gradients: rule must be one of {', '.join(RULES)}, "
                           f"received {rule!r}")
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(m)
        return (nodes + 1) / 2, weights / 2
    if rule == "riemann_trapezoid":
        if m < 2:
            raise ExplainError("integrated gradients: the trapezoid rule needs steps >= 2")
        weights = np.full(m, 1.0 / (m - 1))
        weights[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, m), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[rule]
    return (np.arange(m) + offset) / m, np.full(m, 1.0 / m)


def _baseline(baseline, images: np.ndarray) -> np.ndarray:
    """The baseline broadcast to the images: a number, (C,), (C, H, W) or (N, C, H, W)."""
    array = np.asarray(baseline, dtype=np.float64)
    if array.ndim == 1:
        array = array.reshape(-1, 1, 1)
    try:
        return np.broadcast_to(array, images.shape).astype(images.dtype)
    except ValueError:
        raise ExplainError(
            f"integrated gradients: a baseline of shape {array.shape} doesn't fit images of "
            f"shape {images.shape}; give a number, one per channel, or an image"
        ) from None


def integrated_gradients(model, images, target=None, baseline=0.0, steps: int = 50,
                         rule: str = "gausslegendre", batch_size: int | None = None,
                         progress=None) -> IntegratedGradients:
    """Integrated gradients and their completeness error.

    IG_i(x) = (x_i − x̄_i) · ∫₀¹ ∂y_k/∂x_i (x̄ + α(x − x̄)) dα
            ≈ (x_i − x̄_i) Σ_s w_s ∂y_k/∂x_i (x̄ + α_s(x − x̄))
    with (α_s, w_s) from ``path_points(steps, rule)``. Completeness: Σ_i IG_i = y_k(x) − y_k(x̄),
    exact for the integral, so ``delta`` = Σ_i IG_i − (y_k(x) − y_k(x̄)) measures the
    quadrature's error. ``baseline``: 0 (a black image, in pixel space), any number, one per
    channel, or an image. The N·steps path points are batched, ``batch_size`` per pass.

    Returns ``IntegratedGradients(attributions (N, C, H, W) signed, delta (N,))``.
    """
    images, targets, scores = _prepare(model, images, target, "integrated gradients")
    alphas, weights = path_points(steps, rule)
    base = _baseline(baseline, images)
    n, m = len(images), len(alphas)
    difference = (images - base).astype(np.float64)
    mean_grad = np.zeros(images.shape)
    # row r of the N·m path points is point s = r mod m of image i = r div m; only one
    # batch of them exists at a time (50 steps of a 512 px image would take 300 MB)
    per_pass = batch_for(images, batch_size)
    for start in range(0, n * m, per_pass):
        rows = np.arange(start, min(start + per_pass, n * m))
        i, s = rows // m, rows % m
        path = base[i] + alphas[s].reshape(-1, 1, 1, 1) * difference[i]
        _, grads = _input_gradients(model, path.astype(images.dtype), targets[i],
                                    scores.shape[1], per_pass)
        np.add.at(mean_grad, i, weights[s].reshape(-1, 1, 1, 1) * grads)
        if progress is not None:
            progress(rows[-1] + 1, n * m)
    attributions = difference * mean_grad
    at_base = logits(model, base)[np.arange(n), targets]
    at_image = scores[np.arange(n), targets]
    delta = attributions.reshape(n, -1).sum(axis=1) - (at_image - at_base)
    return IntegratedGradients(attributions, delta)


def default_cam_layer(model) -> str:
    """Grad-CAM's default layer: the last conv layer's output as the classifier sees it, i.e.
    the last layer whose output has the last conv layer's 4-D shape (its batch norm or ReLU),
    as Keras's example takes the last conv activation. Without a conv layer: the last layer
    with a 4-D output."""
    shapes = _output_shapes(model)
    names = [n for n in probe.layer_names(model) if n in shapes]
    four_d = [n for n in names if len(shapes[n]) == 4]
    convs = [n for n in four_d if isinstance(probe.find_layer(model, n), Conv2D)]
    if convs:
        chosen = convs[-1]
        # follow the layers that keep its shape (batch norm, ReLU); stop at a pooling
        for name in names[names.index(chosen) + 1:]:
            if shapes[name] != shapes[chosen]:
                break
            chosen = name
        return chosen
    if four_d:
        return four_d[-1]
    raise ExplainError("gradcam: the model has no layer with a 4-D (N, C, H, W) output")


def _output_shapes(model) -> dict[str, tuple[int, ...]]:
    """Each called layer's output shape (with the batch axis) for one zero image."""
    from cnnlab.nn.module import record_calls

    modules = {id(m): n for n, m in model.named_modules() if n}
    shape = tuple(model.input_shape)
    with probe.inspecting(model), no_grad(), record_calls() as calls:
        probe.forward(model, Tensor(np.zeros((1, *shape), dtype=model.dtype)))
    return {modules[id(m)]: tuple(out.shape) for m, out in calls if id(m) in modules}


def upsample_bilinear(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, h, w) → (N, H, W) by bilinear interpolation with pixel centres aligned as
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``: output pixel i
    samples the input at (i + ½)·h/H − ½, clamped to the edges."""
    maps = np.asarray(maps, dtype=np.float64)
    out = maps
    for axis, (old, new) in zip((1, 2), ((maps.shape[1], size[0]), (maps.shape[2], size[1]))):
        where = np.clip((np.arange(new) + 0.5) * old / new - 0.5, 0, old - 1)
        low = np.floor(where).astype(int)
        high = np.minimum(low + 1, old - 1)
        frac = (where - low).reshape([-1 if a == axis else 1 for a in range(3)])
        out = np.take(out, low, axis=axis) * (1 - frac) + np.take(out, high, axis=axis) * frac
    return out


def gradcam(model, images, target=None, layer: str | None = None,
            batch_size: int | None = None, upsample: bool = True) -> np.ndarray:
    """Grad-CAM: L^c = ReLU(Σ_k α_k^c A^k), α_k^c = 1/Z Σ_ij ∂y_c/∂A^k_ij (Selvaraju et al.).

    A: the output of ``layer`` (default ``default_cam_layer``), any layer with a 4-D output;
    y_c the target's logit. The (N, h, w) map is upsampled bilinearly to the image's (H, W)
    (``upsample=False`` keeps it at the layer's resolution). Returns (N, H, W), ≥ 0.
    """
    images, targets, scores = _prepare(model, images, target, "gradcam")
    layer = default_cam_layer(model) if layer is None else layer
    probe.find_layer(model, layer)
    maps = []
    batch_size = batch_for(images, batch_size)
    for start in range(0, len(images), batch_size):
        score = _score(targets[start:start + batch_size], scores.shape[1], model.dtype)
        _, activation, grad = probe.layer_gradient(model, images[start:start + batch_size],
                                                   score, layer)
        if activation.ndim != 4:
            raise ExplainError(
                f"gradcam: layer {layer!r} gives outputs of shape {activation.shape[1:]}, not "
                "(C, H, W); choose a conv layer: " + ", ".join(probe.conv_layer_names(model))
            )
        alpha = grad.astype(np.float64).mean(axis=(2, 3), keepdims=True)
        maps.append(np.maximum((alpha * activation).sum(axis=1), 0.0))
    cam = np.concatenate(maps)
    return upsample_bilinear(cam, images.shape[2:]) if upsample else cam


def saliency(model, images, target=None, method: str = "gradient", return_delta: bool = False,
             **options) -> np.ndarray:
    """A saliency map (N, H, W) per image by ``method`` (one of ``METHODS``).

    ``options`` go to the method's function (``smoothgrad``'s samples, noise, seed;
    ``integrated_gradients``' baseline, steps, rule; ``gradcam``'s layer). For integrated
    gradients the map is the signed sum of the attributions over the channels, so each map
    sums to y_k(x) − y_k(x̄) up to the completeness error; ``return_delta=True`` returns
    (maps, delta) for it.
    """
    method = method.replace("-", "_") if isinstance(method, str) else method
    if method not in METHODS:
        raise ExplainError(f"saliency: method must be one of {', '.join(METHODS)}, "
                           f"received {method!r}")
    if return_delta and method != "integrated_gradients":
        raise ExplainError("saliency: return_delta is for method='integrated_gradients' only")
    function = {"gradient": gradient, "smoothgrad": smoothgrad, "gradcam": gradcam,
                "integrated_gradients": integrated_gradients}[method]
    valid = list(inspect.signature(function).parameters)[3:]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ExplainError(f"saliency: {method} takes no option {', '.join(unknown)}; its "
                           f"options are: {', '.join(valid)}")
    if method == "integrated_gradients":
        result = integrated_gradients(model, images, target, **options)
        maps = result.attributions.sum(axis=1)
        return (maps, result.delta) if return_delta else maps
    return function(model, images, target, **options)
