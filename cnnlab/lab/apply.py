"""Applying kernels to pictures with the engine's ``conv2d``.

Pictures here are in the usual image layout: (H, W) for grayscale, (H, W, C)
for colour, values in [0, 1]. They are moved to the engine's NCHW layout, run
through ``cnnlab.functional.conv2d`` and moved back.

Cross-correlation versus convolution (the lecture's distinction):

    cross-correlation   S(i, j) = Σ_m Σ_n I(i + m, j + n) K(m, n)
    convolution         S(i, j) = Σ_m Σ_n I(i − m, j − n) K(m, n)
                                = cross-correlation with K flipped in both axes

CNN layers (and ``conv2d``) compute the cross-correlation; because the kernel is
learned, the flip makes no difference to what a network can do. For a kernel
that is symmetric under a 180° rotation (blur, identity, sharpness, surround,
the edge kernels) both give the same picture; for Sobel the flip negates the
result, for emboss it moves the light to the other corner.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab import functional as F
from cnnlab import kernels as kernel_bank
from cnnlab._checks import check_int
from cnnlab.data.images import read_image, resize_image
from cnnlab.tensor import Tensor, no_grad


def _conv2d(x, w, **options) -> np.ndarray:
    with no_grad():
        return F.conv2d(Tensor(x), Tensor(w), **options).data


def _float_dtype(array: np.ndarray):
    return array.dtype if array.dtype in (np.float32, np.float64) else np.dtype(np.float32)


def as_kernel(kernel, dtype=np.float32) -> np.ndarray:
    """A kernel given by name (see ``cnnlab.kernels``) or as a 2-D array, as a (K_h, K_w) array."""
    if isinstance(kernel, str):
        return kernel_bank.get(kernel, dtype)
    array = np.asarray(kernel, dtype=dtype)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(
            f"apply_kernel: the kernel must be 2-D (K_h, K_w), received shape {array.shape}"
        )
    return array


def _to_nchw(image: np.ndarray, op: str) -> np.ndarray:
    """(H, W) → (1, 1, H, W); (H, W, C) → (1, C, H, W)."""
    if image.ndim == 2:
        return image[None, None]
    if image.ndim == 3:
        return np.ascontiguousarray(image.transpose(2, 0, 1))[None]
    raise ValueError(
        f"{op}: expected a (H, W) grayscale or (H, W, C) colour image, received shape {image.shape}"
    )


def _from_nchw(out: np.ndarray, like: np.ndarray) -> np.ndarray:
    return out[0, 0] if like.ndim == 2 else out[0].transpose(1, 2, 0)


def _check_image(image, op: str) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim not in (2, 3):
        raise ValueError(
            f"{op}: expected a (H, W) grayscale or (H, W, C) colour image, received shape {array.shape}"
        )
    if array.dtype.kind not in "fiub":
        raise ValueError(f"{op}: expected a numeric image, received dtype {array.dtype}")
    return array.astype(_float_dtype(array), copy=False)


def apply_kernel(image, kernel, stride=1, padding=0) -> np.ndarray:
    """Cross-correlate every channel of ``image`` with one 2-D kernel, using ``conv2d``.

    S(i, j) = Σ_m Σ_n I(s·i + m − p, s·j + n − p) K(m, n), channel by channel
    (a depthwise convolution: ``groups`` = number of channels).

    Args:
        image: (H, W) or (H, W, C) array.
        kernel: a name from ``cnnlab.kernels`` or a (K_h, K_w) array.
        stride, padding: as for ``conv2d`` (padding also 'valid' or 'same').

    Shape:
        (H, W) → (H_out, W_out); (H, W, C) → (H_out, W_out, C), with
        H_out = floor((H + 2p − K_h) / s) + 1.

    With the defaults the result equals ``scipy.signal.correlate2d(image, kernel, mode='valid')``
    per channel.
    """
    image = _check_image(image, "apply_kernel")
    k = as_kernel(kernel, image.dtype)
    x = _to_nchw(image, "apply_kernel")
    channels = x.shape[1]
    w = np.broadcast_to(k, (channels, 1) + k.shape).copy()
    out = _conv2d(x, w, stride=stride, padding=padding, groups=channels)
    return _from_nchw(out, image)


def convolve(image, kernel, stride=1, padding=0) -> np.ndarray:
    """True (flipped-kernel) convolution: ``apply_kernel`` with the kernel rotated by 180°.

    S(i, j) = Σ_m Σ_n I(i − m, j − n) K(m, n). With the defaults it equals
    ``scipy.signal.convolve2d(image, kernel, mode='valid')`` per channel.
    """
    image = _check_image(image, "convolve")
    k = as_kernel(kernel, image.dtype)
    return apply_kernel(image, k[::-1, ::-1].copy(), stride=stride, padding=padding)


def apply_colour_kernel(image, kernel, bias: float = 0.0, stride=1, padding=0) -> np.ndarray:
    """An RGB picture through one 3-channel kernel: one output map.

    z(i, j) = b + Σ_c Σ_m Σ_n I_c(i + m, j + n) K_c(m, n): each channel is
    filtered by its own sub-kernel K_c and the results are summed (the
    lecture's drawing of a colour convolution).

    Args:
        image: (H, W, C) array.
        kernel: (C, K_h, K_w) array, one sub-kernel per channel.

    Shape:
        (H, W, C) → (H_out, W_out).
    """
    image = _check_image(image, "apply_colour_kernel")
    k = np.asarray(kernel, dtype=image.dtype)
    if image.ndim != 3:
        raise ValueError(
            f"apply_colour_kernel: expected a (H, W, C) image, received shape {image.shape}"
        )
    if k.ndim != 3 or k.shape[0] != image.shape[2]:
        raise ValueError(
            f"apply_colour_kernel: expected a kernel of shape ({image.shape[2]}, K_h, K_w) "
            "for an image "
            f"with {image.shape[2]} channels, received shape {k.shape}"
        )
    b = np.array([bias], dtype=image.dtype)
    out = _conv2d(
        _to_nchw(image, "apply_colour_kernel"),
        k[None],
        b=Tensor(b),
        stride=stride,
        padding=padding,
    )
    return out[0, 0]


def colour_contributions(image, kernel) -> np.ndarray:
    """The per-channel terms of ``apply_colour_kernel``.

    Shape: (H, W, C), (C, K, K) → (C, H_out, W_out).

    Their sum over the first axis is the colour convolution's output.
    """
    image = _check_image(image, "colour_contributions")
    k = np.asarray(kernel, dtype=image.dtype)
    if image.ndim != 3 or k.ndim != 3 or k.shape[0] != image.shape[2]:
        raise ValueError(
            "colour_contributions: expected a (H, W, C) image and a (C, K_h, K_w) kernel, "
            "received shapes "
            f"{image.shape} and {k.shape}"
        )
    out = _conv2d(_to_nchw(image, "colour_contributions"), k[:, None].copy(), groups=k.shape[0])
    return out[0]


def one_to_many(image, kernels, stride=1, padding=0) -> np.ndarray:
    """One input channel to many output channels: each kernel gives its own feature map.

    A conv layer with C_in = 1 and C_out = K: weight (K, 1, K_h, K_w).

    Shape:
        (H, W), (K, K_h, K_w) → (K, H_out, W_out).
    """
    image = _check_image(image, "one_to_many")
    if image.ndim != 2:
        raise ValueError(
            f"one_to_many: expected a (H, W) grayscale image, received shape {image.shape}"
        )
    if isinstance(kernels, np.ndarray):
        stack = kernels.astype(image.dtype, copy=False)
    else:
        stack = np.stack([as_kernel(k, image.dtype) for k in kernels])
    if stack.ndim != 3:
        raise ValueError(
            f"one_to_many: expected kernels of shape (K, K_h, K_w), received shape {stack.shape}"
        )
    return _conv2d(image[None, None], stack[:, None].copy(), stride=stride, padding=padding)[0]


def many_to_one(maps, kernel, bias: float = 0.0, stride=1, padding=0) -> np.ndarray:
    """Many input channels to one output channel: filter each map with its slice and sum.

    A conv layer with C_in = C and C_out = 1: weight (1, C, K_h, K_w).

    Shape:
        (C, H, W), (C, K_h, K_w) → (H_out, W_out).
    """
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(
            f"many_to_one: expected feature maps of shape (C, H, W), received shape {maps.shape}"
        )
    maps = maps.astype(_float_dtype(maps), copy=False)
    k = np.asarray(kernel, dtype=maps.dtype)
    if k.ndim != 3 or k.shape[0] != maps.shape[0]:
        raise ValueError(
            f"many_to_one: expected a kernel of shape ({maps.shape[0]}, K_h, K_w) "
            f"for {maps.shape[0]} maps, "
            f"received shape {k.shape}"
        )
    b = Tensor(np.array([bias], dtype=maps.dtype))
    return _conv2d(maps[None], k[None], b=b, stride=stride, padding=padding)[0, 0]


@dataclass(frozen=True)
class OutputSizeRow:
    size: int
    kernel: int
    stride: int
    padding: int
    output: int


def output_size_table(
    size: int, kernel: int = 3, strides=(1, 2, 3), paddings=(0, 1, 2)
) -> list[OutputSizeRow]:
    """Output sizes of a conv for each stride and padding, from ``cnnlab.functional.output_size``.

    out = floor((n + 2p − k) / s) + 1.
    """
    size = check_int(size, "output_size_table", "size", minimum=1)
    kernel = check_int(kernel, "output_size_table", "kernel", minimum=1)
    return [
        OutputSizeRow(size, kernel, s, p, F.output_size(size, kernel, stride=s, padding=p))
        for s in strides
        for p in paddings
    ]


def format_output_size_table(rows: list[OutputSizeRow]) -> str:
    """A Markdown table of ``output_size_table`` rows."""
    lines = [
        "| input | kernel | stride | padding | output |",
        "|------:|-------:|-------:|--------:|-------:|",
    ]
    lines += [f"| {r.size} | {r.kernel} | {r.stride} | {r.padding} | {r.output} |" for r in rows]
    return "\n".join(lines)


def to_grayscale(image) -> np.ndarray:
    """(H, W, 3) → (H, W) with the ITU-R 601 luma weights; (H, W) is returned as is."""
    image = _check_image(image, "to_grayscale")
    if image.ndim == 2:
        return image
    if image.shape[2] < 3:
        return image[..., 0]
    weights = np.array([0.299, 0.587, 0.114], dtype=image.dtype)
    return image[..., :3] @ weights


def load_image(
    path=None, grayscale: bool = False, size: int | None = None
) -> tuple[np.ndarray, str]:
    """A picture as float32 in [0, 1], (H, W) grey or (H, W, 3) colour, and its name.

    Without ``path``, a real photo that ships with scikit-image: the camera man
    (512×512 grayscale) or, for colour, the astronaut (512×512 RGB); no download.
    A file is read by ``cnnlab.data.images.read_image`` (16-bit, alpha, palette,
    CMYK and EXIF orientation handled; FileNotFoundError, FileFormatError or
    LimitExceededError naming the file). ``size`` resizes the longer side to that
    many pixels with ``resize_image`` (bilinear, anti-aliased when shrinking).
    """
    if size is not None:
        size = check_int(size, "load_image", "size", minimum=1)
    if path is None:
        # scikit-image is slow to import and only needed for its sample photos.
        from skimage import data

        pixels, name = (data.camera(), "camera") if grayscale else (data.astronaut(), "astronaut")
        image = pixels.astype(np.float32) / 255.0
        image = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
    else:
        image = read_image(path, channels=1 if grayscale else 3)
        name = Path(path).stem
    if size is not None:
        scale = size / max(image.shape[1:])
        height, width = (max(1, round(side * scale)) for side in image.shape[1:])
        image = resize_image(image, (height, width))
    return (image[0] if grayscale else image.transpose(1, 2, 0)), name
