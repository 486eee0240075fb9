"""Geometric and photometric augmentation for NCHW image batches, vectorised over the batch.

A CNN's convolutions are equivariant to translation, and pooling adds a little translation
invariance, but nothing in the architecture makes it invariant to rotation or scale: it has to
see rotated and rescaled examples. Every geometric transform here is one affine map per image,
applied in a single bilinear resampling pass, so combining a shift, a rotation, a scaling and a
flip blurs the image once, not four times.

Conventions (row 0 is the top of the image, as displayed):

- ``shift_images(x, dx, dy)`` moves the content ``dx`` pixels right and ``dy`` pixels down.
- ``rotate_images(x, degrees)`` rotates counter-clockwise about the image centre, so
  ``rotate_images(x, 90)`` equals ``np.rot90(x, 1, axes=(2, 3))`` for a square image.
- ``scale_images(x, factor)`` magnifies about the centre (``factor > 1`` zooms in).

The size is kept and pixels coming from outside the image are 0. Integer and float inputs are
both accepted; the result has the input's dtype (integers are rounded and clipped to their range).
Per-image parameters may be scalars or arrays of shape (N,).

For an output pixel d (x = column, y = row, centre c, translation t) the source pixel is
``s = A⁻¹ (d − c − t) + c`` with ``A = factor · R(θ) · F``; the value there is the bilinear
interpolation of its four neighbours, with zeros outside the image.
"""

from __future__ import annotations

import numbers
import re

import numpy as np
from PIL import Image

from cnnlab._checks import check_int, check_number, check_type

__all__ = [
    "AUGMENT_OPTIONS",
    "Augmentation",
    "affine_images",
    "flip_images",
    "parse_augment_spec",
    "resize_images",
    "rotate_images",
    "scale_images",
    "shift_images",
]


def _check_images(images, name: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"{name}: expected images of shape (N, C, H, W), received shape {images.shape}")
    if images.dtype.kind not in "uif":
        raise ValueError(f"{name}: expected an integer or float image array, received dtype {images.dtype}")
    return images


def _per_image(value, count: int, name: str, what: str) -> np.ndarray:
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 0:
        return np.full(count, float(value))
    if value.shape != (count,):
        raise ValueError(f"{name}: {what} must be a scalar or have shape ({count},), received shape "
                         f"{value.shape}")
    return value


def _restore_dtype(result: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "f":
        return result.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    return np.clip(np.rint(result), info.min, info.max).astype(dtype)


def _bilinear_sample(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample float images (N, C, H, W) at source coordinates rows/cols (N, H_out, W_out), zero outside."""
    n, channels, height, width = images.shape
    # Coordinates within 1e-6 of an integer are snapped to it, so integer shifts and quarter turns
    # reproduce pixels exactly despite round-off in cos/sin.
    rows = np.clip(np.round(rows, 6), -1.0, float(height))
    cols = np.clip(np.round(cols, 6), -1.0, float(width))
    row0 = np.floor(rows)
    col0 = np.floor(cols)
    row_weight = (rows - row0).astype(images.dtype)
    col_weight = (cols - col0).astype(images.dtype)
    # One zero row/column before and two after, so indices -1 .. H+1 are valid and read zeros.
    padded = np.zeros((n, channels, height + 3, width + 3), dtype=images.dtype)
    padded[:, :, 1:height + 1, 1:width + 1] = images
    flat = padded.reshape(n, channels, -1)
    stride = width + 3
    base = (row0.astype(np.intp) + 1) * stride + (col0.astype(np.intp) + 1)
    base = base.reshape(n, 1, -1)
    out_shape = (n, channels) + rows.shape[1:]

    def gather(offset):
        return np.take_along_axis(flat, base + offset, axis=2).reshape(out_shape)

    row_weight = row_weight[:, None]
    col_weight = col_weight[:, None]
    top = gather(0) * (1 - col_weight) + gather(1) * col_weight
    bottom = gather(stride) * (1 - col_weight) + gather(stride + 1) * col_weight
    return top * (1 - row_weight) + bottom * row_weight


def affine_images(images, matrix, translation=(0.0, 0.0)) -> np.ndarray:
    """Apply the affine map ``d = A (s − c) + c + t`` to each image, about its centre.

    Args:
        images: (N, C, H, W) array.
        matrix: A, (2, 2) or (N, 2, 2), acting on (x, y) = (column, row) coordinates.
        translation: t = (tx, ty) in pixels, shape (2,) or (N, 2).

    Returns:
        (N, C, H, W) array of the input's dtype.
    """
    images = _check_images(images, "affine_images")
    n, _, height, width = images.shape
    matrix = np.broadcast_to(np.asarray(matrix, dtype=np.float64), (n, 2, 2))
    translation = np.broadcast_to(np.asarray(translation, dtype=np.float64), (n, 2))
    inverse = np.linalg.inv(matrix)
    center_x, center_y = (width - 1) / 2.0, (height - 1) / 2.0
    ys, xs = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64),
                         indexing="ij")
    rel_x = xs[None] - center_x - translation[:, 0, None, None]
    rel_y = ys[None] - center_y - translation[:, 1, None, None]
    src_x = inverse[:, 0, 0, None, None] * rel_x + inverse[:, 0, 1, None, None] * rel_y + center_x
    src_y = inverse[:, 1, 0, None, None] * rel_x + inverse[:, 1, 1, None, None] * rel_y + center_y
    work_dtype = images.dtype if images.dtype.kind == "f" else np.float32
    result = _bilinear_sample(images.astype(work_dtype, copy=False), src_y, src_x)
    return _restore_dtype(result, images.dtype)


def _rotation(degrees: np.ndarray) -> np.ndarray:
    theta = np.deg2rad(degrees)
    cos, sin = np.cos(theta), np.sin(theta)
    # Counter-clockwise on screen, with y pointing down.
    return np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)


def shift_images(images, dx, dy) -> np.ndarray:
    """Translate each image by (dx, dy) pixels: right by dx, down by dy; vacated pixels are 0.

    Integer shifts move pixels exactly; fractional shifts interpolate bilinearly.
    """
    images = _check_images(images, "shift_images")
    n = len(images)
    dx = _per_image(dx, n, "shift_images", "dx")
    dy = _per_image(dy, n, "shift_images", "dy")
    return affine_images(images, np.eye(2), np.stack([dx, dy], -1))


def rotate_images(images, degrees) -> np.ndarray:
    """Rotate each image counter-clockwise by ``degrees`` about its centre, keeping its size."""
    images = _check_images(images, "rotate_images")
    degrees = _per_image(degrees, len(images), "rotate_images", "degrees")
    return affine_images(images, _rotation(degrees))


def scale_images(images, factor) -> np.ndarray:
    """Magnify each image by ``factor`` about its centre, keeping its size (fill 0 when shrinking)."""
    images = _check_images(images, "scale_images")
    factor = _per_image(factor, len(images), "scale_images", "factor")
    if np.any(factor <= 0):
        raise ValueError(f"scale_images: factor must be > 0, received {factor[factor <= 0][0]}")
    return affine_images(images, factor[:, None, None] * np.eye(2))


def flip_images(images) -> np.ndarray:
    """Mirror each image left-right (exact, no resampling)."""
    images = _check_images(images, "flip_images")
    return images[..., ::-1].copy()


def resize_images(images, size) -> np.ndarray:
    """Resize uint8 images (N, C, H, W) to ``size`` (int or (H, W)) with Pillow's bilinear filter."""
    images = _check_images(images, "resize_images")
    if images.dtype != np.uint8:
        raise ValueError(f"resize_images: expected uint8 images, received dtype {images.dtype}")
    height, width = (size, size) if np.isscalar(size) else tuple(size)
    if height < 1 or width < 1:
        raise ValueError(f"resize_images: size must be positive, received {size}")
    n, channels = images.shape[:2]
    if images.shape[2:] == (height, width):
        return images.copy()
    out = np.empty((n, channels, height, width), dtype=np.uint8)
    for i in range(n):
        for c in range(channels):
            picture = Image.fromarray(np.ascontiguousarray(images[i, c]), mode="L")
            out[i, c] = np.asarray(picture.resize((width, height), Image.Resampling.BILINEAR))
    return out


class Augmentation:
    """Random affine augmentation (shift, rotation, scaling, optional flip) plus Gaussian noise.

    Args:
        shift: largest translation in pixels along each axis. An int draws integer shifts in
            [-shift, shift] (exact, like random crops of a zero-padded image); a float draws
            uniform real shifts.
        rotate: largest rotation in degrees; the angle is uniform in [-rotate, rotate].
        scale: the magnification is uniform in [1 - scale, 1 + scale].
        flip: mirror left-right with probability 1/2 (off by default: digits are not symmetric).
        noise: standard deviation of additive Gaussian noise, in the units of the batch
            (the DataLoader augments images in [0, 1], before mean/std normalisation).
        seed: seed of the generator used when ``__call__`` is given none (a DataLoader gives
            one per epoch, derived from its own seed, the epoch and this seed).

    Calling it on a float batch (N, C, H, W) returns a new batch of the same shape and dtype;
    each image gets its own random parameters, combined into one affine map.
    """

    def __init__(self, shift=0, rotate=0.0, scale=0.0, flip=False, noise=0.0, seed=0):
        whole_shift = isinstance(shift, numbers.Integral) and not isinstance(shift, bool)
        shift = check_number(shift, "Augmentation", "shift", low=0)
        self.shift = int(shift) if whole_shift else shift
        self.rotate = check_number(rotate, "Augmentation", "rotate", low=0)
        # The magnification is drawn from [1 - scale, 1 + scale]: it must stay positive.
        self.scale = check_number(scale, "Augmentation", "scale", low=0, high=1, high_open=True)
        flip = check_type(flip, (bool, np.bool_), "Augmentation", "flip", "True or False")
        self.flip = bool(flip)
        self.noise = check_number(noise, "Augmentation", "noise", low=0)
        self.seed = None if seed is None else check_int(seed, "Augmentation", "seed", minimum=0)
        self.rng = np.random.default_rng(seed)

    def get_config(self) -> dict:
        return {"shift": self.shift, "rotate": self.rotate, "scale": self.scale, "flip": self.flip,
                "noise": self.noise, "seed": self.seed}

    def __repr__(self) -> str:
        defaults = Augmentation().get_config()
        shown = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if v != defaults[k])
        return f"Augmentation({shown})"

    def matrices(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``count`` random (A, t) pairs: A (count, 2, 2) and t (count, 2)."""
        if isinstance(self.shift, (int, np.integer)):
            translation = rng.integers(-self.shift, self.shift + 1, size=(count, 2)).astype(np.float64)
        else:
            translation = rng.uniform(-self.shift, self.shift, size=(count, 2))
        degrees = rng.uniform(-self.rotate, self.rotate, size=count)
        factor = rng.uniform(1 - self.scale, 1 + self.scale, size=count)
        mirror = np.where(rng.random(count) < 0.5, -1.0, 1.0) if self.flip else np.ones(count)
        flip = np.zeros((count, 2, 2))
        flip[:, 0, 0] = mirror
        flip[:, 1, 1] = 1.0
        matrix = factor[:, None, None] * (_rotation(degrees) @ flip)
        return matrix, translation

    def __call__(self, images, rng: np.random.Generator | None = None) -> np.ndarray:
        images = _check_images(images, "Augmentation")
        rng = self.rng if rng is None else rng
        geometric = self.shift or self.rotate or self.scale or self.flip
        if geometric:
            matrix, translation = self.matrices(len(images), rng)
            out = affine_images(images, matrix, translation)
        else:
            out = images.copy()
        if self.noise:
            noise = rng.standard_normal(out.shape, dtype=np.float32) * np.float32(self.noise)
            if out.dtype.kind == "f":
                out += noise.astype(out.dtype, copy=False)
            else:
                out = _restore_dtype(out + noise, out.dtype)
        return out


#: the options of an augmentation spec: (meaning, lowest, highest) of each value
AUGMENT_OPTIONS = {
    "shift": ("a whole number of pixels", 0, 1000),
    "rotate": ("an angle in degrees", 0.0, 180.0),
    "scale": ("a fraction", 0.0, 1.0),
    "flip": ("flip, flip=true or flip=false", None, None),
    "noise": ("a standard deviation (pixels are in [0, 1])", 0.0, 1.0),
}
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_WHOLE = re.compile(r"[+-]?\d+")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_NO_AUGMENTATION = ("", "none", "off", "no")


def parse_augment_spec(spec: str, seed: int = 0) -> Augmentation | None:
    """Parse ``'shift=2,rotate=10,scale=0.1,flip,noise=0.05'`` into an ``Augmentation``.

    Comma-separated options, each at most once: ``shift=N`` (whole pixels, 0..1000), ``rotate=DEG``
    (0..180), ``scale=F`` (0 <= F < 1), ``flip`` (or ``flip=true|false|yes|no|on|off|1|0``),
    ``noise=STD`` (0..1). ``''``, ``'none'``, ``'off'`` or ``'no'`` mean no augmentation: None.
    Anything else is a ValueError quoting the spec: an unknown option, a repeated one,
    ``flip=maybe``, a number that isn't finite (``nan``, ``inf``, ``1e999``) or is out of range.
    ``seed`` seeds the augmentation's random stream (TypeError/ValueError of its own if it is
    not an int >= 0, so a bad seed is never reported as a bad spec).
    """
    check_type(spec, str, "parse_augment_spec", "spec", "a str")
    seed = check_int(seed, "parse_augment_spec", "seed", minimum=0)
    if spec.strip().lower() in _NO_AUGMENTATION:
        return None
    options = {}
    for item in spec.split(","):
        key, equals, value = (part.strip() for part in item.partition("="))
        key = key.lower()
        if key not in AUGMENT_OPTIONS:
            found = f"unknown option {key!r}" if key else "an empty option"
            expected = ", ".join(AUGMENT_OPTIONS)
            raise ValueError(
                f"augmentation spec {spec!r}: {found}; the options are {expected} (or 'none')"
            )
        if key in options:
            raise ValueError(f"augmentation spec {spec!r}: {key} is given twice")
        options[key] = _parse_option(spec, key, value if equals else None)
    return Augmentation(**options, seed=seed)


def _parse_option(spec: str, key: str, value: str | None):
    meaning, low, high = AUGMENT_OPTIONS[key]
    if key == "flip":
        if value is None or value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ValueError(
            f"augmentation spec {spec!r}: flip must be {meaning}, received flip={value}"
        )
    pattern = _WHOLE if key == "shift" else _NUMBER
    number = float(value) if value is not None and pattern.fullmatch(value) else None
    upper_open = key == "scale"
    too_high = number is not None and (number >= high if upper_open else number > high)
    if number is None or not np.isfinite(number) or number < low or too_high:
        bound = f"[{low}, {high})" if upper_open else f"[{low}, {high}]"
        shown = "nothing" if value is None else f"{key}={value}"
        raise ValueError(
            f"augmentation spec {spec!r}: {key} must be {meaning} in {bound}, received {shown}"
        )
    return int(value) if key == "shift" else number
