"""The distorted datasets of the spatial transformer paper: R, RTS, P and E.

Jaderberg, Simonyan, Zisserman and Kavukcuoglu, "Spatial Transformer Networks" (NIPS 2015),
section 4.1 and appendix A.1, distort MNIST four ways. Each kind here is one warp per image,
applied in a single bilinear resampling pass (zeros outside the image):

- **R**: rotation uniform in [−90°, +90°] about the centre (28×28 stays 28×28).
- **RTS**: rotation uniform in [−45°, +45°], scaling uniform in [0.7, 1.2], then the 28×28
  frame is placed at a uniformly random position on a 42×42 canvas: its centre moves by up to
  (42 − 28·s)/2 pixels along each axis, so the scaled frame stays on the canvas.
- **P**: scaling uniform in [0.75, 1.0] about the centre, then a projective warp that moves
  each of the four corners of the frame by a zero-mean Gaussian with a standard deviation of
  5 pixels.
- **E**: scaling uniform in [0.75, 1.0], then a thin-plate-spline warp whose 16 control
  points on a regular 4×4 grid over the frame are moved by a zero-mean Gaussian with a
  standard deviation of 1.5 pixels. ``elastic_warp`` gives Simard et al.'s (2003) smoothed
  random displacement field instead (α = 34, σ = 4, their MNIST setting).

The P and E parameters are those of the paper's appendix as we read it (the text gives them in
pixels of the 28×28 digit); R and RTS are stated in section 4.1.

Coordinates are (x, y) = (column, row) with row 0 at the top; every warp is written as the map
from an output pixel d to the source point s that it samples (backward mapping):

- affine (R, RTS): ``s = A⁻¹ (d − c_out − t) + c_in`` with ``A = scale · R(θ)`` and c the
  frame centres ((W − 1)/2, (H − 1)/2); θ > 0 turns the content counter-clockwise on screen,
  so a quarter turn equals ``np.rot90(x, 1, axes=(2, 3))``.
- projective (P): ``s = h(d)`` with h the homography
  ``h(d) = (H₁₁u + H₁₂v + H₁₃, H₂₁u + H₂₂v + H₂₃) / (H₃₁u + H₃₂v + 1)`` that takes each
  moved corner ``c + scale · (k − c) + δₖ`` back to the corner k.
- thin-plate spline (E): ``s = c + (f(d) − c) / scale`` with
  ``f(d) = a₀ + A d + Σᵢ wᵢ U(‖d − pᵢ‖)``, ``U(r) = r² log r²``, interpolating
  ``f(pᵢ) = pᵢ + δᵢ`` at the control points pᵢ (Bookstein 1989).
- elastic (Simard): ``s = d + α · (G_σ * u)(d)`` with u uniform in [−1, 1] per pixel and
  axis, and G_σ a Gaussian filter.

``distort_images(images, kind, seed)`` draws the parameters from ``default_rng(seed)`` and
warps uint8 images, chunk by chunk; ``distort_splits(splits, kind, seed)`` distorts a dataset's
train and test splits (from independent streams) and recomputes the normalisation on the
distorted training split, as ``load_dataset`` does.
"""

from __future__ import annotations

import numpy as np

from cnnlab._checks import check_choice, check_int, check_number
from cnnlab.data.augment import _bilinear_sample, _check_images, _restore_dtype
from cnnlab.data.dataset import ArrayDataset, Splits, pixel_stats

__all__ = [
    "KINDS",
    "affine_place",
    "distort_dataset",
    "distort_images",
    "distort_splits",
    "elastic_warp",
    "output_size",
    "projective_warp",
    "random_parameters",
    "tps_warp",
    "undoing_theta",
]

#: the paper's four distortions
KINDS = ("R", "RTS", "P", "E")

RTS_CANVAS = 42
P_CORNER_STD = 5.0
E_CONTROL_STD = 1.5
E_GRID = 4
SIMARD_ALPHA = 34.0
SIMARD_SIGMA = 4.0
#: images warped at once: bounds the float work arrays to a few tens of MB
CHUNK = 2048


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Output pixel coordinates (x, y), each (H, W), in float64."""
    ys, xs = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64),
                         indexing="ij")
    return xs, ys


def _sample(images: np.ndarray, src_x: np.ndarray, src_y: np.ndarray) -> np.ndarray:
    work = images.astype(np.float32) if images.dtype.kind != "f" else images
    return _restore_dtype(_bilinear_sample(work, src_y, src_x), images.dtype)


def _per_image(value, count: int, shape: tuple, owner: str, name: str) -> np.ndarray:
    value = np.asarray(value, dtype=np.float64)
    if value.shape == shape:
        return np.broadcast_to(value, (count,) + shape)
    if value.shape != (count,) + shape:
        raise ValueError(f"{owner}: {name} must have shape {shape} or {(count,) + shape}, "
                         f"received {value.shape}")
    return value


def output_size(kind: str, image_size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of kind's images made from images of ``image_size``: RTS gives the 42×42 canvas."""
    kind = check_choice(kind, KINDS, "output_size", "kind")
    if kind == "RTS":
        return (max(RTS_CANVAS, image_size[0]), max(RTS_CANVAS, image_size[1]))
    return tuple(image_size)


def affine_place(images, degrees, scale, offset, canvas=None) -> np.ndarray:
    """Rotate, scale and place each image on a canvas: ``d = s·R(θ)(src − c_in) + c_out + t``.

    Args:
        images: (N, C, H, W) array (uint8 or float).
        degrees: θ per image, (N,) or a scalar; positive turns counter-clockwise on screen.
        scale: magnification per image, (N,) or a scalar (> 0).
        offset: t = (tx, ty) in pixels from the canvas centre, (2,) or (N, 2).
        canvas: (H_out, W_out); None keeps the image size.

    Returns:
        (N, C, H_out, W_out) of the input's dtype. ``degrees=0, scale=1, offset=0`` on the
        image's own size returns the input exactly.
    """
    images = _check_images(images, "affine_place")
    n, _, height, width = images.shape
    out_h, out_w = (height, width) if canvas is None else canvas
    theta = np.deg2rad(_per_image(degrees, n, (), "affine_place", "degrees"))
    scale = _per_image(scale, n, (), "affine_place", "scale")
    if np.any(scale <= 0):
        raise ValueError(f"affine_place: scale must be > 0, received {scale.min()}")
    offset = _per_image(offset, n, (2,), "affine_place", "offset")
    src = _affine_source(theta, scale, offset, (height, width), (out_h, out_w))
    return _sample(images, src[..., 0].reshape(n, out_h, out_w),
                   src[..., 1].reshape(n, out_h, out_w))


def _affine_source(theta, scale, offset, size, out_size) -> np.ndarray:
    """The source point s (N, H_out·W_out, 2) of every output pixel of ``affine_place``."""
    (height, width), (out_h, out_w) = size, out_size
    xs, ys = _grid(out_h, out_w)
    rel_x = xs.ravel()[None] - (out_w - 1) / 2 - offset[:, 0, None]
    rel_y = ys.ravel()[None] - (out_h - 1) / 2 - offset[:, 1, None]
    # A = s·R(θ) with y pointing down; its inverse is R(−θ)/s.
    cos = (np.cos(theta) / scale)[:, None]
    sin = (np.sin(theta) / scale)[:, None]
    return np.stack([cos * rel_x - sin * rel_y + (width - 1) / 2,
                     sin * rel_x + cos * rel_y + (height - 1) / 2], -1)


def undoing_theta(kind: str, params: dict, image_size: tuple[int, int]) -> np.ndarray:
    """θ (N, 2, 3) for ``affine_grid`` that turns distorted images back into the clean ones.

    Sampling a distorted image (H_out, W_out) with ``grid_sample(d, affine_grid(θ, d.shape))``
    (align_corners=False) should give the clean image centred on the same canvas at its own
    scale (for R, P and E: the clean image).

    - R, RTS (exact): the output point q reads the input at ``p = c_out + t + A (q − c_out)``
      with ``A = s·[[cos θ, sin θ], [−sin θ, cos θ]]`` (the distortion's own A, see the
      module); in normalised coordinates ``θ = [S A S⁻¹ | S t]`` with
      ``S = diag(2/W_out, 2/H_out)``. Its angle atan2(θ₁₀, θ₀₀) is −θ_drawn, its scale s.
    - P, E (the best affine, since no affine undoes a projective or elastic warp): the least
      squares fit of ``S(d − c) ≈ θ [S(s(d) − c); 1]`` over the distorted pixels d whose
      source point s(d) lies inside the clean frame (``_fitted_undoing``).

    Args:
        kind: 'R', 'RTS', 'P' or 'E'.
        params: the drawn parameters (``distort_images(..., return_parameters=True)``).
        image_size: (H, W) of the clean images.
    """
    kind = check_choice(kind, KINDS, "undoing_theta", "kind")
    height, width = image_size
    if kind == "P":
        scale = np.asarray(params["scale"], dtype=np.float64)
        shift = np.asarray(params["corner_shift"], dtype=np.float64)
        return _fitted_undoing(_projective_source(scale, shift, height, width), height, width)
    if kind == "E":
        scale = np.asarray(params["scale"], dtype=np.float64)
        shift = np.asarray(params["control_shift"], dtype=np.float64)
        return _fitted_undoing(_tps_source(scale, shift, height, width, E_GRID), height, width)
    degrees = np.asarray(params["degrees"], dtype=np.float64)
    count = len(degrees)
    scale = np.asarray(params.get("scale", 1.0), dtype=np.float64) * np.ones(count)
    offset = np.asarray(params.get("offset", 0.0), dtype=np.float64) * np.ones((count, 2))
    out_h, out_w = output_size(kind, tuple(image_size))
    angle = np.deg2rad(degrees)
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    theta = np.empty((count, 2, 3))
    # S A S⁻¹: the off-diagonal terms pick up the aspect ratio W/H.
    theta[:, 0, 0], theta[:, 0, 1] = cos, sin * out_h / out_w
    theta[:, 1, 0], theta[:, 1, 1] = -sin * out_w / out_h, cos
    theta[:, 0, 2] = 2 * offset[:, 0] / out_w
    theta[:, 1, 2] = 2 * offset[:, 1] / out_h
    return theta


def _fitted_undoing(src: np.ndarray, height: int, width: int) -> np.ndarray:
    """The least-squares θ (N, 2, 3) mapping each source point s(d) (normalised) to its
    distorted pixel d, over the pixels whose source lies inside the frame; src (N, H·W, 2)."""
    xs, ys = _grid(height, width)
    norm = np.array([2.0 / width, 2.0 / height])
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    target = (np.stack([xs.ravel(), ys.ravel()], -1) - centre) * norm     # p = d, normalised
    inside = ((src[..., 0] >= 0) & (src[..., 0] <= width - 1)
              & (src[..., 1] >= 0) & (src[..., 1] <= height - 1)).astype(np.float64)
    design = np.concatenate([(src - centre) * norm, np.ones(src.shape[:2] + (1,))], -1)
    weighted = design * inside[..., None]
    # A whisker of ridge towards the identity: an image whose frame the warp folds onto too
    # few pixels to fix an affine gets the identity in the directions they leave free.
    ridge = 1e-9 * np.eye(3)
    normal = weighted.transpose(0, 2, 1) @ design + ridge                 # (N, 3, 3)
    right = weighted.transpose(0, 2, 1) @ target + ridge @ _IDENTITY_T    # (N, 3, 2)
    return np.linalg.solve(normal, right).transpose(0, 2, 1)


#: the identity θ, transposed (3, 2): rows x, y, 1
_IDENTITY_T = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])


def _corners(height: int, width: int) -> np.ndarray:
    return np.array([[0.0, 0.0], [width - 1.0, 0.0], [width - 1.0, height - 1.0],
                     [0.0, height - 1.0]])


def _homographies(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """H (N, 3, 3) with H₃₃ = 1 taking each of 4 ``source`` points (N, 4, 2) to ``target``."""
    n = len(source)
    u, v = source[..., 0], source[..., 1]
    x, y = target[..., 0], target[..., 1]
    zero, one = np.zeros_like(u), np.ones_like(u)
    rows_x = np.stack([u, v, one, zero, zero, zero, -u * x, -v * x], -1)
    rows_y = np.stack([zero, zero, zero, u, v, one, -u * y, -v * y], -1)
    system = np.concatenate([rows_x, rows_y], axis=1)
    rhs = np.concatenate([x, y], axis=1)
    h = np.linalg.solve(system, rhs[..., None])[..., 0]
    return np.concatenate([h, np.ones((n, 1))], axis=1).reshape(n, 3, 3)


def projective_warp(images, scale, corner_shift) -> np.ndarray:
    """Shrink each image about its centre by ``scale``, then move its frame's corners.

    Args:
        images: (N, C, H, W).
        scale: (N,) or a scalar (> 0).
        corner_shift: δ (N, 4, 2) or (4, 2), in pixels (x, y) for the corners top-left,
            top-right, bottom-right, bottom-left of the scaled frame.

    Returns:
        (N, C, H, W); ``scale=1, corner_shift=0`` returns the input.
    """
    images = _check_images(images, "projective_warp")
    n, _, height, width = images.shape
    scale = _per_image(scale, n, (), "projective_warp", "scale")
    if np.any(scale <= 0):
        raise ValueError(f"projective_warp: scale must be > 0, received {scale.min()}")
    shift = _per_image(corner_shift, n, (4, 2), "projective_warp", "corner_shift")
    src = _projective_source(scale, shift, height, width)
    return _sample(images, src[..., 0].reshape(n, height, width),
                   src[..., 1].reshape(n, height, width))


def _projective_source(scale, shift, height: int, width: int) -> np.ndarray:
    """The source point s (N, H·W, 2) of every output pixel of ``projective_warp``."""
    corners = _corners(height, width)
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    moved = centre + scale[:, None, None] * (corners - centre) + shift
    homography = _homographies(moved, np.broadcast_to(corners, moved.shape))
    xs, ys = _grid(height, width)
    points = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    mapped = homography @ points
    # h takes the scaled, moved corners to the source corners: it includes the scaling.
    return (mapped[:, :2] / mapped[:, 2:]).transpose(0, 2, 1)


def _tps_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """U(‖a − b‖) = r² log r² between point sets a (P, 2) and b (Q, 2); U(0) = 0."""
    r2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r2 > 0, r2 * np.log(np.where(r2 > 0, r2, 1.0)), 0.0)


def _control_points(height: int, width: int, grid: int) -> np.ndarray:
    gy, gx = np.meshgrid(np.linspace(0, height - 1, grid), np.linspace(0, width - 1, grid),
                         indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], -1)


def tps_warp(images, scale, control_shift, grid: int = E_GRID) -> np.ndarray:
    """Shrink each image by ``scale``, then warp it with a thin-plate spline (see the module).

    Args:
        images: (N, C, H, W).
        scale: (N,) or a scalar (> 0).
        control_shift: δ (N, grid², 2) or (grid², 2), pixels (x, y) added to the source point
            of each control point pᵢ; the points lie on a regular grid×grid lattice over the
            frame, row by row from the top left.
        grid: control points per side (≥ 2).

    Returns:
        (N, C, H, W); ``scale=1, control_shift=0`` returns the input.
    """
    images = _check_images(images, "tps_warp")
    grid = check_int(grid, "tps_warp", "grid", minimum=2)
    n, _, height, width = images.shape
    scale = _per_image(scale, n, (), "tps_warp", "scale")
    if np.any(scale <= 0):
        raise ValueError(f"tps_warp: scale must be > 0, received {scale.min()}")
    shift = _per_image(control_shift, n, (grid * grid, 2), "tps_warp", "control_shift")
    src = _tps_source(scale, shift, height, width, grid)
    return _sample(images, src[..., 0].reshape(n, height, width),
                   src[..., 1].reshape(n, height, width))


def _tps_source(scale, shift, height: int, width: int, grid: int) -> np.ndarray:
    """The source point s (N, H·W, 2) of every output pixel of ``tps_warp``."""
    n = len(scale)
    points = _control_points(height, width, grid)
    count = len(points)
    # The interpolation system [[K, P], [Pᵀ, 0]] depends on the control points only.
    affine = np.concatenate([np.ones((count, 1)), points], axis=1)
    system = np.zeros((count + 3, count + 3))
    system[:count, :count] = _tps_kernel(points, points)
    system[:count, count:] = affine
    system[count:, :count] = affine.T
    rhs = np.zeros((n, count + 3, 2))
    rhs[:, :count] = points + shift
    weights = np.linalg.solve(system, rhs.transpose(1, 0, 2).reshape(count + 3, -1))
    weights = weights.reshape(count + 3, n, 2).transpose(1, 0, 2)
    xs, ys = _grid(height, width)
    pixels = np.stack([xs.ravel(), ys.ravel()], -1)
    basis = np.concatenate([_tps_kernel(pixels, points), np.ones((len(pixels), 1)), pixels], 1)
    src = basis @ weights
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    return centre + (src - centre) / scale[:, None, None]


def elastic_warp(images, alpha: float = SIMARD_ALPHA, sigma: float = SIMARD_SIGMA,
                 seed: int = 0) -> np.ndarray:
    """Simard et al.'s elastic distortion: ``s = d + α · (G_σ * u)(d)``, u ~ U(−1, 1).

    Each image gets its own random field (from ``default_rng(seed)``); ``alpha=0`` returns the
    input. Simard et al. (ICDAR 2003) use σ = 4 and α = 34 for MNIST.
    """
    from scipy.ndimage import gaussian_filter

    images = _check_images(images, "elastic_warp")
    alpha = check_number(alpha, "elastic_warp", "alpha", low=0)
    sigma = check_number(sigma, "elastic_warp", "sigma", low=0, low_open=True)
    rng = np.random.default_rng(seed)
    n, _, height, width = images.shape
    xs, ys = _grid(height, width)
    out = np.empty_like(images)
    for start in range(0, n, CHUNK):
        field = rng.uniform(-1, 1, size=(2, min(CHUNK, n - start), height, width))
        field = gaussian_filter(field, sigma=(0, 0, sigma, sigma), mode="constant") * alpha
        out[start:start + CHUNK] = _sample(images[start:start + CHUNK], xs + field[0],
                                           ys + field[1])
    return out


def random_parameters(kind: str, count: int, rng: np.random.Generator,
                      image_size: tuple[int, int] = (28, 28)) -> dict:
    """Draw the paper's random parameters of ``kind`` for ``count`` images (see the module)."""
    kind = check_choice(kind, KINDS, "random_parameters", "kind")
    if kind == "R":
        return {"degrees": rng.uniform(-90, 90, count)}
    if kind == "RTS":
        degrees = rng.uniform(-45, 45, count)
        scale = rng.uniform(0.7, 1.2, count)
        out_h, out_w = output_size("RTS", image_size)
        room = np.stack([(out_w - image_size[1] * scale) / 2,
                         (out_h - image_size[0] * scale) / 2], -1)
        offset = rng.uniform(-1, 1, (count, 2)) * np.maximum(room, 0)
        return {"degrees": degrees, "scale": scale, "offset": offset}
    scale = rng.uniform(0.75, 1.0, count)
    if kind == "P":
        return {"scale": scale, "corner_shift": rng.normal(0, P_CORNER_STD, (count, 4, 2))}
    return {"scale": scale, "control_shift": rng.normal(0, E_CONTROL_STD, (count, E_GRID ** 2, 2))}


def _warp(kind: str, images: np.ndarray, params: dict) -> np.ndarray:
    if kind == "R":
        return affine_place(images, params["degrees"], 1.0, (0.0, 0.0))
    if kind == "RTS":
        return affine_place(images, params["degrees"], params["scale"], params["offset"],
                            canvas=output_size("RTS", images.shape[2:]))
    if kind == "P":
        return projective_warp(images, params["scale"], params["corner_shift"])
    return tps_warp(images, params["scale"], params["control_shift"])


def distort_images(images, kind: str, seed=0, return_parameters: bool = False):
    """Distort every image with random parameters of ``kind`` drawn from ``default_rng(seed)``.

    Args:
        images: (N, C, H, W) uint8 (or float) images.
        kind: 'R', 'RTS', 'P' or 'E'.
        seed: an int or a sequence of ints (``np.random.default_rng`` accepts both).
        return_parameters: also return the drawn parameters (a dict of arrays).

    Returns:
        (N, C, H', W') of the input's dtype (42×42 for RTS on 28×28 images).
    """
    images = _check_images(images, "distort_images")
    kind = check_choice(kind, KINDS, "distort_images", "kind")
    rng = np.random.default_rng(seed)
    params = random_parameters(kind, len(images), rng, images.shape[2:])
    out_h, out_w = output_size(kind, images.shape[2:])
    out = np.empty(images.shape[:2] + (out_h, out_w), dtype=images.dtype)
    for start in range(0, len(images), CHUNK):
        part = {key: value[start:start + CHUNK] for key, value in params.items()}
        out[start:start + CHUNK] = _warp(kind, images[start:start + CHUNK], part)
    return (out, params) if return_parameters else out


def distort_dataset(dataset: ArrayDataset, kind: str, seed=0, mean=None, std=None) -> ArrayDataset:
    """One ``ArrayDataset`` distorted (labels and class names kept), named ``'<name> (<kind>)'``.

    ``mean``/``std`` default to the distorted images' own statistics.
    """
    if not isinstance(dataset, ArrayDataset):
        raise TypeError(f"distort_dataset: expected an ArrayDataset, received {type(dataset).__name__}")
    images = distort_images(dataset.images, kind, seed)
    if mean is None or std is None:
        mean, std = pixel_stats(images)
    return ArrayDataset(images, dataset.labels, dataset.class_names, f"{dataset.name} ({kind})",
                        mean=mean, std=std)


def distort_splits(splits, kind: str, seed: int = 0) -> Splits:
    """Distort a dataset's train and test splits, like the paper's distorted MNIST.

    The training split is drawn from ``default_rng([seed, 0])``, the test split from
    ``default_rng([seed, 1])``; the test split takes the distorted training split's mean/std.
    """
    seed = check_int(seed, "distort_splits", "seed", minimum=0)
    train, test = splits
    train = distort_dataset(train, kind, [seed, 0])
    test = distort_dataset(test, kind, [seed, 1], mean=train.mean, std=train.std)
    return Splits(train, test)
