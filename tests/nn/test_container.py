"""nn.Parallel: branches on one input, outputs concatenated; shapes, gradients, config, files."""

from __future__ import annotations

import numpy as np
import pytest

import cnnlab.functional as F
from cnnlab import nn
from cnnlab.errors import FileFormatError
from cnnlab.io import load_model, save_model
from cnnlab.nn.config import declared_weights
from cnnlab.tensor import Tensor


def kim_branches(filters=4, widths=(2, 3, 5)):
    return nn.Parallel(*[nn.Sequential(nn.Conv1D(filters, h, activation="relu"),
                                       nn.GlobalMaxPool1D()) for h in widths])


def test_branch_and_concatenation_shapes():
    parallel = kim_branches(filters=4)
    assert parallel.compute_output_shape((6, 9)) == (12,)
    x = np.random.default_rng(0).standard_normal((3, 6, 9)).astype(np.float32)
    out = parallel(x)
    assert out.shape == (3, 12)
    # each block of 4 features is its own branch's output
    for i, branch in enumerate(parallel.branches):
        np.testing.assert_array_equal(out.data[:, 4 * i:4 * i + 4], branch(x).data)
    # channel axis: two convolutions of different filter counts, same length
    channels = nn.Parallel(nn.Conv1D(2, 3, padding=1), nn.Conv1D(5, 1))
    assert channels.compute_output_shape((6, 9)) == (7, 9)
    assert channels(x).shape == (3, 7, 9)
    lengths = nn.Parallel(nn.Conv1D(2, 3), nn.Conv1D(2, 1), axis=2)
    assert lengths.compute_output_shape((6, 9)) == (2, 16)


def test_outputs_that_do_not_fit_are_refused_naming_the_shapes():
    mismatched = nn.Parallel(nn.Conv1D(2, 3), nn.Conv1D(2, 1))  # lengths 7 and 9
    with pytest.raises(ValueError, match=r"Parallel: the branches' outputs \[\(2, 7\), \(2, 9\)\]"):
        mismatched.compute_output_shape((6, 9))
    with pytest.raises(ValueError, match="at least one branch"):
        nn.Parallel()
    with pytest.raises(TypeError):
        nn.Parallel(np.zeros(3))


def test_gradients_match_finite_differences_through_every_branch(check_gradients):
    rng = np.random.default_rng(1)
    w3, w1 = rng.standard_normal((2, 3, 3)), rng.standard_normal((3, 3, 1))

    def fn(x, a, b):
        parallel = nn.Parallel(nn.Conv1D(2, 3, padding=1), nn.Conv1D(3, 1))
        parallel.build(x.shape[1:]).astype(np.float64)
        parallel[0].weight, parallel[1].weight = a, b  # the checked tensors themselves
        return parallel(x)

    check_gradients(fn, rng.standard_normal((2, 3, 5)), w3, w1)


def test_matches_torch(torch):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 6, 10)).astype(np.float32)
    parallel = kim_branches(filters=3)
    parallel.build((6, 10))
    ours = Tensor(x, requires_grad=True)
    out = parallel(ours)
    F.sum(out * np.arange(9, dtype=np.float32)).backward()
    tx = torch.tensor(x, requires_grad=True)
    pooled = [torch.nn.functional.conv1d(tx, torch.from_numpy(b[0].weight.data),
                                         torch.from_numpy(b[0].bias.data)).relu().amax(2)
              for b in parallel.branches]
    theirs = torch.cat(pooled, 1)
    (theirs * torch.arange(9.0)).sum().backward()
    np.testing.assert_allclose(out.data, theirs.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.grad, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_config_declared_weights_summary_and_model_file(tmp_path):
    model = nn.Sequential(nn.Conv1D(4, 1), kim_branches(filters=2), nn.Dense(3), seed=5)
    assert model.compute_output_shape((6, 9)) == (3,)
    names = [name for name, _, _ in declared_weights(model, (6, 9))]
    assert "parallel.2.conv1d.weight" in names and len(names) == 10
    model.build((6, 9))
    assert "parallel (Parallel)" in model.summary()
    rebuilt = nn.from_config(model.get_config())
    assert isinstance(rebuilt[1], nn.Parallel) and len(rebuilt[1]) == 3
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    x = np.random.default_rng(3).standard_normal((2, 6, 9)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x).data, model(x).data)
    # a file whose config says one more branch than its weights is refused before building
    config = model.get_config()
    config["config"]["layers"][1]["config"]["branches"].append(
        config["config"]["layers"][1]["config"]["branches"][0])
    from cnnlab.io import save_arrays
    save_arrays(tmp_path / "bad.npz", model.state_dict(),
                {"kind": "model", "config": config, "input_shape": [6, 9]})
    with pytest.raises(FileFormatError, match="missing"):
        load_model(tmp_path / "bad.npz")
