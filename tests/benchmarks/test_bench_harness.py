"""The benchmark harness's pure logic: environment cleaning, load accounting, retries, summaries.

No test here times anything: clocks and load readings are scripted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import harness, run
from benchmarks.harness import Block, CpuSnapshot, DiscardBudget, PairResult, Settings

PROC_STAT = """cpu  100 5 20 900 7 3 2 1 4 0
cpu0 50 2 10 450 3 1 1 0 2 0
intr 12345
"""


def test_cleaned_environment_drops_only_the_blas_overrides():
    env = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576", "PATH": "/bin"}
    assert harness.cleaned_environment(env) == {"PATH": "/bin"}
    assert harness.cleaned_environment({"OPENBLAS_L2_SIZE": "1", "HOME": "/h"}) == {"HOME": "/h"}


def test_cleaned_environment_is_none_when_nothing_to_remove():
    assert harness.cleaned_environment({"PATH": "/bin", "OPENBLAS_NUM_THREADS": "2"}) is None


def test_reexec_runs_the_same_command_without_the_overrides(monkeypatch):
    calls = []
    monkeypatch.setattr(run.os, "environ", {"OPENBLAS_CORETYPE": "Haswell", "PATH": "/bin"})
    monkeypatch.setattr(run.os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    monkeypatch.setattr(run.sys, "orig_argv", ["python", "-X", "utf8", "benchmarks/run.py", "conv"])
    run.reexec_without_blas_overrides()
    [(path, argv, env)] = calls
    assert path == run.sys.executable
    assert argv == [run.sys.executable, "-X", "utf8", "benchmarks/run.py", "conv",
                    run.REMOVED_FLAG, "OPENBLAS_CORETYPE=Haswell"]
    assert env == {"PATH": "/bin"}


def test_no_reexec_when_the_environment_is_clean(monkeypatch):
    monkeypatch.setattr(run.os, "environ", {"PATH": "/bin"})
    monkeypatch.setattr(run.os, "execve", lambda *a: pytest.fail("re-executed"))
    run.reexec_without_blas_overrides()


def test_parts_are_checked_and_the_removed_flag_parses():
    args = run.parse_arguments(["go", "text", run.REMOVED_FLAG, "OPENBLAS_L2_SIZE=1"])
    assert args.parts == ["go", "text"] and args.blas_env_removed == "OPENBLAS_L2_SIZE=1"
    with pytest.raises(SystemExit):
        run.parse_arguments(["gpu"])


def test_busy_jiffies_counts_user_nice_system_irq_softirq_steal():
    # idle (900) and iowait (7) are not busy; guest (4) is already inside user
    assert harness.busy_jiffies(PROC_STAT) == 100 + 5 + 20 + 3 + 2 + 1


def test_busy_jiffies_needs_the_aggregate_line():
    with pytest.raises(ValueError):
        harness.busy_jiffies("cpu0 1 2 3 4\n")


def test_foreign_cores_is_machine_busy_minus_our_own_time_over_wall():
    assert harness.foreign_cores(busy_seconds=3.0, own_cpu_seconds=2.0, wall_seconds=2.0) == 0.5
    # tick rounding can make our own time exceed the machine's: never below zero
    assert harness.foreign_cores(1.0, 1.05, 1.0) == 0.0
    assert harness.foreign_cores(1.0, 0.0, 0.0) == 0.0


def test_load_probe_reads_proc_stat_and_rusage(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(PROC_STAT)
    probe = harness.LoadProbe(str(stat))
    snapshot = probe.snapshot()
    assert snapshot.busy_seconds == pytest.approx(131 / probe.tick)
    assert snapshot.own_cpu_seconds > 0
    missing = harness.LoadProbe(str(tmp_path / "absent")).snapshot()
    assert missing.busy_seconds is None
    assert harness.LoadProbe.foreign(missing, missing) is None


def test_load_probe_foreign_from_two_snapshots():
    start = CpuSnapshot(busy_seconds=10.0, own_cpu_seconds=1.0, wall=100.0)
    end = CpuSnapshot(busy_seconds=13.0, own_cpu_seconds=2.0, wall=102.0)
    assert harness.LoadProbe.foreign(start, end) == 1.0


def scripted(loads):
    """A measure_once that returns blocks with the given foreign loads, in order."""
    loads = iter(loads)
    return lambda: Block(1.0, next(loads))


def test_a_loaded_block_is_measured_again():
    budget = DiscardBudget(limit=5, max_foreign=0.25)
    block = budget.measure(scripted([0.9, 0.3, 0.1]))
    assert block.foreign == 0.1
    assert (budget.discarded, budget.kept_under_load) == (2, 0)


def test_unmeasurable_load_is_accepted():
    budget = DiscardBudget(limit=5, max_foreign=0.25)
    assert budget.measure(scripted([None])).foreign is None
    assert budget.discarded == 0


def test_retries_are_bounded_per_case():
    budget = DiscardBudget(limit=2, max_foreign=0.25)
    assert budget.measure(scripted([1.0, 1.0, 0.8])).foreign == 0.8  # kept, budget spent
    assert budget.measure(scripted([0.7])).foreign == 0.7
    assert (budget.discarded, budget.kept_under_load) == (2, 2)


def test_interquartile_range():
    assert harness.interquartile_range([5, 1, 4, 2, 3]) == 2.0
    assert harness.interquartile_range([1.0, 2.0]) == 0.5
    assert harness.interquartile_range([7.0]) == 0.0


def test_calls_per_block_reaches_the_minimum_duration():
    assert harness.calls_per_block(0.003, 0.2) == 67
    assert harness.calls_per_block(1.5, 0.2) == 1
    assert harness.calls_per_block(0.0, 0.2, most=50) == 50


class FakeProbe:
    """Snapshots on a scripted clock (each one 1 s after the last); foreign load from a script."""

    def __init__(self, loads):
        self.wall, self.loads = 0.0, iter(loads)

    def snapshot(self):
        self.wall += 1.0
        return CpuSnapshot(0.0, 0.0, self.wall)

    def foreign(self, start, end):
        return next(self.loads)


def test_time_pair_alternates_sides_and_who_goes_first():
    order = []
    ours, theirs = (lambda: order.append("ours")), (lambda: order.append("theirs"))
    settings = Settings(repeat=3, min_block_s=0.0, max_foreign=0.25, max_discards=4)
    # the third block (ours, second round) is loaded once and redone
    result = harness.time_pair(ours, theirs, settings, warmup=1,
                               probe=FakeProbe([0.0, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0]),
                               warmup_ours=lambda: order.append("warm ours"),
                               warmup_theirs=lambda: order.append("warm theirs"))
    assert order == ["warm ours", "warm theirs",
                     "ours", "theirs", "theirs", "theirs", "ours", "ours", "theirs"]
    assert len(result.ours) == len(result.theirs) == 3
    assert result.discarded == 1
    assert result.ours_ms == result.theirs_ms == 1000.0  # 1 s blocks of one call


def test_bench_line_starts_with_the_fields_the_issue_requires():
    result = PairResult([Block(0.002, 0.1), Block(0.004, 0.0), Block(0.003, 0.2)],
                        [Block(0.001, 0.0), Block(0.0015, 0.0), Block(0.0012, 0.1)], discarded=3)
    line = harness.bench_line("conv_x", result, cnnlab_gflops="9.9")
    assert line.startswith("bench case=conv_x cnnlab_ms=3.00 torch_ms=1.20 ratio=2.50 ")
    assert line.endswith(" cnnlab_iqr=1.00 torch_iqr=0.25 load=0.05 discarded=3 cnnlab_gflops=9.9")


def test_bench_line_without_load_readings():
    result = PairResult([Block(0.002, None)], [Block(0.001, None)])
    assert " load=n/a " in harness.bench_line("x", result)


def test_conv_flops_counts_two_per_multiply_add():
    # 1 image, 2→4 channels, 3×3 output, 3×3 kernel: 4·9 outputs of 2·9 products each
    assert harness.conv_flops(1, 2, 4, 3, 3, 3, 3) == 2 * 4 * 9 * 2 * 9
    assert harness.conv_flops(1, 4, 4, 3, 3, 3, 3, groups=2) == 2 * 4 * 9 * 2 * 9


def test_run_py_reexecs_without_the_overrides_and_prints_the_fields(tmp_path):
    pytest.importorskip("torch", reason="run.py compares against PyTorch")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell", "PYTHONPATH": str(root)}
    command = [sys.executable, str(root / "benchmarks" / "run.py"), "dense", "--threads", "1",
               "--repeat", "1", "--min-block", "0.01"]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600,
                         check=True).stdout
    assert "unset for this run: OPENBLAS_CORETYPE=Haswell" in out
    assert re.search(r"architecture=\S+ threads=1", out), out
    assert re.search(r"^bench case=dense_fwdbwd cnnlab_ms=[\d.]+ torch_ms=[\d.]+ ratio=[\d.]+ "
                     r"cnnlab_iqr=[\d.]+ torch_iqr=[\d.]+ load=\S+ discarded=\d+",
                     out, re.MULTILINE), out


def test_a_child_does_not_report_its_parents_peak_memory():
    """fashion_epoch_memory once read 2148 MiB for both frameworks: ru_maxrss survives exec."""
    held = np.ones(200 * 2**20, dtype=np.uint8)  # the parent now holds 200 MiB
    code = "from benchmarks.cases.memory import peak_rss_kib; print(peak_rss_kib())"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=root, check=True).stdout
    assert held.sum() == held.size
    assert int(out) < 150 * 1024
