"""upsample_nearest: a naive loop reference, finite differences, PyTorch as an oracle."""

import numpy as np
import pytest

from cnnlab.ops.upsample import upsample_nearest
from cnnlab.tensor import Tensor

# (H, W, scale, size, offset)
CASES = [
    (3, 4, 2, None, 0),
    (10, 10, 2, (19, 19), 1),  # AlphaGo's pooling variant: 19 → 10 → 19
    (9, 9, 2, (19, 19), 0),  # pooled without padding: the last row repeats the edge
    (4, 3, (3, 2), (10, 7), (2, 1)),
    (5, 5, 2, (3, 4), 0),  # an output smaller than the input: rows never read get no gradient
]
IDS = [f"case{i}" for i in range(len(CASES))]


def naive(x, scale, size, offset):
    sh, sw = (scale, scale) if isinstance(scale, int) else scale
    oh, ow = (x.shape[2] * sh, x.shape[3] * sw) if size is None else size
    o_h, o_w = (offset, offset) if isinstance(offset, int) else offset
    out = np.zeros(x.shape[:2] + (oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            p = min((i + o_h) // sh, x.shape[2] - 1)
            q = min((j + o_w) // sw, x.shape[3] - 1)
            out[:, :, i, j] = x[:, :, p, q]
    return out


def inputs(h, w, seed=0):
    return np.random.default_rng(seed).standard_normal((2, 3, h, w))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_the_naive_loops(case):
    h, w, scale, size, offset = case
    x = inputs(h, w)
    np.testing.assert_array_equal(upsample_nearest(x, scale, size, offset).data,
                                  naive(x, scale, size, offset))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_match_finite_differences(case, check_gradients):
    h, w, scale, size, offset = case
    check_gradients(lambda t: upsample_nearest(t, scale, size, offset), inputs(h, w))


def test_gradient_counts_how_often_each_input_is_read():
    x = Tensor(np.zeros((1, 1, 10, 10)), requires_grad=True)
    upsample_nearest(x, 2, (19, 19), 1).sum().backward()
    # offset 1: row 0 is read once (output row 0), rows 1..9 twice
    reads = np.array([1] + [2] * 9)
    np.testing.assert_array_equal(x.grad[0, 0], np.outer(reads, reads))


def test_matches_torch_interpolate_then_crop_or_replicate_pad():
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x = inputs(10, 10)
    expected = functional.interpolate(torch.from_numpy(x), scale_factor=2, mode="nearest")
    np.testing.assert_array_equal(upsample_nearest(x, 2, (19, 19), 1).data,
                                  expected[:, :, 1:20, 1:20].numpy())
    x = inputs(9, 9)
    up = functional.interpolate(torch.from_numpy(x), scale_factor=2, mode="nearest")
    expected = functional.pad(up, (0, 1, 0, 1), mode="replicate")
    np.testing.assert_array_equal(upsample_nearest(x, 2, (19, 19)).data, expected.numpy())
    # gradients: torch's autograd through the same interpolate + crop
    t = torch.from_numpy(inputs(10, 10)).requires_grad_()
    weights = inputs(19, 19, seed=3)
    cropped = functional.interpolate(t, scale_factor=2, mode="nearest")[:, :, 1:20, 1:20]
    (cropped * torch.from_numpy(weights)).sum().backward()
    ours = Tensor(inputs(10, 10), requires_grad=True)
    (upsample_nearest(ours, 2, (19, 19), 1) * Tensor(weights)).sum().backward()
    np.testing.assert_allclose(ours.grad, t.grad.numpy(), rtol=1e-12)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"upsample_nearest: expected input \(N, C, H, W\)"):
        upsample_nearest(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="scale"):
        upsample_nearest(np.zeros((1, 1, 3, 3)), 0)
    with pytest.raises(ValueError, match="offset"):
        upsample_nearest(np.zeros((1, 1, 3, 3)), 2, None, -1)
