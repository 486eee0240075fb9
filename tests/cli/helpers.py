"""Helpers of the CLI tests: a tiny, fast training configuration and subprocess runs."""

import os
import subprocess
import sys
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
