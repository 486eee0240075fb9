"""Training: a short run beats chance by far; units resume and give the same numbers; the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnlab.apps.text import datasets
from cnnlab.apps.text.datasets import load_corpus
from cnnlab.apps.text.train import (
    TextSettings,
    UnitStopped,
    run_units,
    summarize,
    train_unit,
    unit_file,
)
from cnnlab.callbacks import Callback
from cnnlab.cli import main
from cnnlab.runs import RunError
from tests.apps.text.toy_data import TINY, toy_corpus


def test_a_short_trec_run_beats_chance_by_far():
    try:
        corpus = load_corpus("trec")
    except datasets.TextDataNotFoundError as error:
        pytest.skip(f"needs the TREC data set: {error}")
    settings = TextSettings("trec", epochs=5, embedding_dim=32, filters=16, optimizer="adam",
                            lr=0.005)
    result, model, vocabulary = train_unit(corpus, settings, seed=0, limit=1500)
    majority = np.bincount(corpus.labels[corpus.parts == "test"]).max() / 500  # 22.6%
    assert result["test_accuracy"] > majority + 0.4, result
    assert result["train_size"] == 1500 and result["test_size"] == 500
    assert len(vocabulary) == result["vocabulary"] < 5000  # the 1500 sentences' words only
    assert np.linalg.norm(model[-1].weight.data, axis=1).max() <= 3 + 1e-5


def test_units_resume_after_a_partial_run_with_the_same_numbers(tmp_path):
    corpus = toy_corpus()
    settings = TextSettings("toy", folds=3, seeds=2, **TINY)
    lines = []
    whole = run_units(corpus, settings, tmp_path / "whole", report=lines.append)
    assert len(whole) == 6 and len(lines) == 6 and "seed 0 fold 0: test accuracy" in lines[0]
    assert np.mean([r["test_accuracy"] for r in whole]) > 0.8  # the one telling word is found
    # a run stopped after two units, and one killed while writing a third result
    first = run_units(corpus, settings, tmp_path / "pieces", max_units=2)
    assert len(first) == 2
    (tmp_path / "pieces" / f".{unit_file(0, 2)}.1234.tmp").write_text('{"test_acc')
    lines = []
    rest = run_units(corpus, settings, tmp_path / "pieces", report=lines.append)
    assert len(lines) == 4 and not list((tmp_path / "pieces").glob("*.tmp"))
    assert not list((tmp_path / "pieces").glob("*.checkpoint.npz"))  # removed when done
    assert not list((tmp_path / "pieces").glob("*.best.npz"))
    keys = ("seed", "fold", "test_accuracy", "dev_accuracy", "best_epoch", "vocabulary")
    assert [[r[k] for k in keys] for r in rest] == [[r[k] for k in keys] for r in whole]
    summary = summarize(rest, settings, cross_validated=True)
    seed_means = [np.mean([r["test_accuracy"] for r in rest if r["seed"] == s]) for s in (0, 1)]
    assert summary["mean"] == pytest.approx(np.mean(seed_means))
    assert summary["std"] == pytest.approx(np.std(seed_means, ddof=1))
    assert (tmp_path / "pieces" / "model.npz").is_file()
    # the same folder with other settings is refused, naming what changed
    with pytest.raises(RunError, match=r"text.json: .*\(epochs differ\)"):
        run_units(corpus, TextSettings("toy", folds=3, seeds=2, **{**TINY, "epochs": 7}),
                  tmp_path / "pieces")
    # more seeds continue the same run; fewer report the first seeds' units
    more = run_units(corpus, TextSettings("toy", folds=3, seeds=3, **TINY), tmp_path / "pieces",
                     max_units=1)
    assert [(r["seed"], r["fold"]) for r in more[-2:]] == [(1, 2), (2, 0)] and len(more) == 7
    saved = json.loads((tmp_path / "pieces" / "text.json").read_text())["settings"]
    assert saved["seeds"] == 3
    fewer = run_units(corpus, TextSettings("toy", folds=3, seeds=1, **TINY), tmp_path / "pieces")
    assert [r["test_accuracy"] for r in fewer] == [r["test_accuracy"] for r in whole[:3]]
    (tmp_path / "pieces" / unit_file(1, 0)).write_text(json.dumps({"seed": 1}))
    with pytest.raises(RunError, match="not a unit result"):
        run_units(corpus, settings, tmp_path / "pieces")


class StopAfter(Callback):
    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, state, epoch, logs):
        if epoch + 1 == self.epochs:
            state.stop("stopped by the test")


def test_a_unit_stopped_mid_way_continues_from_its_checkpoint_to_the_same_numbers(tmp_path):
    corpus = toy_corpus()
    settings = TextSettings("toy", folds=3, **TINY)
    whole, model, _ = train_unit(corpus, settings, seed=1, fold=2)
    with pytest.raises(UnitStopped, match=r"unit-s1-f2 stopped after epoch 2 of 6"):
        train_unit(corpus, settings, seed=1, fold=2, work_dir=tmp_path, callbacks=[StopAfter(2)])
    assert (tmp_path / "unit-s1-f2.checkpoint.npz").is_file()
    assert (tmp_path / "unit-s1-f2.best.npz").is_file()
    resumed, resumed_model, _ = train_unit(corpus, settings, seed=1, fold=2, work_dir=tmp_path)
    keys = ("test_accuracy", "dev_accuracy", "best_epoch", "epochs", "final_train_accuracy")
    assert [resumed[k] for k in keys] == [whole[k] for k in keys]
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(resumed_model.state_dict()[name], value, err_msg=name)


def test_cli_train_then_predict_on_a_folder(tmp_path, capsys):
    folder = tmp_path / "reviews"
    folder.mkdir()
    corpus = toy_corpus(60, seed=1)
    for label, name in enumerate(corpus.class_names):
        lines = [" ".join(s) for s, y in zip(corpus.sentences, corpus.labels) if y == label]
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
    argv = ["text", "train", "--data", str(folder), "--folds", "3", "--seeds", "1",
            "--epochs", "4", "--optimizer", "adam", "--lr", "0.01", "--out", str(tmp_path),
            "--name", "toy", "--max-units", "2"]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "2 of 3 units done" in out.out and "again to continue" in out.err
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("test accuracy") == 2 and "3 of 3 units done" in out
    assert "mean ± std over 1 seed(s) of the 3-fold mean" in out
    assert main(["text", "predict", str(tmp_path / "toy"), "a superb w3 w4 film"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("pos ") and "superb" in out[1]
    assert main(["text", "predict", str(tmp_path / "nothing"), "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab text: error: ") and "nothing: no such file" in err
    (tmp_path / "empty").mkdir()
    assert main(["text", "predict", str(tmp_path / "empty"), "x"]) == 2
    assert "empty/model.npz: no such file" in capsys.readouterr().err
