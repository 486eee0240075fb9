"""Kill tests (issue 10): SIGKILL a training run at seeded random moments, again and again.

Each moment is chosen by events, not by the clock, so a slow machine changes nothing: the
process is killed after a random number of checkpoint writes (0 = during start-up or the
first epoch) plus a random fraction of a second, which lands anywhere, saves included.
After every kill the last checkpoint must load (or, with none written yet, a resume must
say so cleanly), and the next process resumes the run; the chain ends with a resume that
completes and leaves no temporary files behind.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from cnnlab.checkpoint import load_checkpoint, model_from_checkpoint
from cnnlab.cli import main
from cnnlab.io import load_model

REPO = Path(__file__).resolve().parents[1]
KILLS = 10
EPOCHS = 4
TINY = ["--image-size", "12", "--batch-size", "256", "--augment", "none", "--verbose", "0",
        "--threads", "1"]


def start(cwd, *args) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, "-m", "cnnlab", "train", *TINY, *map(str, args)],
                            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def signature(path: Path):
    """Changes whenever the file is replaced (atomic writes make a new inode)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_mtime_ns)


def kill_after(process, checkpoint: Path, saves: int, extra: float) -> bool:
    """SIGKILL ``process`` after ``saves`` more checkpoint writes and ``extra`` seconds; False if
    it finished first."""
    last, seen = signature(checkpoint), 0
    deadline = time.monotonic() + 200
    while seen < saves and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
        now = signature(checkpoint)
        if now != last:
            last, seen = now, seen + 1
    time.sleep(extra)
    if process.poll() is not None:
        return False
    process.kill()
    process.wait(timeout=60)
    return True


def saved_epoch(checkpoint: Path) -> int:
    """The epoch of the last checkpoint, checked to load completely; 0 without one."""
    if not checkpoint.exists():
        return 0
    state = load_checkpoint(checkpoint)
    assert 1 <= state["epoch"] <= EPOCHS
    assert len(state["history"]["loss"]) == state["epoch"]
    model_from_checkpoint(state)
    return state["epoch"]


def test_sigkill_at_random_points_leaves_a_loadable_checkpoint_and_a_resume_completes(
    tmp_path, capsys
):
    rng = np.random.default_rng(20261201)
    run = tmp_path / "runs" / "killed"
    checkpoint = run / "checkpoint.npz"
    kills = resumed_kills = clean_refusals = 0
    while kills < KILLS:
        done = saved_epoch(checkpoint)
        if done == 0 and (run / "run.json").exists():
            # Killed before the first epoch ended: a resume must refuse cleanly, naming why.
            assert main(["train", "--resume", str(run)]) == 2
            assert "before its first epoch ended" in capsys.readouterr().err
            clean_refusals += 1
        if done:
            process = start(tmp_path, "--resume", run)
        else:
            process = start(tmp_path, "--epochs", EPOCHS, "--name", "killed", "--overwrite")
        saves = int(rng.integers(0, max(EPOCHS - done, 1)))
        if kill_after(process, checkpoint, saves, float(rng.uniform(0.0, 0.4))):
            kills += 1
            resumed_kills += done > 0
        else:
            assert process.returncode == 0, process.stderr.read().decode()
            if saved_epoch(checkpoint) == EPOCHS:
                # Finished before the kill: start the chain again from nothing.
                for path in run.iterdir():
                    path.unlink()
    finished = start(tmp_path, "--resume", run) if saved_epoch(checkpoint) else start(
        tmp_path, "--epochs", EPOCHS, "--name", "killed", "--overwrite")
    assert finished.wait(timeout=200) in (0,), finished.stderr.read().decode()
    assert saved_epoch(checkpoint) == EPOCHS
    assert load_model(run / "model.npz").input_shape == (1, 12, 12)
    assert not [path.name for path in run.iterdir() if path.name.endswith(".tmp")]
    assert resumed_kills >= 1  # the chain really killed resumed runs too, not only fresh starts
