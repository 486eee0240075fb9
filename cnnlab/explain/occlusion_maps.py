"""What happens when part of the image is covered: occlusion sensitivity (Zeiler & Fergus 2014).

A patch × patch square of a baseline value slides over the image with a stride; each position
gives the drop in the target class's probability, p_k(x) − p_k(x with the square covered),
and each pixel gets the mean drop over the squares that cover it, as Captum's ``Occlusion``.
"""

from __future__ import annotations

import numpy as np

from cnnlab.explain import probe
from cnnlab.explain.attribution import batch_for, logits, resolve_targets
from cnnlab.explain.probe import ExplainError

__all__ = ["default_patch", "occlusion", "patch_starts"]


def default_patch(size: int) -> tuple[int, int]:
    """(patch, stride) for an image side of ``size`` pixels: a patch of about a seventh of the
    side (4 px on a 28 px image, 32 on 224), at least 1, and a stride of half the patch."""
    patch = max(1, round(size / 7))
    return patch, max(1, patch // 2)


def patch_starts(size: int, patch: int, stride: int) -> list[int]:
    """The start of each square along a side: 0, stride, 2·stride, ..., plus one flush with the
    far edge when the stride doesn't reach it, so that every pixel is covered."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def _check_size(value, name: str, size: int) -> int:
    whole = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not whole or not 1 <= value <= size:
        raise ExplainError(
            f"occlusion: {name} must be an int from 1 to the image's side {size}, received "
            f"{value!r}"
        )
    return int(value)


def occlusion(model, image, target=None, patch: int | None = None, stride: int | None = None,
              baseline=0.0, score: str = "probability", batch_size: int | None = None,
              progress=None) -> np.ndarray:
    """The drop in the target's probability when a square around each pixel is covered.

    Map(i, j) = mean over the squares S ∋ (i, j) of p_k(x) − p_k(x with S set to the baseline),
    p = softmax(logits). ``image``: (C, H, W) (or (1, C, H, W)) in [0, 1]; ``target``: class
    number, default the predicted class; ``patch``, ``stride``: the square's side and step in
    pixels (default ``default_patch(min(H, W))``); ``baseline``: the covering value, a number
    (0: black) or one per channel. ``score="logit"`` maps the drop in the logit y_k instead:
    a confident prediction (p ≈ 1) saturates the softmax, so that most squares change p by
    almost nothing while they still move the logit. ``batch_size`` images go through the model per pass, the
    uncovered one and the covered copies (default ``saliency.batch_for``);
    ``progress(done, total)`` is called after each batch. Returns (H, W), float64: positive
    where covering hurts the prediction, negative where it helps.
    """
    if score not in ("probability", "logit"):
        raise ExplainError(f"occlusion: score must be 'probability' or 'logit', received {score!r}")
    images = probe.as_images(model, image, "occlusion")
    if len(images) != 1:
        raise ExplainError(f"occlusion: expected one image, received {len(images)}")
    x = images[0]
    channels, height, width = x.shape
    side = min(height, width)
    patch = _check_size(default_patch(side)[0] if patch is None else patch, "patch", side)
    stride = _check_size(max(1, patch // 2) if stride is None else stride, "stride", side)
    fill = np.asarray(baseline, dtype=np.float64)
    if fill.ndim > 1 or fill.size not in (1, channels) or not np.isfinite(fill).all():
        raise ExplainError(
            f"occlusion: baseline must be a number or one per channel ({channels}), received "
            f"{baseline!r}"
        )
    fill = fill.reshape(-1, 1, 1).astype(x.dtype)
    base_logits = logits(model, images)
    k = int(resolve_targets(target, base_logits, "occlusion")[0])

    batch_size = max(1, batch_for(images, batch_size) - 1)  # one row: the uncovered image
    squares = [(r, c) for r in patch_starts(height, patch, stride)
               for c in patch_starts(width, patch, stride)]
    total = np.zeros((height, width))
    count = np.zeros((height, width))
    for start in range(0, len(squares), batch_size):
        chunk = squares[start:start + batch_size]
        # row 0 stays uncovered: the drop is then measured within one batched pass, so that
        # squares the model ignores give exactly 0 (one image alone may take another BLAS path)
        covered = np.repeat(images, len(chunk) + 1, axis=0)
        for copy, (r, c) in zip(covered[1:], chunk):
            copy[:, r:r + patch, c:c + patch] = fill
        scores = logits(model, covered)
        values = _softmax(scores)[:, k] if score == "probability" else scores[:, k]
        drops = values[0] - values[1:]
        for drop, (r, c) in zip(drops, chunk):
            total[r:r + patch, c:c + patch] += drop
            count[r:r + patch, c:c + patch] += 1
        if progress is not None:
            progress(min(start + batch_size, len(squares)), len(squares))
    return total / count


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
