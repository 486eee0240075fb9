"""cnnlab.distributed without an MPI launch: it stays out of the way (the jobs themselves are
tested under mpirun in tests/distributed/)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cnnlab import distributed
from cnnlab.data.loader import batch_bounds, rank_slice


def test_without_a_launch_there_is_no_group_and_mpi4py_is_not_imported():
    code = ("import sys; from cnnlab import distributed; import cnnlab.cli; "
            "assert distributed.world() is None; assert 'mpi4py' not in sys.modules; print('ok')")
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS")}
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                          text=True, env=env)
    assert done.stdout.strip() == "ok", done.stderr


def test_a_launch_is_read_from_the_launchers_variables(monkeypatch):
    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.launched_size() == 1
    monkeypatch.setenv("PMI_SIZE", "4")
    assert distributed.launched_size() == 4
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "not a number")
    assert distributed.launched_size() == 4


def test_a_launch_without_mpi4py_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import fails as if not installed
    monkeypatch.setattr(distributed, "_world", None)
    with pytest.raises(distributed.DistributedError, match=r"2 ranks.*pip install -e '\.\[mpi\]'"):
        distributed.world()


@pytest.mark.parametrize("count", [1, 7, 8, 29, 30, 64])
@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
@pytest.mark.parametrize("min_share", [1, 2])
def test_every_sample_is_on_exactly_one_rank_once_per_epoch(count, ranks, min_share):
    bounds = batch_bounds(count, 4, ranks, min_share)
    seen = []
    for start, stop in bounds:
        parts = [rank_slice(start, stop, r, ranks) for r in range(ranks)]
        sizes = [hi - lo for lo, hi in parts]
        assert max(sizes) - min(sizes) <= 1
        if len(bounds) > 1:  # a lone batch smaller than the ranks is all there is
            assert min(sizes) >= min_share
        for lo, hi in parts:
            seen.extend(range(lo, hi))
    assert seen == list(range(count))


def test_a_last_batch_too_small_for_the_ranks_joins_the_one_before():
    assert batch_bounds(30, 4, 2) == [(0, 8), (8, 16), (16, 24), (24, 30)]
    assert batch_bounds(25, 4, 2) == [(0, 8), (8, 16), (16, 25)]  # 1 sample for 2 ranks
    assert batch_bounds(27, 4, 2, min_share=2) == [(0, 8), (8, 16), (16, 27)]
    assert batch_bounds(28, 4, 2, min_share=2) == [(0, 8), (8, 16), (16, 24), (24, 28)]
    assert batch_bounds(30, 4, 2, drop_last=True) == [(0, 8), (8, 16), (16, 24)]
    assert rank_slice(24, 29, 0, 2) == (24, 27) and rank_slice(24, 29, 1, 2) == (27, 29)
