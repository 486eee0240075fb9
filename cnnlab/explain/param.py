"""Images that an optimiser can change: how they are parameterised, how they are transformed
before the model sees them, and the penalties that keep them natural.

Each piece is a NumPy function with an exact hand-written backward (its adjoint), so the
optimisation loop in ``maximize`` is: parameters → image → random transform → model
(``probe.input_gradient``) → and back through the transform's adjoint and the
parameterisation's backward. Images are float (N, C, H, W) in [0, 1].

- ``PixelImage``: x = σ(p), one parameter per pixel (Lucid's pixel image with a sigmoid).
- ``FourierImage``: the decorrelated parameterisation of Olah, Mordvintsev and Schubert,
  "Feature Visualization" (Distill 2017): x = σ(M · irfft2(s(f) · p) / 4), where p holds a
  real and an imaginary part per frequency f, s(f) = 1 / max(|f|, 1/max(H, W)) scales each
  frequency so that white noise in p is an image with a natural 1/f spectrum, and for three
  channels M is Lucid's square root of ImageNet's colour correlation, normalised.
- ``Transform``: Lucid's transformation robustness for a model of fixed input size: a random
  scale, rotation and shift (with a fill where the shifted image uncovers the frame), then a
  random circular roll (jitter). Bilinear sampling is a sparse matrix T, so T's backward is
  exactly Tᵀ.
- ``penalties``: the lecture's L1 term λ₁Σ|z|, an L2 term λ₂Σz² and total variation
  λ_tv Σ((x[i+1,j] − x[i,j])² + (x[i,j+1] − x[i,j])²), with their gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where used: 0.2 s that `cnnlab --help` shouldn't pay
    import scipy.sparse

__all__ = [
    "FourierImage",
    "PixelImage",
    "Transform",
    "blur",
    "default_robustness",
    "penalties",
    "random_transform",
    "sampling_matrix",
]

# Lucid's square root of ImageNet's RGB correlation (its SVD), columns scaled to max norm 1.
_COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR = _COLOR_SQRT / np.max(np.linalg.norm(_COLOR_SQRT, axis=0))
_EPS = 1e-6


def _sigmoid(t: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * t))  # σ without overflow warnings


def _logit(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, _EPS, 1 - _EPS)
    return np.log(x) - np.log1p(-x)


class PixelImage:
    """x = σ(p), p of shape (N, C, H, W); starts near grey (p ~ N(0, sd²)), as Lucid does."""

    def __init__(self, shape, rng: np.random.Generator, sd: float = 0.01, dtype=np.float64):
        self.params = rng.normal(0.0, sd, size=tuple(shape)).astype(dtype)

    def image(self) -> np.ndarray:
        """The (N, C, H, W) image in (0, 1)."""
        return _sigmoid(self.params)

    def backward(self, grad_image: np.ndarray) -> np.ndarray:
        """∂/∂p = ∂/∂x · σ(p)(1 − σ(p))."""
        x = self.image()
        return grad_image * x * (1 - x)

    def set_image(self, image: np.ndarray) -> None:
        """The parameters whose image is ``image`` (clipped into (0, 1)): p = logit(x)."""
        self.params[...] = _logit(image)


def _frequencies(height: int, width: int) -> np.ndarray:
    """|f| in cycles per pixel for each entry of an rfft2 spectrum: (H, W // 2 + 1)."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    return np.sqrt(fx * fx + fy * fy)


class FourierImage:
    """Olah et al.'s decorrelated Fourier parameterisation (see the module docstring).

    params: (N, C, H, W // 2 + 1, 2), the real and imaginary parts of the spectrum before its
    1/f scaling, drawn N(0, sd²) (Lucid: sd = 0.01). C = 3 decorrelates the colours with
    Lucid's matrix; any other C (grayscale) keeps the channels as they are.
    """

    def __init__(self, shape, rng: np.random.Generator, sd: float = 0.01, decay: float = 1.0,
                 dtype=np.float64):
        n, c, h, w = (int(v) for v in shape)
        self.shape = (n, c, h, w)
        # Lucid: s·sqrt(HW) with an unnormalised inverse FFT (which divides by HW), which is
        # s with the orthonormal one used here.
        self.scale = 1.0 / np.maximum(_frequencies(h, w), 1.0 / max(h, w)) ** decay
        self.color = _COLOR if c == 3 else np.eye(c)
        self.params = rng.normal(0.0, sd, size=(n, c, h, w // 2 + 1, 2)).astype(dtype)

    def _spatial(self, params: np.ndarray) -> np.ndarray:
        """The colour-correlated image before the sigmoid: M · irfft2(s · p) / 4."""
        spectrum = (params[..., 0] + 1j * params[..., 1]) * self.scale
        plain = np.fft.irfft2(spectrum, s=self.shape[2:], norm="ortho") / 4.0
        return np.einsum("ij,njhw->nihw", self.color, plain)

    def image(self) -> np.ndarray:
        return _sigmoid(self._spatial(self.params))

    def backward(self, grad_image: np.ndarray) -> np.ndarray:
        """The adjoint of each linear step, in reverse: σ', Mᵀ, irfft2's adjoint, s."""
        x = self.image()
        grad = np.einsum("ij,nihw->njhw", self.color, grad_image * x * (1 - x)) / 4.0
        spectrum = np.fft.rfft2(grad, norm="ortho")
        # irfft2 reads each column 1 .. W/2 − 1 of the half spectrum twice (it and its
        # conjugate mirror); the DC column and an even width's Nyquist column once.
        width = self.shape[3]
        last = width // 2 if width % 2 else width // 2 - 1
        spectrum[..., 1:last + 1] *= 2.0
        spectrum *= self.scale
        return np.stack([spectrum.real, spectrum.imag], axis=-1).astype(self.params.dtype)

    def set_image(self, image: np.ndarray) -> None:
        """Parameters whose image is ``image`` (exact up to the clip into (0, 1))."""
        spatial = np.einsum("ij,njhw->nihw", np.linalg.inv(self.color), _logit(image))
        spectrum = np.fft.rfft2(spatial * 4.0, norm="ortho") / self.scale
        self.params[...] = np.stack([spectrum.real, spectrum.imag], axis=-1)


@dataclass
class Transform:
    """One random view of the image: out = roll(T x + (1 − T1) · fill), T bilinear sampling.

    ``matrix``: sparse (H·W, H·W), row = output pixel, columns = the input pixels it reads
    with their bilinear weights; a row summing to less than 1 reads the ``fill`` (per channel)
    for the part outside the image. ``roll``: (dy, dx), a circular shift applied last.
    """

    matrix: scipy.sparse.csr_matrix
    fill: np.ndarray
    roll: tuple[int, int]

    def apply(self, images: np.ndarray) -> np.ndarray:
        """(N, C, H, W) → (N, C, H, W)."""
        n, c, h, w = images.shape
        flat = images.reshape(n * c, h * w)
        out = (self.matrix @ flat.T).T.reshape(n, c, h, w)
        uncovered = 1.0 - np.asarray(self.matrix.sum(axis=1)).reshape(h, w)
        out = out + uncovered * self.fill.reshape(1, c, 1, 1)
        return np.roll(out, self.roll, axis=(2, 3))

    def adjoint(self, grad: np.ndarray) -> np.ndarray:
        """The backward of ``apply``: Tᵀ roll⁻¹(grad) (the fill is a constant)."""
        n, c, h, w = grad.shape
        back = np.roll(grad, (-self.roll[0], -self.roll[1]), axis=(2, 3)).reshape(n * c, h * w)
        return (self.matrix.T @ back.T).T.reshape(n, c, h, w)


def sampling_matrix(height: int, width: int, scale: float = 1.0, angle: float = 0.0,
                    shift=(0.0, 0.0)) -> scipy.sparse.csr_matrix:
    """Bilinear sampling of an (H, W) image scaled by ``scale`` and rotated by ``angle``
    degrees about its centre (anticlockwise as displayed, rows downward; 90 is ``np.rot90``),
    then shifted by ``shift`` = (dy, dx) pixels: a sparse (H·W, H·W) matrix.

    Output pixel q reads the input at c + R(angle)(q − c − shift) / scale, in (row, column)
    coordinates; reads outside the image are dropped (the caller's fill).
    """
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    qy, qx = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64),
                         indexing="ij")
    uy, ux = (qy - cy - shift[0]) / scale, (qx - cx - shift[1]) / scale
    cos, sin = math.cos(math.radians(-angle)), math.sin(math.radians(-angle))
    sy, sx = cy + cos * uy - sin * ux, cx + sin * uy + cos * ux
    y0, x0 = np.floor(sy), np.floor(sx)
    rows, cols, weights = [], [], []
    out_index = np.arange(height * width)
    for dy in (0, 1):
        for dx in (0, 1):
            y, x = y0 + dy, x0 + dx
            weight = (1 - np.abs(sy - y)) * (1 - np.abs(sx - x))
            keep = ((y >= 0) & (y < height) & (x >= 0) & (x < width) & (weight > 1e-12)).ravel()
            rows.append(out_index[keep])
            cols.append((y * width + x).astype(np.int64).ravel()[keep])
            weights.append(weight.ravel()[keep])
    import scipy.sparse  # lazy: see the top

    return scipy.sparse.csr_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
        shape=(height * width, height * width),
    )


def default_robustness(size: int) -> dict:
    """Lucid's standard transforms (for 224 px: pad 12, jitter 8, scale ±10 %, rotate ±10°)
    with the pixel magnitudes scaled to an image whose shorter side is ``size``: at 28 px a
    shift of up to 2 px and a roll of up to 1 px; at 8 px no shift or roll at all."""
    return {"pad": round(12 * size / 224), "jitter": round(8 * size / 224),
            "scale": 0.1, "rotate": 10.0}


def random_transform(rng: np.random.Generator, shape, fill, pad: int = 0, jitter: int = 0,
                     scale: float = 0.0, rotate: float = 0.0) -> Transform:
    """A random ``Transform`` of (H, W) images: a shift of up to ``pad`` px each way (the
    uncovered border reads ``fill``: Lucid pads, then crops), a scale in [1 − scale,
    1 + scale], a rotation in ±``rotate`` degrees, and a roll of up to ``jitter`` px."""
    height, width = shape
    shift = rng.integers(-pad, pad + 1, size=2) if pad else (0, 0)
    factor = float(rng.uniform(1 - scale, 1 + scale)) if scale else 1.0
    angle = float(rng.uniform(-rotate, rotate)) if rotate else 0.0
    roll = tuple(int(v) for v in rng.integers(-jitter, jitter + 1, size=2)) if jitter else (0, 0)
    matrix = sampling_matrix(height, width, factor, angle, tuple(float(v) for v in shift))
    return Transform(matrix, np.asarray(fill, dtype=np.float64), roll)


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of each (H, W) plane with standard deviation ``sigma`` px."""
    from scipy.ndimage import gaussian_filter  # lazy: scipy.ndimage

    return gaussian_filter(images, sigma=(0, 0, sigma, sigma), mode="nearest")


def penalties(images: np.ndarray, mean, std, l1: float = 0.0, l2: float = 0.0,
              tv: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(penalty per image (N,), its gradient (N, C, H, W)) for

        R(x) = λ₁ Σ|z| + λ₂ Σ z² + λ_tv Σ (x[i+1,j] − x[i,j])² + (x[i,j+1] − x[i,j])²,

    where z = (x − mean) / std is the image as the model sees it (its stored normalisation):
    the lecture's L1 term pulls each pixel toward the training data's mean pixel, the one the
    model sees as 0, so "Σ|x|" is measured from there (a model with no stored normalisation
    sees raw pixels, and 0 is black). ``mean``, ``std``: scalars or one per channel.
    """
    x = np.asarray(images, dtype=np.float64)
    shape = (1, -1, 1, 1)
    mean = np.asarray(mean, dtype=np.float64).reshape(shape if np.ndim(mean) else ())
    std = np.asarray(std, dtype=np.float64).reshape(shape if np.ndim(std) else ())
    z = (x - mean) / std
    value = np.zeros(x.shape[0])
    grad = np.zeros_like(x)
    if l1:
        value += l1 * np.abs(z).sum(axis=(1, 2, 3))
        grad += l1 * np.sign(z) / std
    if l2:
        value += l2 * (z * z).sum(axis=(1, 2, 3))
        grad += 2 * l2 * z / std
    if tv:
        dy = np.diff(x, axis=2)
        dx = np.diff(x, axis=3)
        value += tv * ((dy * dy).sum(axis=(1, 2, 3)) + (dx * dx).sum(axis=(1, 2, 3)))
        # ∂/∂x of Σ d² where d = x[k+1] − x[k]: +2d at k+1, −2d at k
        grad[:, :, 1:, :] += 2 * tv * dy
        grad[:, :, :-1, :] -= 2 * tv * dy
        grad[:, :, :, 1:] += 2 * tv * dx
        grad[:, :, :, :-1] -= 2 * tv * dx
    return value, grad
