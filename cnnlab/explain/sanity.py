"""Is a saliency map an explanation of the model, or of the image? Adebayo et al. (2018),
"Sanity checks for saliency maps": the cascading model-parameter randomisation test.

The layers' weights are re-initialised cumulatively from the top (the output layer first, then
the one below, ...), and the maps are recomputed after each step. A map that explains what the
model learned must change as the learned weights go: its rank correlation with the original map
falls. A map that stays the same while the model is destroyed (an edge detector would) says
nothing about the model.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np

from cnnlab.explain import figures, probe
from cnnlab.explain.attribution import METHODS, logits, resolve_targets, saliency
from cnnlab.explain.probe import ExplainError
from cnnlab.nn import init
from cnnlab.nn.layer import Layer

__all__ = ["SanityResult", "randomizable_layers", "sanity_check", "sanity_figure", "spearman"]

CONSTANT_INITIALIZERS = ("zeros", "ones")


@dataclasses.dataclass
class SanityResult:
    """The maps and their rank correlations with the original maps, per randomisation step.

    steps: S + 1 labels, "original" then the layer randomised at each step (cumulatively:
    step s has ``steps[1:s + 1]`` randomised). maps: (S + 1, N, H, W). rank_correlation:
    (S + 1,) Spearman's ρ between |original map| and |map at step s|, the mean over the
    images (1 at step 0); signed_rank_correlation: the same without the absolute value;
    per_image and signed_per_image: (S + 1, N) before the mean.
    """

    method: str
    steps: list[str]
    maps: np.ndarray
    rank_correlation: np.ndarray
    signed_rank_correlation: np.ndarray
    per_image: np.ndarray
    signed_per_image: np.ndarray


def randomizable_layers(model) -> list[str]:
    """The layers with a randomly initialised weight (convolutions, dense layers, ...), in the
    order of ``layer_names``; biases and batch-norm scales start constant, so they don't count."""
    names = []
    for name in probe.layer_names(model):
        layer = probe.find_layer(model, name)
        if isinstance(layer, Layer) and layer.input_shape is not None and any(
                spec.trainable and spec.initializer not in CONSTANT_INITIALIZERS
                for spec in layer.weight_specs(tuple(layer.input_shape))):
            names.append(name)
    return names


def _randomize(layer: Layer, rng: np.random.Generator, mode: str) -> None:
    """Re-draw the layer's randomly initialised weights: with its own initialiser (``mode
    "initializer"``) or from N(0, s²), s the trained weight's standard deviation ("gaussian")."""
    for spec in layer.weight_specs(tuple(layer.input_shape)):
        if not spec.trainable or spec.initializer in CONSTANT_INITIALIZERS:
            continue
        weight = getattr(layer, spec.name)
        if mode == "gaussian":
            values = rng.normal(0.0, float(weight.data.std()), weight.shape)
        else:
            values = init.get(spec.initializer)(rng, spec.shape, spec.fan_in, spec.fan_out,
                                                weight.dtype)
        weight.data[...] = values


def spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman's rank correlation of two maps (flattened). A constant map has no ranking:
    two constant maps count as 1 (the same), one constant map against another as 0."""
    from scipy.stats import spearmanr  # lazy: scipy.stats takes a while to import

    a, b = np.ravel(first), np.ravel(second)
    flat_a, flat_b = np.ptp(a) == 0, np.ptp(b) == 0
    if flat_a or flat_b:
        return 1.0 if flat_a and flat_b else 0.0
    return float(spearmanr(a, b).statistic)


def sanity_check(model, images, method="gradient", seed: int = 0, target=None,
                 layers: list[str] | None = None, mode: str = "initializer",
                 options: dict | None = None, progress=None) -> SanityResult:
    """Cascading model-parameter randomisation (Adebayo et al. 2018), on a copy of the model.

    ``method``: a name of ``saliency.METHODS`` (the dict ``options`` goes to it: a
    SmoothGrad seed there stays the same at every step) or a callable
    ``(model, images) -> maps (N, H, W)``. ``layers``: the layers to randomise, top first
    (default: ``randomizable_layers`` reversed, the output layer first). Each step re-draws one
    more layer's weights with its initialiser (``mode="gaussian"``: a Gaussian with the trained
    weight's standard deviation), seeded by ``seed``; biases, batch-norm parameters and running
    statistics are kept. For a named method the target is fixed to the ORIGINAL model's
    prediction (or ``target``), so every step explains the same class. ``model`` is unchanged.
    ``progress(done, total)`` after each step. Returns a ``SanityResult``.
    """
    if mode not in ("initializer", "gaussian"):
        raise ExplainError(f"sanity_check: mode must be 'initializer' or 'gaussian', "
                           f"received {mode!r}")
    images = probe.as_images(model, images, "sanity_check")
    if callable(method):
        explain, label = method, getattr(method, "__name__", "custom method")
    elif isinstance(method, str) and method.replace("-", "_") in METHODS:
        targets = resolve_targets(target, logits(model, images), "sanity_check")
        label = method.replace("-", "_")

        def explain(m, x):
            return saliency(m, x, target=targets, method=label, **(options or {}))
    else:
        raise ExplainError(f"sanity_check: method must be one of {', '.join(METHODS)} or a "
                           f"callable (model, images) -> maps, received {method!r}")
    available = randomizable_layers(model)
    if layers is None:
        layers = available[::-1]
    for name in layers:
        if name not in available:
            raise ExplainError(f"sanity_check: layer {name!r} has no weights to randomise; "
                               f"those that have: {', '.join(available)}")
    if not layers:
        raise ExplainError("sanity_check: the model has no layer with weights to randomise")

    work = copy.deepcopy(model)
    rng = np.random.default_rng(seed)
    maps = [np.asarray(explain(work, images), dtype=np.float64)]
    for step, name in enumerate(layers, 1):
        _randomize(probe.find_layer(work, name), rng, mode)
        maps.append(np.asarray(explain(work, images), dtype=np.float64))
        if progress is not None:
            progress(step, len(layers))
    maps = np.stack(maps)
    per_image = np.array([[spearman(np.abs(maps[0, i]), np.abs(m[i])) for i in range(len(m))]
                          for m in maps])
    signed = np.array([[spearman(maps[0, i], m[i]) for i in range(len(m))] for m in maps])
    return SanityResult(label, ["original", *layers], maps, per_image.mean(axis=1),
                        signed.mean(axis=1), per_image, signed)


def sanity_figure(result: SanityResult, images, path, max_images: int = 3,
                  title: str | None = None) -> Path:
    """A PNG: each image's map (|map|, scaled per panel) at every randomisation step, one row
    per image (at most ``max_images``), and below them the rank-correlation curve."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib
    from matplotlib.figure import Figure

    images = np.asarray(images, dtype=np.float64)
    images = images[None] if images.ndim == 3 else images
    rows = min(max_images, images.shape[0])
    columns = len(result.steps) + 1
    figure = Figure(figsize=(1.5 * columns, 1.5 * rows + 2.6), dpi=100)
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(rows + 1, columns, height_ratios=[1] * rows + [1.6])
    for r in range(rows):
        axis = figure.add_subplot(grid[r, 0])
        picture = np.clip(images[r], 0, 1)
        axis.imshow(picture[0] if picture.shape[0] == 1 else picture.transpose(1, 2, 0),
                    cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axis.set_axis_off()
        if r == 0:
            axis.set_title("image", fontsize=8)
        for s, label in enumerate(result.steps):
            axis = figure.add_subplot(grid[r, s + 1])
            axis.imshow(np.abs(result.maps[s, r]), cmap="inferno", interpolation="nearest")
            axis.set_axis_off()
            if r == 0:
                axis.set_title(label if s == 0 else f"+ {label}", fontsize=8)
    axis = figure.add_subplot(grid[rows, :])
    x = np.arange(len(result.steps))
    axis.plot(x, result.rank_correlation, "o-", label="Spearman ρ of |map|")
    if not np.allclose(result.signed_rank_correlation, result.rank_correlation):
        axis.plot(x, result.signed_rank_correlation, "s--", label="Spearman ρ, signed map")
    axis.set_xticks(x, ["original"] + [f"+ {s}" for s in result.steps[1:]], fontsize=8,
                    rotation=30)
    axis.set_ylim(min(-0.1, float(np.min(result.signed_rank_correlation)) - 0.05), 1.05)
    axis.axhline(0, color="grey", linewidth=0.5)
    axis.set_ylabel("rank correlation\nwith the original")
    axis.legend(fontsize=8, loc="lower left")
    figure.suptitle(title or f"sanity check of {result.method}: layers randomised from the top",
                    fontsize=10)
    return figures.save_figure(figure, path)
