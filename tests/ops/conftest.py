"""Fixtures shared by the ops tests."""

import pytest

from cnnlab.ops.conv_routes import batch_threads


@pytest.fixture
def recorded_splits(monkeypatch):
    """(threads, BLAS threads in force) of every ``batch_threads.for_each_range`` call made
    during the test; the calls still run."""
    seen = []
    original = batch_threads.for_each_range

    def recording(n_images, threads, work):
        seen.append((threads, batch_threads.blas_threads()))
        original(n_images, threads, work)

    monkeypatch.setattr(batch_threads, "for_each_range", recording)
    return seen
