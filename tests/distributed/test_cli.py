"""``cnnlab train`` under mpirun: rank 0 writes, a killed rank leaves a checkpoint that
``--resume`` continues (with another number of ranks), a signal stops every rank together."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from cnnlab.checkpoint import load_checkpoint
from cnnlab.errors import CnnlabError
from tests.distributed.mpirun import popen, require_mpi, run


def _rank_pid(token: str, rank: int, timeout: float = 60) -> int:
    """The pid of rank ``rank`` of the job whose environment holds ``token``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                env = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if (f"CNNLAB_TEST_JOB={token}".encode() in env
                    and f"OMPI_COMM_WORLD_RANK={rank}".encode() in env):
                return int(entry.name)
        time.sleep(0.2)
    pytest.fail(f"rank {rank} of job {token} never started")


def _wait_for_epoch(checkpoint: Path, epoch: int, job, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job.poll() is not None:
            pytest.fail(f"the job ended early: {job.stdout.read()}")
        with contextlib.suppress(CnnlabError, OSError):  # being replaced now: look again
            if checkpoint.exists() and load_checkpoint(checkpoint)["epoch"] >= epoch:
                return
        time.sleep(0.2)
    pytest.fail(f"no checkpoint of epoch {epoch} within {timeout} s")


def _train_job(tmp_path, token, ranks, *args):
    os.environ["CNNLAB_TEST_JOB"] = token
    try:
        return popen(ranks, "-m", "cnnlab", "train", "--out", str(tmp_path), *args,
                     cwd=tmp_path)
    finally:
        del os.environ["CNNLAB_TEST_JOB"]


def test_a_killed_rank_leaves_a_checkpoint_that_resume_continues_on_other_ranks(tmp_path):
    require_mpi()
    token = uuid.uuid4().hex
    job = _train_job(tmp_path, token, 2, "--epochs", "4", "--name", "r", "--augment", "none")
    run_dir = tmp_path / "r"
    _wait_for_epoch(run_dir / "checkpoint.npz", 1, job)
    os.kill(_rank_pid(token, 1), signal.SIGKILL)
    start = time.monotonic()
    output, _ = job.communicate(timeout=60)
    assert job.returncode != 0, output
    assert time.monotonic() - start < 30
    saved = load_checkpoint(run_dir / "checkpoint.npz")
    done = saved["epoch"]
    assert 1 <= done < 4
    resumed = run(3, "-m", "cnnlab", "train", "--resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"after epoch {done}/4" in resumed.stderr
    assert "Data-parallel over 3 ranks" in resumed.stdout
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["loss"]) == 4
    settings = json.loads((run_dir / "run.json").read_text())["settings"]
    assert settings["ranks"] == 3 and settings["global_batch_size"] == 3 * 32
    assert float(resumed.stdout.split("Test accuracy: ")[1].split()[0]) > 0.8


def test_a_signal_to_one_rank_stops_every_rank_after_the_same_batch(tmp_path):
    require_mpi()
    token = uuid.uuid4().hex
    job = _train_job(tmp_path, token, 2, "--epochs", "50", "--name", "s")
    _wait_for_epoch(tmp_path / "s" / "checkpoint.npz", 1, job)
    os.kill(_rank_pid(token, 1), signal.SIGTERM)
    output, _ = job.communicate(timeout=60)
    assert "interrupted (a signal to another rank) at epoch" in output
    assert "Interrupted. The checkpoint after epoch" in output
    assert load_checkpoint(tmp_path / "s" / "checkpoint.npz")["epoch"] >= 1
    assert not (tmp_path / "s" / "model.npz").exists()


def test_speech_train_runs_under_mpirun_with_one_folder_and_one_report(tmp_path):
    require_mpi()
    data = Path(__file__).resolve().parents[3] / "shared" / "datasets"
    if not (data / "fsdd").is_dir():
        pytest.skip(f"needs the FSDD recordings in {data / 'fsdd'}")
    done = run(2, "-m", "cnnlab", "speech", "train", "--model", "2d", "--epochs", "1",
               "--takes", "8", "--data-dir", str(data), "--out", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("Test accuracy:") == 1
    folders = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(folders) == 1 and (folders[0] / "model.npz").is_file()


def test_text_train_runs_under_mpirun_with_one_report(tmp_path):
    require_mpi()
    data = tmp_path / "toy"
    data.mkdir()
    rng = np.random.default_rng(0)
    filler = ["the", "movie", "plot", "was", "very", "quite", "and", "a", "film"]
    for name, words in (("pos", ["good", "great", "fine", "lovely"]),
                        ("neg", ["bad", "awful", "poor", "dull"])):
        lines = [" ".join(rng.permutation([*rng.choice(filler, 6), rng.choice(words)]))
                 for _ in range(60)]
        (data / f"{name}.txt").write_text("\n".join(lines) + "\n")
    done = run(2, "-m", "cnnlab", "text", "train", "--data", str(data), "--folds", "2",
               "--seeds", "1", "--epochs", "2", "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("test accuracy") == 3  # two units and the summary, once each
    folder = tmp_path / "runs" / "text-toy"
    assert sorted(p.name for p in folder.glob("unit-*.json")) == ["unit-s0-f0.json",
                                                                 "unit-s0-f1.json"]


def test_go_train_runs_under_mpirun_with_one_folder_and_one_report(tmp_path):
    require_mpi()
    from tests.apps.go.test_train import _datasets

    root = _datasets(tmp_path / "datasets")
    done = run(2, "-m", "cnnlab", "go", "train", "--data-root", str(root), "--out",
               str(tmp_path / "runs"), "--k", "4", "--layers", "2", "--batch-size", "64",
               "--epochs", "1", "--name", "dp", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("top-1 accuracy on held-out Fox pro games:") == 1
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["dp"]
    assert (tmp_path / "runs" / "dp" / "model.npz").is_file()
