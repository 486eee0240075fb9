"""Starting test jobs under OpenMPI's mpirun, bounded by a timeout so a hang fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MPIRUN = shutil.which("mpirun")


def require_mpi():
    """Skip (with the reason) where OpenMPI or mpi4py is missing; .ci/run installs both."""
    if MPIRUN is None:
        pytest.skip("needs mpirun (Debian: apt-get install openmpi-bin libopenmpi-dev)")
    pytest.importorskip("mpi4py", reason="needs mpi4py (pip install -e '.[mpi]')")


def environment() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # root in a container (CI) needs both; --oversubscribe for more ranks than cores
    env["OMPI_ALLOW_RUN_AS_ROOT"] = env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
    env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"  # no CMA in containers
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["MPLBACKEND"] = "Agg"
    return env


def command(ranks: int, *args: str, mca: tuple[str, ...] = ()) -> list[str]:
    extra = [part for pair in mca for part in ("--mca", *pair.split("=", 1))]
    return [MPIRUN, "-np", str(ranks), *extra, sys.executable, *args]


def run(ranks: int, *args: str, timeout: float = 180, cwd=None,
        mca: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``mpirun -np ranks python args…``, its output captured; a hang fails the test."""
    try:
        return subprocess.run(command(ranks, *args, mca=mca), check=False, capture_output=True,
                              text=True,
                              timeout=timeout, env=environment(), cwd=cwd or ROOT,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"mpirun -np {ranks} {' '.join(args)} hung for {timeout} s: {error.stdout}")


def popen(ranks: int, *args: str, cwd=None, mca: tuple[str, ...] = ()) -> subprocess.Popen:
    return subprocess.Popen(command(ranks, *args, mca=mca), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=environment(),
                            cwd=cwd or ROOT, start_new_session=True)
