"""Training the policy: it learns (far above chance), and a resumed run equals an
uninterrupted one (cnnlab go train, --resume)."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cnnlab.apps.go import positions as pos
from cnnlab.apps.go.sgf_read import read_games
from cnnlab.apps.go.train import measure, sample_games, train_policy
from cnnlab.cli import main
from cnnlab.io import load_arrays
from cnnlab.models.go import alphago_policy
from cnnlab.nn.seeding import manual_seed

HERE = Path(__file__).parent / "sgf"
FOX_PRO = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / "go-fox-pro" / "sgf"


@pytest.mark.skipif(not FOX_PRO.is_dir(), reason=f"needs the Fox pro games in {FOX_PRO}")
def test_training_on_a_few_hundred_games_beats_chance_by_far():
    files = sorted(FOX_PRO.glob("*/*.sgf"))[:330]
    games = [dataclasses.replace(g, moves=g.moves[:24]) for g in read_games(files)]
    train, held = pos.encode_games(games[:300], "raw"), pos.encode_games(games[300:], "raw")
    manual_seed(0)
    model = alphago_policy(k=8, layers=3, planes=20)
    model.build((20, 19, 19))
    before = measure(model, held)
    history = train_policy(model, train, None, epochs=1, batch_size=32, lr=3e-3, verbose=0)
    after = measure(model, held)
    assert len(train) > 6000 and len(held) > 600 and history["loss"][0] < np.log(361)
    # chance is 1/361 = 0.28 % top-1 and 1.4 % top-5; the openings' corner points come first
    assert after["top1_rate"] > 0.06 and after["top5_rate"] > 0.2, (before, after)
    assert after["top1"] > 5 * max(before["top1"], 1)


def _datasets(root: Path) -> Path:
    """The test records laid out as ../shared/datasets holds the real ones."""
    shutil.copytree(HERE / "fox-pro", root / "go-fox-pro" / "sgf")
    (root / "go-fox-9d").mkdir()
    shutil.copy(HERE / "fox-9d-sample.zip", root / "go-fox-9d" / "games.zip")
    return root


def test_train_command_checkpoints_and_resumes_exactly(tmp_path, capsys):
    root = _datasets(tmp_path / "datasets")
    common = ["go", "train", "--data-root", str(root), "--out", str(tmp_path / "runs"),
              "--k", "4", "--layers", "2", "--batch-size", "128", "--verbose", "0"]
    assert main([*common, "--epochs", "1", "--name", "pieces"]) == 0
    run = tmp_path / "runs" / "pieces"
    assert (run / "checkpoint.npz").is_file() and (run / "model.npz").is_file()
    assert main([*common[:2], "--resume", str(run), "--epochs", "2", "--verbose", "0",
                 "--data-root", str(root)]) == 0
    assert main([*common, "--epochs", "2", "--name", "whole"]) == 0
    out = capsys.readouterr().out
    assert "top-1 accuracy on held-out Fox pro games:" in out
    pieces, _ = load_arrays(run / "model.npz")
    whole, _ = load_arrays(tmp_path / "runs" / "whole" / "model.npz")
    assert pieces.keys() == whole.keys()
    for name in whole:
        np.testing.assert_array_equal(pieces[name], whole[name])
    results = json.loads((run / "go-results.json").read_text())
    assert results["epochs"] == 2 and results["settings"]["k"] == 4
    # a resume keeps the run's settings
    assert main([*common[:2], "--resume", str(run), "--k", "8", "--data-root", str(root)]) == 2
    assert "cannot change --k" in capsys.readouterr().err


def test_sample_games_is_seeded_and_keeps_order():
    games = list(range(50))
    assert sample_games(games, None, 0) == games
    picked = sample_games(games, 10, 3)
    assert picked == sorted(picked) and len(set(picked)) == 10
    assert picked == sample_games(games, 10, 3) != sample_games(games, 10, 4)
