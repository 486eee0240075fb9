"""fashion_epoch_memory: the peak resident memory of one fashion epoch, each framework alone in a
fresh process (``run.py --memory-child cnnlab|torch``), so that neither pays for the other's
libraries. Imports neither framework itself."""

from __future__ import annotations

import importlib
import re
import resource
import subprocess
import sys
from pathlib import Path

from benchmarks.cases.data import fashion_mnist

RUN_PY = Path(__file__).resolve().parents[1] / "run.py"
FRAMEWORKS = ("cnnlab", "torch")


def memory_child(framework: str, threads: int) -> None:
    """Run one fashion epoch with ``framework`` alone, then print the process's peak RSS."""
    x, y, _ = fashion_mnist()
    # Imported by name here: the child must load one framework, never both.
    side = importlib.import_module(f"benchmarks.cases.fashion_{framework}")
    if framework == "cnnlab":
        import cnnlab

        cnnlab.keep_freed_memory(True)  # as fit does
    else:
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(0)
    side.epoch(side.build(), x, y)
    print(f"maxrss_kib={peak_rss_kib()}", flush=True)


def peak_rss_kib() -> int:
    """This process's peak resident KiB: VmHWM, which starts afresh at exec.

    Not getrusage's ru_maxrss: Linux keeps that across fork and exec, so a child started by
    a parent that once held 2 GB reported 2 GB (both frameworks read 2148 MiB in one run).
    """
    status = Path("/proc/self/status")
    if status.exists():
        found = re.search(r"^VmHWM:\s+(\d+) kB", status.read_text(), re.MULTILINE)
        if found:
            return int(found.group(1))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def peak_rss_mib(framework: str, threads: int) -> float:
    """Peak resident MiB of a fresh ``run.py --memory-child framework`` process."""
    command = [sys.executable, str(RUN_PY), "--memory-child", framework, "--threads", str(threads)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return int(re.search(r"maxrss_kib=(\d+)", out).group(1)) / 1024


def bench_memory(threads: int) -> None:
    cnnlab_mib, torch_mib = (peak_rss_mib(framework, threads) for framework in FRAMEWORKS)
    print(f"bench case=fashion_epoch_memory cnnlab_mb={cnnlab_mib:.0f} torch_mb={torch_mib:.0f} "
          f"ratio={cnnlab_mib / torch_mib:.2f}", flush=True)
