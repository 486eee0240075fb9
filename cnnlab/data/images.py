"""The one image reader (any image file -> float32 (C, H, W) in [0, 1]) and model-input preparation.

``read_image`` is what the image-folder dataset, ``cnnlab predict`` and the lab call. It reads only
the formats in ``IMAGE_FORMATS`` (Pillow's other plugins, EPS for instance, can run external
programs), refuses an image larger than ``cnnlab.limits.LIMITS.max_image_pixels`` before decoding
it, and turns every decoding failure into ``FileFormatError`` naming the file: a file read here is
untrusted input.

How each kind of pixel becomes [0, 1]:

- 8-bit (L, RGB, P, CMYK, YCbCr, ...): value / 255; CMYK and YCbCr through Pillow's RGB conversion.
- 16-bit (I;16, I;16B, ...): value / 65535, the full range, never clipped to 8 bits.
- 32-bit integer (I): value / 65535 when every value lies in 0..65535 (how 16-bit data is often
  stored), else mapped linearly from its own minimum..maximum.
- float (F, e.g. a float TIFF): kept as is when every value lies in [0, 1] (the usual convention
  for float images), else mapped linearly from its own minimum..maximum to [0, 1] (a constant
  image becomes 0). NaN or infinite pixels are refused.
- alpha (LA, RGBA, PA, P with transparency): a constant alpha carries no drawing and is ignored.
  Otherwise the image is composited on white or black, whichever contrasts with what is drawn
  (alpha-weighted mean luminance below 0.5: white, else black): a transparent background is meant
  to show the drawing, so an alpha-only image (one colour, the drawing in alpha) comes out as that
  drawing, never blank.
- EXIF orientation is applied (``ImageOps.exif_transpose``); a malformed EXIF block is ignored,
  as image viewers do.

Colour becomes grey with ITU-R 601-2 luma (0.299 R + 0.587 G + 0.114 B, Pillow's ``L``); grey
becomes colour by repeating it.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnlab._checks import check_choice, check_int, check_number, check_type
from cnnlab.errors import CnnlabError, FileFormatError, LimitExceededError
from cnnlab.limits import LIMITS

__all__ = [
    "IMAGE_FORMATS",
    "ImageInfo",
    "prepare_image",
    "probe_image",
    "read_image",
    "resize_image",
]

#: Pillow plugins read_image may use; nothing else is ever tried on a file.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_GRAY_MODES = ("1", "L", "LA", "La", "I", "F")
#: MNIST's digits fill a 20x20 box inside the 28x28 frame.
MNIST_BOX = 20 / 28
#: after background removal, pixels above this fraction of the ink's peak count as ink.
INK_THRESHOLD = 0.2
#: below this contrast between background and the brightest pixel, nothing is drawn.
MIN_CONTRAST = 0.05


@dataclass(frozen=True)
class ImageInfo:
    """What an image's header says, read without decoding the pixels."""

    width: int
    height: int
    mode: str
    grayscale: bool


def _limit_error(path, pixels: int, pillow: bool = False) -> LimitExceededError:
    limit = LIMITS.max_image_pixels
    text = (
        f"image declares {pixels:,} pixels, more than cnnlab.limits.max_image_pixels = {limit:,} "
        "(a decompression bomb?); if the file is trusted, raise it with "
        "cnnlab.limits.override(max_image_pixels=...) or CNNLAB_MAX_IMAGE_PIXELS"
    )
    if pillow:
        text += (
            f" (Pillow's own PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS:,} applies too)"
        )
    return LimitExceededError(path, text)


@contextlib.contextmanager
def _decoding(path):
    """Translate whatever Pillow raises on a bad file into cnnlab's errors, naming the file."""
    # Pillow's bomb warning fires only above its own limit; ours has been checked by then, so a
    # user who raised cnnlab's limit is not warned twice. Pillow's other warnings ("Corrupt EXIF
    # data", ...) report damage it has worked around: the file either decodes or raises, and a
    # raw warning with Pillow's source line helps nobody. (catch_warnings is process-wide state.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", module=r"PIL(\.|$)")
        try:
            yield
        except CnnlabError:
            raise
        except Image.DecompressionBombError as error:
            raise _limit_error(path, _pixels_in(str(error)), pillow=True) from None
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such image file") from None
        except UnidentifiedImageError:
            raise FileFormatError(
                path, "cannot read the image: not a PNG, JPEG, BMP, GIF, TIFF, WebP or PNM file"
            ) from None
        except Exception as error:  # noqa: BLE001 (reason below)
            # Pillow's decoders raise a zoo of types on corrupt input (OSError, ValueError,
            # SyntaxError, struct.error, EOFError, IndexError, TypeError, ...): every one of them
            # means the file can't be read as an image.
            raise FileFormatError(
                path, f"cannot read the image: {str(error) or type(error).__name__}"
            ) from None


def _pixels_in(message: str) -> int:
    """The pixel count in Pillow's "Image size (N pixels) exceeds limit ..." message, else 0."""
    found = re.search(r"\d+", message)
    return int(found.group()) if found else 0


def _open(path: Path):
    picture = Image.open(path, formats=IMAGE_FORMATS)
    width, height = picture.size
    if width * height > LIMITS.max_image_pixels:
        picture.close()
        raise _limit_error(path, width * height)
    if width < 1 or height < 1:
        picture.close()
        raise FileFormatError(path, f"image has no pixels (size {width}x{height})")
    return picture


def probe_image(path) -> ImageInfo:
    """Read an image's header only: size, mode, whether grayscale; errors as ``read_image``'s."""
    path = Path(path)
    with _decoding(path), _open(path) as picture:
        grayscale = picture.mode in _GRAY_MODES or picture.mode.startswith("I;16")
        if picture.mode in ("P", "PA"):
            palette = picture.getpalette("RGB") or []
            grayscale = all(
                palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette), 3)
            )
        return ImageInfo(picture.width, picture.height, picture.mode, grayscale)


def read_image(path, channels: int = 1) -> np.ndarray:
    """Read an image file as float32 ``(channels, H, W)`` in [0, 1]; see the module docstring.

    Args:
        path: the image file (PNG, JPEG, BMP, GIF, TIFF, WebP, PNM; the first frame).
        channels: 1 (grey) or 3 (RGB).

    Raises:
        FileNotFoundError: no such file.
        LimitExceededError: the image has more pixels than ``LIMITS.max_image_pixels``
            (checked from the header, before decoding).
        FileFormatError: the file is truncated, corrupt, not an image, or holds NaN/infinite pixels.
    """
    channels = check_choice(channels, (1, 3), "read_image", "channels")
    path = Path(path)
    with _decoding(path), _open(path) as picture:
        picture.load()
        with contextlib.suppress(Exception):  # a malformed EXIF block: keep the stored orientation
            picture = ImageOps.exif_transpose(picture)
        colour, alpha = _pixels(picture, path)
    if alpha is not None:
        colour = _composite(colour, alpha)
    return np.ascontiguousarray(
        _match_channels(colour.transpose(2, 0, 1), channels), dtype=np.float32
    )


def _pixels(picture: Image.Image, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixels as float32 (H, W, 1 or 3) in [0, 1] and alpha (H, W) in [0, 1] or None."""
    mode = picture.mode
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in picture.info
        picture = picture.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("La", "RGBa"):
        picture = picture.convert(mode[:-1] + "A")
    elif mode not in ("1", "L", "LA", "RGB", "RGBA", "RGBX", "I", "F") and not mode.startswith(
        "I;16"
    ):
        picture = picture.convert("RGB")
    mode = picture.mode
    array = np.asarray(picture)
    if mode == "1":
        return array.astype(np.float32)[..., None], None
    if mode.startswith("I;16"):
        return (array.astype(np.float32) / 65535.0)[..., None], None
    if mode == "I":
        array = array.astype(np.float64)
        if array.min() >= 0 and array.max() <= 65535:
            return (array / 65535.0).astype(np.float32)[..., None], None
        return _stretch(array)[..., None], None
    if mode == "F":
        if not np.isfinite(array).all():
            raise FileFormatError(path, "float image holds NaN or infinite pixels")
        if array.min() >= 0 and array.max() <= 1:
            return array.astype(np.float32)[..., None], None
        return _stretch(array.astype(np.float64))[..., None], None
    scaled = array.astype(np.float32) / 255.0
    if mode == "L":
        return scaled[..., None], None
    if mode == "LA":
        return scaled[..., :1], scaled[..., 1]
    if mode == "RGBA":
        return scaled[..., :3], scaled[..., 3]
    return scaled[..., :3], None


def _stretch(array: np.ndarray) -> np.ndarray:
    low, high = float(array.min()), float(array.max())
    if high == low:
        return np.zeros(array.shape, dtype=np.float32)
    return ((array - low) / (high - low)).astype(np.float32)


def _composite(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite (H, W, C) colour and (H, W) alpha on the background contrasting with the ink."""
    if alpha.min() == alpha.max():
        return colour
    luminance = colour[..., 0] if colour.shape[2] == 1 else colour @ _LUMA
    drawn = float((luminance * alpha).sum() / alpha.sum())
    background = 1.0 if drawn < 0.5 else 0.0
    weight = alpha[..., None]
    return colour * weight + np.float32(background) * (1 - weight)


def _match_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """(C, H, W) with C in {1, 3} -> (channels, H, W): luma for grey, repetition for colour."""
    if image.shape[0] == channels:
        return image
    if channels == 1:
        return np.tensordot(_LUMA, image, axes=(0, 0))[None].astype(np.float32)
    return np.repeat(image, channels, axis=0)


def resize_image(image, size) -> np.ndarray:
    """Resize float (C, H, W) to ``size`` (int or (H, W)) with Pillow's bilinear filter.

    Anti-aliased when shrinking; values stay within the input's range.
    """
    image = _check_image(image, "resize_image")
    height, width = _size_pair(size, "resize_image")
    if image.shape[1:] == (height, width):
        return image.copy()
    out = np.empty((image.shape[0], height, width), dtype=np.float32)
    for c, plane in enumerate(image):
        picture = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
        out[c] = np.asarray(picture.resize((width, height), Image.Resampling.BILINEAR))
    return out


def _size_pair(size, owner: str) -> tuple[int, int]:
    pair = (size, size) if np.isscalar(size) else tuple(size)
    if len(pair) != 2:
        raise ValueError(f"{owner}: size must be an int or an (H, W) pair, received size={size!r}")
    return tuple(check_int(s, owner, "size", minimum=1) for s in pair)


def _check_image(image, owner: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[0] not in (1, 3) or image.dtype.kind not in "fui":
        raise ValueError(
            f"{owner}: expected a (C, H, W) image with C = 1 or 3, as read_image returns, "
            f"received {image.dtype} of shape {image.shape}"
        )
    return image.astype(np.float32, copy=False)


def prepare_image(
    image, input_shape, invert: bool | None = None, fit: str = "auto", box: float = MNIST_BOX
) -> np.ndarray:
    """Turn ``read_image``'s output into a model's input: float32 (C, H, W) in [0, 1], unnormalised.

    For a single-channel model (MNIST-like data, light ink on a dark background):

    - polarity: when ``invert`` is None, the image is inverted if its background (the median of a
      thin border ring) is light, i.e. dark ink on light paper; True/False force it.
    - ``fit='digit'`` (the default for one channel) does what MNIST's makers did: remove the
      background level, crop to the ink's bounding box (pixels above ``INK_THRESHOLD`` of the
      peak), scale it to fit a ``box`` x frame box keeping its aspect ratio (MNIST: 20x20 in 28x28;
      the same ratio for other sizes), brighten its peak to 1, and place it so its centre of
      mass is at the frame's centre (kept inside the frame). An image with nothing drawn is
      simply resized.

    For colour models (and ``fit='resize'``): a plain bilinear resize to (H, W). Colour images are
    never inverted unless ``invert=True``. Use ``fit='resize'`` for single-channel data whose
    objects fill the frame (Fashion-MNIST, scikit-learn's digits).

    Args:
        image: float (C, H, W), C = 1 or 3, values in [0, 1] (``read_image``'s output).
        input_shape: the model's (C, H, W), C = 1 or 3.
        invert: None (detect, single channel only), True or False.
        fit: 'auto' ('digit' for one channel, else 'resize'), 'digit' or 'resize'.
        box: share of the frame the digit's longer side fills with ``fit='digit'``.

    Returns:
        float32 (C, H, W) in [0, 1]; the model's normalisation is applied by the caller.
    """
    image = _check_image(image, "prepare_image")
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise ValueError(
            f"prepare_image: input_shape must be (C, H, W), received input_shape={input_shape!r}"
        )
    channels = check_choice(shape[0], (1, 3), "prepare_image", "input_shape[0] (channels)")
    height, width = _size_pair(shape[1:], "prepare_image")
    if invert is not None:
        check_type(invert, bool, "prepare_image", "invert", "True, False or None")
    fit = check_choice(fit, ("auto", "digit", "resize"), "prepare_image", "fit")
    box = check_number(box, "prepare_image", "box", low=0, high=1, low_open=True)
    if fit == "auto":
        fit = "digit" if channels == 1 else "resize"
    if fit == "digit" and channels != 1:
        raise ValueError(
            f"prepare_image: fit='digit' needs a single-channel model, received input_shape={shape}"
        )
    x = _match_channels(image, channels)
    if invert is None:
        invert = channels == 1 and background_level(x[0]) > 0.5
    if invert:
        x = 1.0 - x
    if fit == "digit":
        return _fit_digit(x[0], height, width, box)[None]
    return np.clip(resize_image(x, (height, width)), 0.0, 1.0)


def background_level(plane: np.ndarray) -> float:
    """Median of an (H, W) plane's border ring (1/20 of the shorter side, at least 1 pixel)."""
    ring = max(1, min(plane.shape) // 20)
    border = np.concatenate(
        [
            plane[:ring].ravel(),
            plane[-ring:].ravel(),
            plane[:, :ring].ravel(),
            plane[:, -ring:].ravel(),
        ]
    )
    return float(np.median(border))


def _fit_digit(plane: np.ndarray, height: int, width: int, box: float) -> np.ndarray:
    """MNIST's preparation of light ink on dark (``prepare_image``): (H, W) -> (height, width)."""
    background = background_level(plane)
    peak = float(plane.max())
    if peak - background < MIN_CONTRAST:
        return np.clip(resize_image(plane[None], (height, width))[0], 0.0, 1.0)
    ink = np.clip((plane - background) / (peak - background), 0.0, 1.0)
    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    box_height, box_width = max(1, round(height * box)), max(1, round(width * box))
    scale = min(box_height / crop.shape[0], box_width / crop.shape[1])
    new_height = min(box_height, max(1, round(crop.shape[0] * scale)))
    new_width = min(box_width, max(1, round(crop.shape[1] * scale)))
    digit = np.clip(resize_image(crop[None], (new_height, new_width))[0], 0.0, 1.0)
    if digit.max() > 0:
        digit /= digit.max()
    mass = digit.sum()
    centre_row = (
        (np.arange(new_height) @ digit.sum(axis=1)) / mass if mass else (new_height - 1) / 2
    )
    centre_col = (np.arange(new_width) @ digit.sum(axis=0)) / mass if mass else (new_width - 1) / 2
    top = int(np.clip(round((height - 1) / 2 - centre_row), 0, height - new_height))
    left = int(np.clip(round((width - 1) / 2 - centre_col), 0, width - new_width))
    frame = np.zeros((height, width), dtype=np.float32)
    frame[top : top + new_height, left : left + new_width] = digit
    return frame
