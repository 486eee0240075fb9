"""cnnlab.threads: the BLAS thread count from the foreign load, with injected readings
(no timing is asserted), and through fit: the count never changes the results."""

import numpy as np
import pytest

from cnnlab import nn, threads
from cnnlab.threads import (
    BlasThreads,
    CpuReading,
    choose_threads,
    foreign_load,
    read_cpu,
)
from cnnlab.training import fit


def blas_threads_now():
    return threads._blas_threads_now()


@pytest.mark.parametrize(
    ("cores", "load", "expected"),
    [
        (2, 0.0, 2),
        (2, 0.3, 2),
        (2, 0.49, 2),
        (2, 0.5, 1),  # 2 threads in lock step do 2·(1 − 0.5) = 1 core's work: no gain
        (2, 1.0, 1),
        (2, 2.0, 1),  # never below 1
        (2, 7.5, 1),
        (4, 0.0, 4),
        (4, 1.2, 3),  # 2.8 cores free
        (4, 1.5, 2),  # 2.5 free: halves round down
        (4, 3.9, 1),
        (1, 0.0, 1),
    ],
)
def test_choose_threads_rounds_the_free_cores(cores, load, expected):
    assert choose_threads(cores, load) == expected


def test_foreign_load_is_busy_time_minus_own_time_per_second():
    before = CpuReading(wall=10.0, busy=100.0, own=5.0)
    after = CpuReading(wall=10.5, busy=101.2, own=5.7)  # 1.2 s busy, 0.7 of it ours, in 0.5 s
    assert foreign_load(before, after) == pytest.approx(1.0)
    assert foreign_load(before, before) == 0.0
    # tick rounding can make our own time exceed the busy time: never negative
    assert foreign_load(before, CpuReading(10.5, 100.1, 5.3)) == 0.0


def test_read_cpu_sums_the_usable_cpus_lines_only(tmp_path):
    import os

    usable = sorted(os.sched_getaffinity(0))
    lines = ["cpu  9 9 9 9 9 9 9 9 0 0"]
    for index in usable:
        # user nice system idle iowait irq softirq steal guest guest_nice
        lines.append(f"cpu{index} 100 10 20 5000 40 1 2 3 0 0")
    lines.append(f"cpu{max(usable) + 1} 7777 0 0 0 0 0 0 0 0 0")  # not ours: ignored
    lines.append("intr 1 2 3")
    stat = tmp_path / "stat"
    stat.write_text("\n".join(lines) + "\n")
    reading = read_cpu(stat)
    ticks = os.sysconf("SC_CLK_TCK")
    assert reading.busy == pytest.approx(len(usable) * (100 + 10 + 20 + 1 + 2 + 3) / ticks)
    assert reading.own > 0 and reading.wall > 0
    assert read_cpu(tmp_path / "missing") is None


def readings(*loads, own_share=0.0, seconds=0.1):
    """A read() returning successive CpuReadings, each interval with the given foreign load."""
    values = [CpuReading(0.0, 0.0, 0.0)]
    for load in loads:
        last = values[-1]
        values.append(CpuReading(last.wall + seconds, last.busy + (load + own_share) * seconds,
                                 last.own + own_share * seconds))
    queue = iter(values)
    return lambda: next(queue)


def no_sleep(seconds):
    assert seconds == threads.SAMPLE_SECONDS


def test_a_busy_core_at_the_start_gives_one_thread_and_the_limit_is_undone_on_exit():
    before = blas_threads_now()
    with BlasThreads(read=readings(1.0), sleep=no_sleep, cores=2) as blas:
        assert blas.threads == 1 and blas_threads_now() == 1
        assert blas.load == pytest.approx(1.0)
        assert "1 of 2" in blas.describe() and "1.0 cores busy" in blas.describe()
    assert blas_threads_now() == before


def test_a_quiet_machine_gives_every_core():
    with BlasThreads(read=readings(0.1), sleep=no_sleep, cores=2) as blas:
        assert blas.threads == 2 and blas_threads_now() == 2


def test_recheck_follows_the_load_of_each_epoch():
    # start busy, an epoch still busy (our own thread used a core), then the other process ends
    read = readings(1.0, 0.9, 0.0, own_share=1.0)
    with BlasThreads(read=read, sleep=no_sleep, cores=2) as blas:
        assert blas.threads == 1
        assert blas.recheck() == 1
        assert blas.recheck() == 2 and blas_threads_now() == 2
    assert [count for count, _ in blas.changes] == [1, 2]


def test_a_fixed_count_measures_nothing():
    def read():
        raise AssertionError("a fixed count must not read /proc/stat")

    with BlasThreads(1, read=read, sleep=no_sleep) as blas:
        assert blas.threads == 1 and blas_threads_now() == 1
        assert blas.recheck() == 1 and blas.load is None


def test_no_reading_or_one_core_leaves_blas_alone():
    before = blas_threads_now()
    with BlasThreads(read=lambda: None, sleep=no_sleep, cores=2) as blas:
        assert blas.threads is None and blas_threads_now() == before
    with BlasThreads(read=readings(1.0), sleep=no_sleep, cores=1) as blas:
        assert blas.threads is None and blas.load is None


def small_conv_net():
    return nn.Sequential(
        nn.Conv2D(8, 3, padding=1), nn.BatchNorm(), nn.ReLU(), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dense(10), seed=0,
    ).build((1, 12, 12))


def test_fit_gives_identical_weights_with_one_and_two_threads():
    # products large enough for OpenBLAS to use both threads (32 × 144 × 16,384 in the
    # second convolution), so a split of the sums between threads would show
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 1, 16, 16)).astype(np.float32)
    y = rng.integers(0, 10, 128)
    weights = []
    for count in (1, 2):
        model = nn.Sequential(
            nn.Conv2D(16, 3, padding=1), nn.BatchNorm(), nn.ReLU(),
            nn.Conv2D(32, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2),
            nn.Flatten(), nn.Dense(10), seed=0,
        ).build((1, 16, 16))
        with BlasThreads(count):
            fit(model, (x, y), epochs=2, batch_size=64, verbose=0)
        weights.append([p.data.copy() for p in model.parameters()])
    for one, two in zip(*weights):
        np.testing.assert_array_equal(one, two)


def test_fit_says_when_other_processes_cost_it_a_thread(monkeypatch, capsys):
    monkeypatch.setattr(threads, "read_cpu", readings(1.5, 1.5))  # at the start, after epoch 1
    monkeypatch.setattr(threads, "SAMPLE_SECONDS", 0)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "_blas_threads_now", lambda: 2)
    x = np.zeros((8, 1, 12, 12), dtype=np.float32)
    fit(small_conv_net(), (x, np.zeros(8, dtype=int)), epochs=1, batch_size=4, verbose=2)
    err = capsys.readouterr().err
    assert "note: BLAS threads: 1 of 2 (other processes keep 1.5 cores busy" in err


def test_fit_rechecks_the_load_after_every_epoch(monkeypatch):
    """A quiet start, then busy during epoch 1 and quiet again during epoch 2."""
    applied = []
    original = threads.threadpool_limits

    def record(limits, user_api):
        if limits is not None:
            applied.append(limits)
        return original(limits=None, user_api=user_api)  # changes nothing, restores on exit

    monkeypatch.setattr(threads, "threadpool_limits", record)
    monkeypatch.setattr(threads, "read_cpu", readings(0.0, 1.5, 0.0))
    monkeypatch.setattr(threads, "SAMPLE_SECONDS", 0)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "_blas_threads_now", lambda: 2)
    x = np.zeros((8, 1, 12, 12), dtype=np.float32)
    fit(small_conv_net(), (x, np.zeros(8, dtype=int)), epochs=2, batch_size=4, verbose=0)
    assert applied[-2:] == [1, 2]


def test_a_thread_count_below_one_is_refused():
    message = "BlasThreads: threads must be an int >= 1, received threads=0"
    with pytest.raises(ValueError, match=message):
        BlasThreads(0)


def test_an_inner_automatic_choice_defers_to_the_enclosing_one():
    def read():
        raise AssertionError("the inner one must not measure")

    with BlasThreads(1) as outer:
        with BlasThreads(read=read, sleep=no_sleep, cores=2) as inner:
            assert inner is outer and blas_threads_now() == 1
            assert threads.recheck() == 1
        assert blas_threads_now() == 1  # the inner exit undid nothing
    assert threads.recheck() is None  # none in force


def test_an_inner_fixed_count_overrides_until_its_exit():
    with BlasThreads(read=readings(0.0), sleep=no_sleep, cores=2) as outer:
        assert outer.threads == 2
        with BlasThreads(1):
            assert blas_threads_now() == 1
        assert blas_threads_now() == 2
