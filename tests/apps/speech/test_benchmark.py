"""The fsdd_2d_epoch benchmark compares like with like: the PyTorch replica trains the same."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks.cases import fashion_cnnlab, fashion_torch, speech


def test_the_torch_replica_of_the_2d_model_trains_the_same_epoch():
    model = speech.build_cnnlab(dropout=0.0, dtype=np.float64)  # dropout masks would differ
    reference = speech.build_torch(fashion_cnnlab.ordered_state(model), dropout=0.0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 1, 40, 64))
    y = rng.integers(0, 10, 6)
    ours = speech.epoch_cnnlab(model, x, y, batch_size=3)
    theirs = speech.epoch_torch(reference, x, y, batch_size=3)
    assert ours == pytest.approx(theirs, rel=1e-7)
    for a, b in zip(fashion_cnnlab.ordered_state(model), fashion_torch.ordered_state(reference)):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-6, atol=1e-9)
