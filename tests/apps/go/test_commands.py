"""cnnlab go evaluate end to end, the shipped model, the command group's errors."""

import re
from pathlib import Path

import numpy as np
import pytest

from cnnlab.apps.go.board import Board
from cnnlab.apps.go.evaluate import (
    Policy,
    evaluate_files,
    load_policy,
    shipped_model_path,
)
from cnnlab.cli import main
from cnnlab.errors import FileFormatError

SGF = Path(__file__).parent / "sgf"
TITLE = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / "go-title-games" / "sgf"


def test_the_shipped_model_loads_small_and_predicts_far_above_chance():
    with shipped_model_path() as path:
        assert path.stat().st_size < 20 * 2**20
    policy = load_policy()
    assert policy.encoding == "48"
    p = policy.probabilities(Board(19))
    assert p.shape == (361,) and np.isclose(p.sum(), 1)
    # an empty board: the network's favourites are the 3-4 and 4-4 points of the corners
    top = {divmod(int(i), 19) for i in np.argsort(-p)[:8]}
    assert all(min(r, 18 - r) in (2, 3) and min(c, 18 - c) in (2, 3) for r, c in top)
    result, report, positions = evaluate_files(policy, [SGF / "fox-pro", SGF / "title"])
    assert report.games == 6 + 6 and result["positions"] == len(positions) > 1500
    assert result["top1_rate"] > 0.15 and result["top5_rate"] > 0.35  # chance: 0.3 % / 1.4 %


def test_evaluate_prints_the_accuracy_lines_and_what_was_skipped(tmp_path, capsys):
    (tmp_path / "garbage.sgf").write_bytes(b"\x00\x01 not sgf")
    (tmp_path / "small.sgf").write_bytes(b"(;GM[1]SZ[9];B[aa];W[bb])")
    status = main(["go", "evaluate", "--games", str(SGF / "fox-9d-sample.zip"), str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    top1 = re.search(r"^top-1 accuracy: (\d+\.\d)% \(([\d,]+)/([\d,]+)\)$", out, re.MULTILINE)
    top5 = re.search(r"^top-5 accuracy: (\d+\.\d)% \(([\d,]+)/([\d,]+)\)$", out, re.MULTILINE)
    assert top1 and top5 and top1.group(3) == top5.group(3)
    n1, total = int(top1.group(2).replace(",", "")), int(top1.group(3).replace(",", ""))
    assert float(top1.group(1)) == pytest.approx(100 * n1 / total, abs=0.05)
    assert int(top5.group(2).replace(",", "")) >= n1
    assert "games skipped: 2" in out and "board size: 1" in out and "not SGF: 1" in out


def test_evaluate_and_gtp_refuse_bad_models_in_one_line(tmp_path, capsys):
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"PK\x03\x04 not really")
    assert main(["go", "evaluate", str(bad), "--games", str(SGF / "title")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab go: error: ") and err.count("\n") == 1
    assert main(["go", "evaluate", "--games", str(tmp_path / "none")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_a_model_that_is_not_a_go_policy_is_refused():
    from cnnlab.nn import Dense, Flatten, Sequential

    model = Sequential(Flatten(), Dense(10))
    model.build((1, 28, 28))
    with pytest.raises(FileFormatError, match="not a Go policy network"):
        Policy(model, "digits.npz")


@pytest.mark.skipif(not TITLE.is_dir(), reason=f"needs the title games in {TITLE}")
def test_the_title_games_folder_evaluates(capsys):
    files = sorted(TITLE.glob("Hon-9*.sgf"))[:4]
    assert main(["go", "evaluate", "--games", *map(str, files)]) == 0
    assert "top-5 accuracy:" in capsys.readouterr().out
