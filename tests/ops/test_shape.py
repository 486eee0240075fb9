"""reshape, transpose, flatten, concat, stack, pad and indexing."""

import numpy as np
import pytest

from cnnlab.ops import shape as S
from cnnlab.tensor import Tensor


def _array(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


UNARY_CASES = {
    "reshape": (lambda t: S.reshape(t, (4, 6)), lambda t: t.reshape(4, 6)),
    "reshape_infer": (lambda t: t.reshape(-1, 3), lambda t: t.reshape(-1, 3)),
    "transpose_default": (lambda t: S.transpose(t), lambda t: t.permute(2, 1, 0)),
    "transpose_axes": (lambda t: t.transpose(1, 2, 0), lambda t: t.permute(1, 2, 0)),
    "transpose_negative": (lambda t: t.transpose(0, -1, 1), lambda t: t.permute(0, 2, 1)),
    "transpose_negative_first": (lambda t: t.transpose(-1, 0, -2), lambda t: t.permute(2, 0, 1)),
    "T": (lambda t: t.T, lambda t: t.permute(2, 1, 0)),
    "flatten": (lambda t: S.flatten(t), lambda t: t.flatten(1)),
    "flatten_0": (lambda t: t.flatten(0), lambda t: t.flatten(0)),
    "flatten_2": (lambda t: t.flatten(2), lambda t: t.flatten(2)),
    "pad": (
        lambda t: S.pad(t, ((0, 0), (1, 2), (2, 1)), value=0.5),
        lambda t: _torch().nn.functional.pad(t, (2, 1, 1, 2, 0, 0), value=0.5),
    ),
    "pad_int": (lambda t: t.pad(1), lambda t: _torch().nn.functional.pad(t, (1, 1, 1, 1, 1, 1))),
    "getitem_int": (lambda t: t[1], lambda t: t[1]),
    "getitem_scalar": (lambda t: t[1, 2, 3], lambda t: t[1, 2, 3]),
    "getitem_slices": (lambda t: t[:, 1:, ::2], lambda t: t[:, 1:, ::2]),
    "getitem_negative": (lambda t: t[-1, :, -2], lambda t: t[-1, :, -2]),
    "getitem_fancy_repeated": (lambda t: t[:, [0, 2, 0, 0]], lambda t: t[:, [0, 2, 0, 0]]),
    "getitem_fancy_pairs": (
        lambda t: t[np.array([0, 1, 1]), np.array([2, 0, 2])],
        lambda t: t[[0, 1, 1], [2, 0, 2]],
    ),
    "getitem_ellipsis_newaxis": (lambda t: t[..., None, 1], lambda t: t[..., None, 1]),
}


def _torch():
    import torch

    return torch


@pytest.mark.parametrize("name", UNARY_CASES)
def test_unary_shape_op_gradcheck(name, check_gradients):
    ours, _ = UNARY_CASES[name]
    check_gradients(ours, _array((2, 3, 4)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", UNARY_CASES)
def test_unary_shape_op_against_torch(name, dtype, torch_check):
    ours, theirs = UNARY_CASES[name]
    torch_check(ours, theirs, _array((2, 3, 4), dtype))


def test_getitem_repeated_indices_accumulate():
    x = Tensor(np.arange(5.0), requires_grad=True)
    x[[0, 0, 3, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad, [3, 0, 0, 1, 0])


def test_getitem_boolean_mask_and_tensor_index(check_gradients):
    x = _array((3, 4))
    mask = x > 0
    check_gradients(lambda t: t[mask], x)
    index = Tensor(np.array([2, 0, 2]))
    check_gradients(lambda t: t[index], x)
    check_gradients(lambda t: t[(slice(None), index)], x)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_concat_gradcheck(axis, check_gradients):
    shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
    for i, n in enumerate((1, 2, 3)):
        shapes[i][axis] = n
    arrays = [_array(s, seed=i) for i, s in enumerate(shapes)]
    check_gradients(lambda *ts: S.concat(ts, axis=axis), *arrays)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("axis", [0, 2, -2])
def test_concat_against_torch(axis, dtype, torch_check, torch):
    shapes = [[2, 3, 4], [2, 3, 4]]
    shapes[1][axis] = 5
    a, b = _array(shapes[0], dtype), _array(shapes[1], dtype, seed=1)
    torch_check(lambda x, y: S.concat([x, y], axis=axis), lambda x, y: torch.cat([x, y], dim=axis), a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("axis", [0, 1, 3, -1])
def test_stack_against_torch_and_gradcheck(axis, dtype, torch_check, check_gradients, torch):
    arrays = [_array((2, 3, 4), dtype, seed=i) for i in range(3)]
    torch_check(
        lambda *ts: S.stack(ts, axis=axis), lambda *ts: torch.stack(ts, dim=axis), *arrays
    )
    if dtype == np.float64:
        check_gradients(lambda *ts: S.stack(ts, axis=axis), *arrays)


def test_reshape_tensor_method_accepts_tuple_or_varargs():
    x = Tensor(_array((2, 3, 4)))
    assert x.reshape(6, 4).shape == (6, 4)
    assert x.reshape((3, 8)).shape == (3, 8)
    assert x.transpose((2, 0, 1)).shape == (4, 2, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shape_ops_keep_dtype(dtype):
    x = Tensor(_array((2, 3, 4), dtype), requires_grad=True)
    out = S.concat([x.reshape(3, 8), x.transpose(1, 0, 2).reshape(3, 8)], axis=0).pad(1)
    out = S.stack([out, out])[:, 1:3].flatten()
    assert out.dtype == dtype
    out.sum().backward()
    assert x.grad.dtype == dtype


def test_reshape_error_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"reshape: .*\(2, 3, 4\) \(24 elements\) into \(5, 5\)"):
        Tensor(_array((2, 3, 4))).reshape(5, 5)


@pytest.mark.parametrize("axes", [(0, 1), (0, 0, 1), (0, 1, 3), (0, 1, -4)])
def test_transpose_error_names_op_and_axes(axes):
    with pytest.raises(ValueError, match="transpose: axes .* not a permutation .*3 axes of"):
        Tensor(_array((2, 3, 4))).transpose(axes)


def test_concat_error_names_shapes_and_axis():
    with pytest.raises(ValueError, match=r"concat: shapes \[\(2, 3\), \(3, 3\)\] differ outside axis 1"):
        S.concat([Tensor(np.ones((2, 3))), Tensor(np.ones((3, 3)))], axis=1)
    with pytest.raises(ValueError, match="concat: needs at least one tensor"):
        S.concat([])


def test_stack_error_names_shapes():
    with pytest.raises(ValueError, match=r"stack: .*\[\(2, 3\), \(2, 4\)\]"):
        S.stack([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4)))])


def test_pad_rejects_negative_widths():
    with pytest.raises(ValueError, match="pad: widths must be non-negative"):
        S.pad(Tensor(np.ones((2, 3))), ((0, -1), (1, 1)))
