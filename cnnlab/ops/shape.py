"""Shape operations: reshape, transpose, flatten, concat, stack, pad, indexing."""

from __future__ import annotations

import numpy as np

from cnnlab.tensor import Function, Tensor, as_tensor


class ReshapeFunction(Function):
    """z = a viewed with a new shape;  da = dz reshaped back."""

    def forward(self, a, shape):
        self.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {a.shape} ({a.size} elements) into {shape}"
            ) from None

    def backward(self, grad):
        return (grad.reshape(self.shape),)


class TransposeFunction(Function):
    """z = a with its axes permuted;  da = dz with the inverse permutation."""

    def forward(self, a, axes):
        if axes is not None:
            # Normalise negative axes: the backward's inverse permutation needs them in [0, ndim).
            if any(not -a.ndim <= axis < a.ndim for axis in axes) or sorted(
                axis % a.ndim for axis in axes
            ) != list(range(a.ndim)):
                raise ValueError(
                    f"transpose: axes {axes} are not a permutation of the {a.ndim} axes of {a.shape}"
                )
            axes = tuple(axis % a.ndim for axis in axes)
        self.axes = axes
        return np.transpose(a, axes)

    def backward(self, grad):
        if self.axes is None:
            return (np.transpose(grad),)
        return (np.transpose(grad, np.argsort(self.axes)),)


class GetItemFunction(Function):
    """z = a[index];  da = dz scattered back into zeros (adding where indices repeat)."""

    def forward(self, a, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return a[index]

    def backward(self, grad):
        full = np.zeros(self.shape, dtype=self.dtype)
        np.add.at(full, self.index, grad)
        return (full,)


class PadFunction(Function):
    """z = a surrounded by a constant;  da = dz cropped back."""

    def forward(self, a, pad_width, value):
        self.crop = tuple(slice(before, before + n) for (before, _), n in zip(pad_width, a.shape))
        return np.pad(a, pad_width, mode="constant", constant_values=value)

    def backward(self, grad):
        return (grad[self.crop],)


class ConcatFunction(Function):
    """z = [a₁, a₂, …] joined along an axis;  each daᵢ is its slice of dz."""

    def forward(self, *arrays, axis):
        self.axis = axis
        self.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    def backward(self, grad):
        return tuple(np.split(grad, self.splits, axis=self.axis))


class StackFunction(Function):
    """z = [a₁, a₂, …] stacked on a new axis;  each daᵢ is its index of dz."""

    def forward(self, *arrays, axis):
        self.axis = axis
        return np.stack(arrays, axis=axis)

    def backward(self, grad):
        return tuple(np.take(grad, i, axis=self.axis) for i in range(grad.shape[self.axis]))


def reshape(a: Tensor, shape) -> Tensor:
    return ReshapeFunction.apply(a, shape=tuple(shape))


def transpose(a: Tensor, axes=None) -> Tensor:
    return TransposeFunction.apply(a, axes=None if axes is None else tuple(axes))


def flatten(a: Tensor, start_axis: int = 1) -> Tensor:
    """Flatten every axis from ``start_axis`` on: (N, C, H, W) → (N, C·H·W)."""
    a = as_tensor(a)
    start_axis %= max(a.ndim, 1)
    return reshape(a, a.shape[:start_axis] + (-1,))


def getitem(a: Tensor, index) -> Tensor:
    if isinstance(index, Tensor):
        index = index.data
    if isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItemFunction.apply(a, index=index)


def pad(a: Tensor, pad_width, value: float = 0.0) -> Tensor:
    """Pad with a constant. ``pad_width`` is NumPy's: an int, a pair, or one pair per axis."""
    a = as_tensor(a)
    width = np.broadcast_to(np.asarray(pad_width, dtype=int), (a.ndim, 2))
    if (width < 0).any():
        raise ValueError(f"pad: widths must be non-negative, received {pad_width}")
    return PadFunction.apply(a, pad_width=tuple(map(tuple, width.tolist())), value=value)


def concat(tensors, axis: int = 0) -> Tensor:
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    ndim = tensors[0].ndim
    axis %= ndim
    for t in tensors:
        if t.ndim != ndim or t.shape[:axis] + t.shape[axis + 1 :] != tensors[0].shape[:axis] + tensors[0].shape[axis + 1 :]:
            raise ValueError(
                f"concat: shapes {[x.shape for x in tensors]} differ outside axis {axis}"
            )
    return ConcatFunction.apply(*tensors, axis=axis)


def stack(tensors, axis: int = 0) -> Tensor:
    tensors = [as_tensor(t) for t in tensors]
    if not tensors or any(t.shape != tensors[0].shape for t in tensors):
        raise ValueError(f"stack: needs tensors of one shape, received {[t.shape for t in tensors]}")
    return StackFunction.apply(*tensors, axis=axis % (tensors[0].ndim + 1))
