"""The CLI's two input readers: an image file for ``predict`` and the ``--augment`` spec.

Stopgaps, kept in this one place until the library's own land in ``cnnlab.data``:
``cnnlab.data.images.read_image`` + ``prepare_image`` (polarity detection, bounding-box
fit and centring as MNIST was made) and ``cnnlab.data.augment.parse_augment_spec``.
Then the CLI imports those instead and this module goes.
"""

from __future__ import annotations

import math

import numpy as np

from cnnlab.errors import FileFormatError

__all__ = ["load_image", "parse_augment"]

_AUGMENT_KEYS = {"shift": int, "rotate": float, "scale": float, "flip": bool, "noise": float}
_TRUE = ("", "1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_augment(spec: str | None, seed: int = 0):
    """'shift=2,rotate=10,flip' -> Augmentation(shift=2, rotate=10.0, flip=True, seed=seed).

    'none' (or '', 'off', 'no') -> None.

    Strict: an unknown key, a flag value other than on/off words, or a number that
    is not finite raises ValueError quoting the spec.
    """
    from cnnlab.data import Augmentation  # lazy: cnnlab.data pulls in scikit-learn

    if spec is None or spec.strip().lower() in ("", "none", "off", "no"):
        return None
    options = {}
    for part in spec.split(","):
        key, _, value = (text.strip() for text in part.partition("="))
        if key not in _AUGMENT_KEYS:
            raise ValueError(
                f"unknown option {key!r} in {spec!r}; expected {', '.join(_AUGMENT_KEYS)}"
            )
        if key in options:
            raise ValueError(f"{key} is given twice in {spec!r}")
        if _AUGMENT_KEYS[key] is bool:
            if value.lower() not in _TRUE + _FALSE:
                raise ValueError(
                    f"{key} takes on/off (true/false, yes/no, 1/0), received {value!r} in {spec!r}"
                )
            options[key] = value.lower() in _TRUE
            continue
        try:
            number = _AUGMENT_KEYS[key](value)
        except ValueError:
            raise ValueError(
                f"{key} needs a {_AUGMENT_KEYS[key].__name__}, received {value!r} in {spec!r}"
            ) from None
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"{key} must be a finite number >= 0, received {value!r} in {spec!r}")
        options[key] = number
    return Augmentation(**options, seed=seed)


def load_image(path, input_shape, normalization, invert: bool | None = None) -> np.ndarray:
    """An image file as a (1, C, H, W) float32 batch, sized and normalised like the training data.

    ``invert`` None detects the polarity of a grey image: a light border means dark
    ink on light paper, which is inverted to the datasets' light-on-dark. Raises
    FileFormatError naming the file when it can't be read.
    """
    from PIL import Image, UnidentifiedImageError  # lazy: only predict reads images

    channels, height, width = input_shape
    if channels not in (1, 3):
        raise ValueError(
            f"the model expects {channels} input channels; only 1 (grey) or 3 (RGB) are supported"
        )
    try:
        with Image.open(path) as image:
            if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                pixels = np.asarray(image, dtype=np.float32)
                top = 65535.0 if image.mode != "F" else max(float(pixels.max()), 1e-12)
                grey = Image.fromarray(np.clip(pixels / top * 255.0, 0, 255).astype(np.uint8))
                image = grey if channels == 1 else grey.convert("RGB")
            else:
                image = image.convert("L" if channels == 1 else "RGB")
            pixels = np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as error:
        raise FileFormatError(path, f"cannot read the image: {error}") from None
    pixels = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    x = pixels / 255.0
    if invert is None:
        border = np.concatenate(
            [x[:, 0].ravel(), x[:, -1].ravel(), x[:, :, 0].ravel(), x[:, :, -1].ravel()]
        )
        invert = channels == 1 and float(border.mean()) > 0.5
    if invert:
        x = 1.0 - x
    if normalization:
        x = (x - _per_channel(normalization["mean"])) / _per_channel(normalization["std"])
    return x[None].astype(np.float32)


def _per_channel(value) -> np.ndarray:
    """A scalar, or one value per channel shaped (C, 1, 1) to broadcast over (C, H, W)."""
    value = np.asarray(value, dtype=np.float32)
    return value.reshape(-1, 1, 1) if value.ndim == 1 else value
