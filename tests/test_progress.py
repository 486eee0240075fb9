import fcntl
import io
import os
import pty
import select
import struct
import termios

import pytest

from cnnlab.progress import (
    ProgressBar,
    format_duration,
    format_metrics,
    terminal_columns,
    wrap,
)

LOGS = {"loss": 0.08123, "accuracy": 0.97561, "val_loss": 0.07312, "val_accuracy": 0.97781,
        "lr": 0.002, "time": 2.1}


class FakeClock:
    def __init__(self, step=0.05):
        self.now, self.step = 100.0, step

    def __call__(self):
        self.now += self.step
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run_epoch(stream, steps=469, verbose=1, clock_step=0.05):
    bar = ProgressBar(2, 10, steps, verbose, stream=stream, clock=FakeClock(clock_step))
    for step in range(1, steps + 1):
        bar.update(step, step * 128, {"loss": 0.1, "accuracy": 0.9})
    bar.close(steps, steps * 128, LOGS)
    return stream.getvalue() if isinstance(stream, io.StringIO) else ""


def test_terminal_lines_fit_80_columns_and_keep_val_accuracy():
    text = run_epoch(Terminal())
    lines = [part for line in text.split("\n") for part in line.split("\r")]
    assert max(len(line) for line in lines) <= 80
    assert text.startswith("Epoch 3/10\n")
    assert "val_accuracy: 0.9778" in text
    final = text.split("\r")[-1].splitlines()
    assert final[0].startswith("469/469 [" + "=" * 30 + "]") and final[0].rstrip().endswith("img/s")
    assert final[1] == "loss: 0.0812 - accuracy: 0.9756 - val_loss: 0.0731 - val_accuracy: 0.9778"


def test_a_log_file_gets_clean_lines_without_carriage_returns():
    text = run_epoch(io.StringIO(), clock_step=0.5)  # 469 steps × 0.5 s: progress lines every 30 s
    assert "\r" not in text and "[" not in text
    lines = text.splitlines()
    assert lines[0] == "Epoch 3/10"
    assert all(len(line) <= 80 for line in lines)
    assert lines[-2].startswith("469/469 - ") and lines[-2].endswith("img/s")
    assert lines[-1].startswith("loss: 0.0812")
    progress = [line for line in lines[1:-2]]
    assert 3 <= len(progress) <= 10 and all(line.split(" - ")[0].count("/") == 1 for line in progress)


def test_verbose_2_is_one_line_per_epoch():
    stream = io.StringIO()
    text = run_epoch(stream, verbose=2)
    assert text.count("\n") == 1 and text.startswith("Epoch 3/10 - 469/469 - ")
    assert "val_accuracy: 0.9778" in text and "lr" not in text


def test_verbose_0_writes_nothing():
    assert run_epoch(io.StringIO(), verbose=0) == ""


def _read_all(fd) -> str:
    """Everything written to the pseudo-terminal so far (a single read may return a part)."""
    chunks = []
    while select.select([fd], [], [], 0.5)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_a_zero_by_zero_pseudo_terminal_still_shows_the_bar():
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
    try:
        with os.fdopen(terminal, "w", closefd=False) as stream:
            assert stream.isatty() and os.get_terminal_size(terminal).columns == 0
            assert terminal_columns(stream) == 80
            run_epoch(stream, steps=45)
        output = _read_all(controller)
    finally:
        os.close(controller)
        os.close(terminal)
    assert "45/45 [" + "=" * 30 + "]" in output
    assert "val_accuracy: 0.9778" in output


def test_a_narrow_terminal_shortens_the_bar_and_wraps_the_metrics():
    bar = ProgressBar(0, 1, 10, 1, stream=Terminal(), clock=FakeClock())
    bar.width = 50
    bar.close(10, 1280, LOGS)
    lines = bar.stream.getvalue().replace("\r", "\n").splitlines()
    assert all(len(line) <= 50 for line in lines)
    assert sum(line.startswith(("loss", "val_")) for line in lines) == 2


@pytest.mark.parametrize("seconds, text", [(12, "12 s"), (600, "10 min"), (11_520, "3 h 12 min")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_format_metrics_and_wrap():
    assert format_metrics(LOGS).count(" - ") == 3 and "lr" not in format_metrics(LOGS)
    assert wrap(["aaaa", "bbbb", "cc"], 11) == ["aaaa - bbbb", "cc"]
    assert wrap(["a" * 20], 5) == ["a" * 20]


def test_a_message_mid_epoch_gets_its_own_line_and_the_bar_resumes_below():
    stream = Terminal()
    bar = ProgressBar(0, 1, 10, 1, stream=stream, clock=FakeClock(1.0))
    bar.update(1, 128, {"loss": 0.5})
    bar.message("estimate: 3 h 12 min per epoch, checkpoint 683 MB")
    bar.update(2, 256, {"loss": 0.4})
    text = stream.getvalue()
    _, first, second = text.split("\n")
    _, bar_line, message = first.split("\r")
    assert bar_line.startswith("1/10 [")
    assert message.rstrip() == "estimate: 3 h 12 min per epoch, checkpoint 683 MB"
    assert len(message) >= len(bar_line)  # the message covers the bar it replaces
    assert second.startswith("\r2/10 [")  # redrawn at once, below the message
