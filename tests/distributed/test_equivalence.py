"""N ranks with batch B train exactly as one process with batch N·B (float64, same seed)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.distributed import mpi_worker
from tests.distributed.mpirun import require_mpi, run

WORKER = "tests/distributed/mpi_worker.py"


def _job(ranks, scenario, tmp_path):
    out = tmp_path / f"{scenario}-{ranks}.npz"
    done = run(ranks, WORKER, scenario, str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(np.load(out))


@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("scenario", ["plain", "dropout", "syncbn"])
def test_ranks_train_exactly_as_one_process_with_their_whole_batch(ranks, scenario, tmp_path):
    require_mpi()
    parallel = _job(ranks, scenario, tmp_path)
    single = mpi_worker.single_process(scenario, mpi_worker.BATCH * ranks)
    assert int(parallel["ranks"]) == ranks
    if scenario == "plain":  # small buckets: the last layers' sums start inside the backward
        assert int(parallel["buckets"]) >= 2 and int(parallel["overlapped"]) == int(parallel["buckets"])
    state_keys = [k for k in single if k.startswith("state/")]
    assert state_keys and set(state_keys) == {k for k in parallel if k.startswith("state/")}
    for key in state_keys:
        np.testing.assert_allclose(parallel[key], single[key], rtol=0, atol=1e-6, err_msg=key)
    # the metrics are the whole batch's, not rank 0's part
    np.testing.assert_allclose(parallel["loss"], single["loss"], rtol=1e-9)
    np.testing.assert_array_equal(parallel["accuracy"], single["accuracy"])
    # and training moved the weights (a run that did nothing would also "match")
    start = mpi_worker.model(scenario).state_dict()
    moved = max(np.abs(single[f"state/{k}"] - v).max() for k, v in start.items())
    assert moved > 1e-3


def test_batch_norm_per_rank_differs_from_the_whole_batch(tmp_path):
    """Without synchronisation each rank normalises its own part: not one process's result
    (this is what --sync-batch-norm is for)."""
    require_mpi()
    out = tmp_path / "local.npz"
    done = run(2, "-c", _LOCAL_BN.format(out=out))
    assert done.returncode == 0, done.stdout + done.stderr
    local = dict(np.load(out))
    single = mpi_worker.single_process("syncbn", mpi_worker.BATCH * 2)
    assert np.abs(local["state/batch_norm.running_mean"] - single["state/batch_norm.running_mean"]).max() > 1e-6


_LOCAL_BN = """
import numpy as np
from tests.distributed import mpi_worker
from cnnlab import distributed
from cnnlab.training import fit
group = distributed.world()
net = mpi_worker.model("syncbn")
history = fit(net, mpi_worker.data(), epochs=mpi_worker.EPOCHS, batch_size=mpi_worker.BATCH,
              lr=0.01, seed=5, verbose=0, parallel=group)
if group.rank == 0:
    np.savez("{out}", **mpi_worker.result(net, history))
"""


def test_an_exception_on_one_rank_ends_the_job_with_its_message(tmp_path):
    require_mpi()
    import time

    start = time.monotonic()
    done = run(2, WORKER, "fail", str(tmp_path / "never.npz"), timeout=120)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "rank 1 of 2" in output and "injected failure on rank 1 at step 3" in output
    assert time.monotonic() - start < 60
    assert not (tmp_path / "never.npz").exists()
