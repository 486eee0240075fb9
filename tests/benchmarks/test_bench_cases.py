"""The benchmark's new cases compute the same thing in cnnlab and PyTorch (tiny sizes, float64).

Each case's own step functions run once or twice from the same weights: losses, gradients and
the updated weights must agree, so a ratio compares like with like.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the benchmark compares against PyTorch")

from benchmarks.cases import fashion_cnnlab, fashion_torch, go, kernels, lenet, text
from cnnlab import nn

TOLERANCE = 1e-9


def assert_close(ours, theirs, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    ours = ours.to_dense() if hasattr(ours, "to_dense") else ours  # a row-sparse gradient
    scale = max(1.0, float(np.abs(theirs).max()))
    assert np.abs(np.asarray(ours) - theirs).max() <= TOLERANCE * scale, what


def test_go_policy_step_matches_torch():
    weights = go.policy_weights(4, planes=3, size=5, layers=4, dtype=np.float64)
    x, moves = go.policy_inputs(batch=3, planes=3, size=5, dtype=np.float64)
    ours, theirs = go.CnnlabStep(weights, x, moves), go.TorchStep(weights, x, moves)
    for step in range(2):
        assert ours() == pytest.approx(theirs(), rel=TOLERANCE), f"loss of step {step}"
    ours_params, theirs_params = ours.model.parameters(), list(theirs.model.parameters())
    assert [p.shape for p in ours_params] == [tuple(p.shape) for p in theirs_params]
    for i, (p, q) in enumerate(zip(ours_params, theirs_params)):
        assert_close(p.grad, q.grad, f"gradient {i}")
        assert_close(p.data, q, f"weights {i} after two steps")
    # the steps changed the weights, so the comparison above was not of the initial weights
    assert not np.allclose(ours_params[0].data, weights[0])


def test_go_step_flops_count_every_conv():
    # layer 1 has no ∂L/∂x; the 3×3 and 1×1 layers have forward, ∂L/∂w and ∂L/∂x
    first = 2 * 2 * 4 * 25 * 3 * 25
    middle = 2 * 2 * 4 * 25 * 4 * 9
    last = 2 * 2 * 1 * 25 * 4
    expected = 2 * first + 3 * (2 * middle + last)
    assert go.step_conv_flops(2, 4, planes=3, size=5, layers=4) == expected


def test_vgg_block_matches_torch():
    x, params, upstream = kernels.vgg_block_inputs(n=2, channels=3, size=5, dtype=np.float64)
    ours = kernels.vgg_block_cnnlab(x, params, upstream)
    theirs = kernels.vgg_block_torch(torch.from_numpy(x), [torch.from_numpy(p) for p in params],
                                     torch.from_numpy(upstream))
    for name, a, b in zip(("x", "w1", "b1", "w2", "b2"), ours, theirs):
        assert_close(a, b, f"gradient of {name}")


@pytest.mark.parametrize("layout", ["conv1d", "conv2d"])
def test_text_cnn_step_matches_torch(layout):
    weights = text.text_cnn_weights(vocabulary=30, dim=6, filters=4, dtype=np.float64)
    indices, labels = text.text_cnn_inputs(batch=3, length=7, vocabulary=30)
    # dropout off: the two frameworks draw different masks
    ours = text.CnnlabStep(weights, indices, labels, layout, dropout=0.0)
    theirs = text.TorchStep(weights, indices, labels, layout, dropout=0.0)
    for step in range(2):
        assert ours() == pytest.approx(theirs(), rel=TOLERANCE), f"loss of step {step}"
    for i, (p, q) in enumerate(zip(ours.params, theirs.params)):
        assert_close(p.data, q, f"weights {i} after two steps")
    assert not np.allclose(ours.params[0].data, weights[0]), "the embedding did not train"


def test_text_cnn_layouts_hold_the_same_kernels():
    weights = text.text_cnn_weights(vocabulary=30, dim=6, filters=4)
    as_2d = text.in_layout(weights, "conv2d")
    for w1, w2 in zip(weights, as_2d):
        if w1.ndim == 3:  # (f, dim, h) → (f, 1, h, dim)
            assert w2.shape == (w1.shape[0], 1, w1.shape[2], w1.shape[1])
            np.testing.assert_array_equal(w2[:, 0], w1.transpose(0, 2, 1))
        else:
            np.testing.assert_array_equal(w1, w2)


def test_fashion_epoch_matches_torch():
    model = fashion_cnnlab.build(dtype=np.float64)
    reference = fashion_torch.build(fashion_cnnlab.ordered_state(model))
    # dropout off in both (different masks); batch norm and momentum as in the benchmark
    for layer in model.children():
        if isinstance(layer, nn.Dropout):
            layer.rate = 0.0
    for layer in reference:
        if isinstance(layer, torch.nn.Dropout):
            layer.p = 0.0
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 1, 28, 28))
    y = rng.integers(0, 10, 6)
    ours = fashion_cnnlab.epoch(model, x, y, batch_size=3)
    theirs = fashion_torch.epoch(reference, x, y, batch_size=3)
    assert ours == pytest.approx(theirs, rel=1e-7)
    for i, (a, b) in enumerate(zip(fashion_cnnlab.ordered_state(model),
                                   fashion_torch.ordered_state(reference))):
        assert_close(a, b, f"state {i} after the epoch")


def test_lenet_epoch_matches_torch():
    weights = [w.astype(np.float64) for w in lenet.lenet_weights()]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 1, 28, 28))
    y = rng.integers(0, 10, 8)
    ours = lenet.lenet_epoch_cnnlab(x, y, weights, batch_size=4)
    theirs = lenet.lenet_epoch_torch(x, y, weights, batch_size=4)
    assert ours == pytest.approx(theirs, rel=1e-7)


def test_grid_sample_case_matches_torch():
    from benchmarks.cases import sampling

    x, grid, upstream = sampling.sampling_inputs(n=3, size=9, out=6, dtype=np.float64)
    ours = sampling.grid_sample_cnnlab(x, grid, upstream)
    theirs = sampling.grid_sample_torch(*(torch.from_numpy(a) for a in (x, grid, upstream)))
    for name, a, b in zip(("x", "grid"), ours, theirs):
        assert np.abs(a).max() > 0, f"gradient of {name} is zero: the case tests nothing"
        assert_close(a, b, f"gradient of {name}")
