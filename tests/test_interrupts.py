"""Ctrl-C and SIGTERM stop a tiny training run cleanly, in a subprocess that gets the signal."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnlab.interrupts import stop_signals

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys, time
import numpy as np
import cnnlab.batches
from cnnlab import nn
from cnnlab.callbacks import Callback
from cnnlab.interrupts import stop_signals
from cnnlab.training import fit

class Slow(Callback):
    def on_batch_end(self, state, batch, logs):
        print("batch", state.epoch, batch, flush=True)
        time.sleep(0.3)

mode = sys.argv[1]
if mode == "prepare":  # make fit's own preparation slow, as loading a large data set is
    original = cnnlab.batches.Batches.__init__
    def slow_init(self, *args, **kwargs):
        print("preparing", flush=True)
        time.sleep(3)
        original(self, *args, **kwargs)
    cnnlab.batches.Batches.__init__ = slow_init
model = nn.Sequential(nn.Flatten(), nn.Dense(3), seed=0).build((1, 2, 2))
x = np.zeros((40, 1, 2, 2), np.float32)
y = np.arange(40) % 3
if mode == "early":
    with stop_signals(verbose=0):  # what a program does around its own slow start
        print("loading", flush=True)
        time.sleep(3)
        history = fit(model, (x, y), epochs=3, batch_size=4, verbose=0, callbacks=[Slow()])
else:
    history = fit(model, (x, y), epochs=3, batch_size=4, verbose=0, callbacks=[Slow()])
print("result", history.interrupted, history.signal, history.epochs, history.stop_reason, flush=True)
"""


def run_until(mode: str, marker: str, signum: int):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(marker):
            process.send_signal(signum)
            break
    out, err = process.communicate(timeout=120)
    return process.returncode, "".join(lines) + out, err


def result_line(stdout: str) -> str:
    return [line for line in stdout.splitlines() if line.startswith("result")][-1]


def test_sigterm_stops_like_sigint_at_the_end_of_the_batch():
    code, out, err = run_until("batches", "batch 0 1", signal.SIGTERM)
    assert code == 0, err
    assert "Traceback" not in err
    result = result_line(out)
    assert result.startswith(
        "result True SIGTERM 0 interrupted (SIGTERM) at epoch 1, batch "
    )
    stopped_at = int(result.split("batch ")[1].split("/")[0])
    assert 2 <= stopped_at <= 10
    assert (
        out.count("batch 0 ") == stopped_at
    )  # no batch ran after the one that saw the signal


def test_ctrl_c_while_fit_prepares_is_a_clean_stop_not_a_traceback():
    code, out, err = run_until("prepare", "preparing", signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert (
        result_line(out)
        == "result True SIGINT 0 interrupted (SIGINT) before training started"
    )
    assert "batch" not in out.replace("result", "")


def test_a_program_can_catch_ctrl_c_before_fit_starts():
    code, out, err = run_until("early", "loading", signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err
    assert (
        result_line(out)
        == "result True SIGINT 0 interrupted (SIGINT) before training started"
    )


def test_handlers_are_restored_and_nested_blocks_share_one_request():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with stop_signals(verbose=0) as outer, stop_signals(verbose=0) as inner:
        assert inner is outer and not outer.requested
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        assert outer.requested and outer.signal_name == "SIGTERM"
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_second_ctrl_c_aborts():
    with pytest.raises(KeyboardInterrupt), stop_signals(verbose=0) as request:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        assert request.signal_name == "SIGINT"
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
