"""A warm start for the ST-CNN's localisation net: learn first to undo the distortion.

End to end, the localisation net learns only from the classifier's loss reaching it through
the sampler. On R that signal is weak: the plain classifier learns rotation-tolerant features by
itself, and in cnnlab's budgets (hundreds to thousands of steps, against the paper's 150,000)
the transformer never learns to turn a ±90° image back (README, "The distorted datasets and
the experiment"). The warm start gives the localisation net that skill first, from the same
material the augmentation arm uses: the clean training images, distorted afresh with the
distortion's own random parameters (``default_rng([seed, 3, epoch])``), whose undoing
transform is known (``cnnlab.data.distort.undoing_theta``: exact for R and RTS, the best
affine for the projective P and the elastic E). The localisation net alone regresses those
parameters (mean squared error, Adam); then the whole ST-CNN trains end to end as before.
The study counts the warm-start epochs in the arm's budget.

Targets, per transform family of ``SpatialTransformer``:

- affine: the six entries of θ (row by row);
- rst: (s, α, t_x, t_y) with s = √|det|, α = atan2(θ₁₀, θ₀₀) of θ's 2×2 part (for R and
  RTS exactly θ; for P and E the nearest rotation-scale);
- translation: (t_x, t_y).
"""

from __future__ import annotations

import time

import numpy as np
from stn_study_report import spatial_transformer

from cnnlab import optim
from cnnlab.data.distort import distort_images, undoing_theta
from cnnlab.training import fit


def target_parameters(transform: str, theta: np.ndarray) -> np.ndarray:
    """(N, K) localisation outputs whose ``transform_theta`` is the undoing ``theta`` (N, 2, 3),
    or for "rst" and "translation" its nearest member of the family."""
    if transform == "affine":
        return theta.reshape(len(theta), 6)
    if transform == "translation":
        return theta[:, :, 2].copy()
    scale = np.sqrt(np.abs(np.linalg.det(theta[:, :, :2])))
    angle = np.arctan2(theta[:, 1, 0], theta[:, 0, 0])
    return np.stack([scale, angle, theta[:, 0, 2], theta[:, 1, 2]], axis=1)


def warm_start(model, clean_train, normalized_like, kind: str, epochs: int, *, lr: float = 1e-3,
               batch_size: int = 64, seed: int = 0, verbose: int = 0) -> float:
    """Train ``model``'s localisation net alone for ``epochs`` to predict the transform that
    undoes fresh ``kind`` distortions of ``clean_train``'s images; return the seconds taken.

    Args:
        model: an ST-CNN (any model holding a built ``SpatialTransformer``).
        clean_train: the clean training images (an ArrayDataset).
        normalized_like: the distorted training split: its mean/std normalise the inputs, as
            ``fit`` will normalise them afterwards.
        kind: 'R', 'RTS', 'P' or 'E'.
    """
    start = time.perf_counter()
    transformer = spatial_transformer(model)
    if transformer is None:
        raise ValueError(f"warm start: {type(model).__name__} has no SpatialTransformer")
    localization = transformer.localization
    # Its own optimiser at the full rate: the localisation's lr_scale is for the end-to-end phase.
    optimizer = optim.get_optimizer("adam", localization.parameters(), lr=lr)
    for epoch in range(epochs):
        images, params = distort_images(clean_train.images, kind, [seed, 3, epoch],
                                        return_parameters=True)
        theta = undoing_theta(kind, params, clean_train.image_shape[1:])
        targets = target_parameters(transformer.transform, theta)
        inputs = normalized_like.normalize(images).astype(localization.dtype, copy=False)
        fit(localization, (inputs, targets.astype(localization.dtype)), epochs=1,
            batch_size=batch_size, optimizer=optimizer, loss="mse", seed=seed + epoch,
            verbose=verbose)
    return time.perf_counter() - start
