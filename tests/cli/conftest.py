"""Fixtures of the CLI tests: one finished tiny run, and copies of it to change."""

import os
import shutil

import pytest

from .helpers import train


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A finished 2-epoch tiny run (12×12 digits); tests copy it before changing it."""
    out = tmp_path_factory.mktemp("finished")
    cwd = os.getcwd()
    os.chdir(out)
    try:
        assert train("--epochs", 2, "--name", "done") == 0
    finally:
        os.chdir(cwd)
    return out / "runs" / "done"


@pytest.fixture
def run_copy(finished_run, tmp_path, monkeypatch):
    """A copy of ``finished_run`` at tmp_path/runs/done, with tmp_path the working folder."""
    monkeypatch.chdir(tmp_path)
    copy = tmp_path / "runs" / "done"
    shutil.copytree(finished_run, copy)
    return copy
