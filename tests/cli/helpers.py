"""Helpers of the CLI tests: a tiny, fast training configuration and subprocess runs."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cnnlab.cli import main

REPO = Path(__file__).resolve().parents[2]
#: the lecture net on 12×12 digits, 6 batches per epoch: about a second per epoch on 2 cores
TINY = [
    "--image-size",
    "12",
    "--batch-size",
    "256",
    "--augment",
    "none",
    "--verbose",
    "0",
    "--threads",
    "1",
]


def train(*args):
    """``cnnlab train`` in this process with the TINY settings (later arguments win)."""
    return main(["train", *TINY, *map(str, args)])


def environment() -> dict:
    """The environment for a ``python -m cnnlab`` subprocess that imports this repository."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def cnnlab_process(*args, cwd, timeout=240):
    """Run ``python -m cnnlab ARGS`` in ``cwd``; return the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment(),
        check=False,
    )


def interrupt_training(cwd, *args, after: str):
    """Start ``python -m cnnlab train ARGS`` in ``cwd``, send SIGINT once a stdout line starts
    with ``after``, and return (returncode, whole stdout, stderr)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", "train", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    lines = []
    deadline = time.monotonic() + 200
    while time.monotonic() < deadline:
        lines.append(process.stdout.readline())
        if lines[-1].startswith(after) or not lines[-1]:
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=200)
    return process.returncode, "".join(lines) + out, err
