"""The nine classic 3×3 image kernels of the lecture, with what each one does.

The values are exactly the lecture's. Like every convolution layer in a CNN
framework, they are applied by *cross-correlation* (the kernel is slid over the
image without flipping it): ``cnnlab.lab.apply.apply_kernel`` gives the same
numbers as ``scipy.signal.correlate2d``.

Example:
    >>> from cnnlab import kernels
    >>> kernels.get("sobel-x")
    array([[-1.,  0.,  1.],
           [-2.,  0.,  2.],
           [-1.,  0.,  1.]], dtype=float32)
    >>> kernels.describe("blur")
    'blur: averages each pixel with its eight neighbours (box filter), smoothing noise and detail'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab._checks import check_type


@dataclass(frozen=True)
class Kernel:
    """One named 3×3 kernel: its values (a tuple of rows) and a one-line description."""

    name: str
    values: tuple[tuple[float, ...], ...]
    description: str

    def array(self, dtype=np.float32) -> np.ndarray:
        """The kernel as a fresh (3, 3) array."""
        return np.array(self.values, dtype=dtype)


_NINTH = 1.0 / 9.0

# In the order of the lecture's 3×3 gallery (row by row).
_KERNELS = (
    Kernel(
        "sharpness",
        ((0, -1, 0), (-1, 5, -1), (0, -1, 0)),
        "sharpens: adds the pixel's difference from its four neighbours "
        "(identity plus a Laplacian)",
    ),
    Kernel(
        "vertical-edge",
        ((0, 0, 0), (-1, 2, -1), (0, 0, 0)),
        "responds to vertical edges and lines: changes of brightness from left to right",
    ),
    Kernel(
        "surround",
        ((1, 1, 1), (1, -9, 1), (1, 1, 1)),
        "outlines and inverts: sum of the eight neighbours minus nine times the centre, about "
        "-pixel on flat areas and large where the centre differs from its surround",
    ),
    Kernel(
        "sobel-y",
        ((-1, -2, -1), (0, 0, 0), (1, 2, 1)),
        "Sobel vertical gradient: smoothed difference of the row below minus the row above "
        "(finds horizontal edges)",
    ),
    Kernel(
        "identity",
        ((0, 0, 0), (0, 1, 0), (0, 0, 0)),
        "copies the image unchanged",
    ),
    Kernel(
        "horizontal-edge",
        ((0, -1, 0), (0, 2, 0), (0, -1, 0)),
        "responds to horizontal edges and lines: changes of brightness from top to bottom",
    ),
    Kernel(
        "blur",
        ((_NINTH,) * 3,) * 3,
        "averages each pixel with its eight neighbours (box filter), smoothing noise and detail",
    ),
    Kernel(
        "sobel-x",
        ((-1, 0, 1), (-2, 0, 2), (-1, 0, 1)),
        "Sobel horizontal gradient: smoothed difference of the right column minus the left column "
        "(finds vertical edges)",
    ),
    Kernel(
        "emboss",
        ((2, 0, 0), (0, -1, 0), (0, 0, -1)),
        "diagonal difference that makes the image look raised, lit from the top left",
    ),
)

KERNELS: dict[str, Kernel] = {kernel.name: kernel for kernel in _KERNELS}

# Alternative spellings accepted by ``get`` (the CLI takes either).
_ALIASES = {
    "sharpen": "sharpness",
    "edge-vertical": "vertical-edge",
    "edge-horizontal": "horizontal-edge",
    "box-blur": "blur",
}


def names() -> list[str]:
    """The nine kernel names, in the gallery's order."""
    return list(KERNELS)


def _lookup(name: str) -> Kernel:
    check_type(name, str, "kernels", "name", "a str (a kernel's name)")
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    key = _ALIASES.get(key, key)
    if key not in KERNELS:
        raise ValueError(f"kernels: unknown kernel {name!r}; expected one of {', '.join(KERNELS)}")
    return KERNELS[key]


def get(name: str, dtype=np.float32) -> np.ndarray:
    """The (3, 3) array of the kernel called ``name`` (a fresh copy, safe to modify)."""
    return _lookup(name).array(dtype)


def describe(name: str) -> str:
    """'name: what it does', in one line."""
    kernel = _lookup(name)
    return f"{kernel.name}: {kernel.description}"


def canonical_name(name: str) -> str:
    """The gallery name of ``name`` or one of its aliases."""
    return _lookup(name).name
