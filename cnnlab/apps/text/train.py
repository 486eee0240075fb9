"""Training Kim's CNN on a corpus: each (seed, fold) is one unit of a resumable run folder.

A run folder (``OUT/NAME``, by default ``runs/text-<data>``) holds::

    text.json               the settings (data, folds, seeds, epochs, optimiser, ...)
    unit-s<seed>-f<fold>.json   one unit's result (test accuracy at the best dev epoch, ...)
    model.npz               the model of the first unit, with its vocabulary (for predict)

Rerunning the same command continues: units whose result file exists are skipped, so a
10-fold × 5-seed job runs in pieces (``max_units``). Each unit is deterministic (its seed and
fold fix the dev split, the weights, the dropout masks and the batch order), so a unit run
again gives the same numbers. Asking a run folder for other settings is an error.

One unit, as Kim: the vocabulary from the unit's training sentences only; 10% of them
(seeded) held out as the dev set, unless the corpus has its own (SST-2); Adadelta
(ρ = 0.95, ε = 1e-6, lr 1) on batches of 50 for 25 epochs, the constraints after every
step; the test accuracy is taken at the epoch with the best dev accuracy (the latest on
ties, as Kim's ``>=``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cnnlab import atomic, optim
from cnnlab.apps.text.datasets import Corpus, fold_assignment
from cnnlab.apps.text.model import (
    WIDTHS,
    apply_constraints,
    kim_cnn,
    left_pad,
    save_text_model,
)
from cnnlab.apps.text.vocabulary import Vocabulary
from cnnlab.callbacks import Callback
from cnnlab.errors import CnnlabError
from cnnlab.runs import RunError, read_json
from cnnlab.training import evaluate, fit

__all__ = ["MAX_TOKENS", "SETTINGS_FILE", "TextSettings", "run_units", "summarize", "train_unit"]

SETTINGS_FILE = "text.json"
MODEL_FILE = "model.npz"
#: longest sentence kept, in tokens (MR's longest is 56): bounds a batch of user data
MAX_TOKENS = 400


@dataclass(frozen=True)
class TextSettings:
    """What a run trains; the defaults are Kim's."""

    data: str
    folds: int = 10
    seeds: int = 5
    epochs: int = 25
    batch_size: int = 50
    optimizer: str = "adadelta"
    lr: float = 1.0
    min_count: int = 1
    embedding_dim: int = 300
    filters: int = 100
    dropout: float = 0.5
    dev_fraction: float = 0.1
    fold_seed: int = 0


class KimConstraints(Callback):
    """Max-norm 3 on the last layer's rows and a zero padding row, after every step."""

    def on_train_begin(self, state):
        apply_constraints(state.model)

    def on_batch_end(self, state, batch, logs):
        apply_constraints(state.model)


class BestOnDev(Callback):
    """Keeps the weights and the test accuracy of the epoch with the best dev accuracy."""

    def __init__(self, test):
        self.test = test
        self.best = -math.inf
        self.epoch = 0
        self.test_accuracy = math.nan
        self.weights = None

    def on_epoch_end(self, state, epoch, logs):
        if logs["val_accuracy"] >= self.best:
            self.best, self.epoch = logs["val_accuracy"], epoch + 1
            self.test_accuracy = evaluate(state.model, self.test, batch_size=500)["accuracy"]
            self.weights = {k: v.copy() for k, v in state.model.state_dict().items()}


def _split(corpus: Corpus, settings: TextSettings, seed: int, fold: int | None):
    """(train, dev, test) index arrays of one unit."""
    everything = np.arange(len(corpus))
    if corpus.parts is None:
        folds = fold_assignment(len(corpus), settings.folds, settings.fold_seed)
        test, train = everything[folds == fold], everything[folds != fold]
        dev = None
    else:
        train, test = everything[corpus.parts == "train"], everything[corpus.parts == "test"]
        dev = everything[corpus.parts == "dev"] if "dev" in corpus.parts else None
    if dev is None:  # Kim's dev set: a random tenth of the training data
        order = np.random.default_rng([seed, 0 if fold is None else fold + 1, 7]).permutation(
            len(train))
        held = max(1, round(settings.dev_fraction * len(train)))
        dev, train = np.sort(train[order[:held]]), np.sort(train[order[held:]])
    return train, dev, test


def train_unit(corpus: Corpus, settings: TextSettings, seed: int, fold: int | None = None,
               verbose: int = 0, limit: int | None = None):
    """Train one unit; return (result dict, model, vocabulary).

    ``limit``: train on the first ``limit`` training sentences only (tests, quick looks).
    """
    started = time.perf_counter()
    train, dev, test = _split(corpus, settings, seed, fold)
    if limit is not None:
        train = train[:limit]
    sentences = corpus.sentences
    vocabulary = Vocabulary.build((sentences[i] for i in train), settings.min_count)
    pad = left_pad(WIDTHS)
    longest = min(MAX_TOKENS, max(len(sentences[i]) for i in train))
    length = longest + 2 * pad

    def encoded(indices):
        ids = vocabulary.encode_padded([sentences[i] for i in indices], length, pad)
        return ids.astype(np.float32), corpus.labels[indices]  # fit's batches are floats

    train_xy, dev_xy, test_xy = encoded(train), encoded(dev), encoded(test)
    model = kim_cnn(len(vocabulary), len(corpus.class_names), length, settings.embedding_dim,
                    WIDTHS, settings.filters, settings.dropout, seed=seed)
    model.class_names = list(corpus.class_names)
    if settings.optimizer == "adadelta":
        optimizer = optim.Adadelta(model.parameters(), lr=settings.lr, rho=0.95, eps=1e-6)
    else:
        optimizer = optim.Adam(model.parameters(), lr=settings.lr)
    best = BestOnDev(test_xy)
    history = fit(model, train_xy, epochs=settings.epochs, batch_size=settings.batch_size,
                  validation=dev_xy, optimizer=optimizer, callbacks=[KimConstraints(), best],
                  seed=seed, verbose=verbose, divergence_threshold=None)
    if history.interrupted:
        raise KeyboardInterrupt
    if best.weights is not None:
        model.load_state_dict(best.weights)
    result = {
        "seed": seed, "fold": fold, "test_accuracy": best.test_accuracy,
        "dev_accuracy": best.best, "best_epoch": best.epoch, "epochs": history.epochs,
        "train_size": len(train), "dev_size": len(dev), "test_size": len(test),
        "vocabulary": len(vocabulary), "length": length,
        "final_train_accuracy": history["accuracy"][-1] if history.epochs else None,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return result, model, vocabulary


def unit_file(seed: int, fold: int | None) -> str:
    return f"unit-s{seed}-f{'all' if fold is None else fold}.json"


def _open_folder(directory: Path, settings: TextSettings) -> None:
    """Create the run folder, or check that the one there was asked for the same settings."""
    settings_file = directory / SETTINGS_FILE
    if settings_file.exists():
        saved = read_json(settings_file, "text run settings")
        wanted = asdict(settings)
        if not isinstance(saved, dict) or saved.get("settings") != wanted:
            old = saved.get("settings") if isinstance(saved, dict) else None
            old = old if isinstance(old, dict) else {}
            changed = sorted(k for k in wanted if old.get(k) != wanted[k])
            raise RunError(settings_file, f"this run was started with other settings "
                                          f"({', '.join(changed)} differ); use another --name")
        atomic.remove_stale_temporaries(directory)
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(directory, f"cannot create the run folder: {error.strerror}") from None
    atomic.write_text(settings_file, json.dumps({"settings": asdict(settings)}, indent=1) + "\n")


def _read_result(path: Path) -> dict:
    result = read_json(path, "unit result")
    if not isinstance(result, dict) or not isinstance(result.get("test_accuracy"), float):
        raise RunError(path, "not a unit result (no test_accuracy)")
    return result


def run_units(corpus: Corpus, settings: TextSettings, directory, max_units: int | None = None,
              verbose: int = 0, report=print) -> list[dict]:
    """Train the units of ``settings`` not yet done in ``directory`` (at most ``max_units``);
    return every finished unit's result, in unit order. ``report`` gets one line per unit."""
    directory = Path(directory)
    _open_folder(directory, settings)
    folds = [None] if corpus.parts is not None else list(range(settings.folds))
    if corpus.parts is None and not 2 <= settings.folds <= len(corpus):
        raise CnnlabError(f"--folds must lie between 2 and the {len(corpus)} examples, "
                          f"received {settings.folds}")
    results, started = [], 0
    for seed in range(settings.seeds):
        for fold in folds:
            path = directory / unit_file(seed, fold)
            if path.exists():
                results.append(_read_result(path))
                continue
            if max_units is not None and started >= max_units:
                continue
            started += 1
            result, model, vocabulary = train_unit(corpus, settings, seed, fold, verbose)
            if not (directory / MODEL_FILE).exists():
                save_text_model(model, vocabulary, corpus.lowercase, directory / MODEL_FILE)
            atomic.write_text(path, json.dumps(result, indent=1) + "\n")
            results.append(result)
            where = "" if fold is None else f" fold {fold}"
            report(f"seed {seed}{where}: test accuracy {100 * result['test_accuracy']:.2f}% "
                   f"(dev {100 * result['dev_accuracy']:.2f}% at epoch {result['best_epoch']}, "
                   f"{result['seconds']:.0f} s)")
    return results


def summarize(results: list[dict], settings: TextSettings, cross_validated: bool) -> dict:
    """Mean ± std (sample std) of the test accuracy: over seeds of the per-seed fold means when
    every seed has all its folds, else over the finished units."""
    total = settings.seeds * (settings.folds if cross_validated else 1)
    per_seed: dict[int, list[float]] = {}
    for result in results:
        per_seed.setdefault(result["seed"], []).append(result["test_accuracy"])
    complete = len(results) == total
    if cross_validated and complete:
        values = [float(np.mean(v)) for v in per_seed.values()]
        over = f"{len(values)} seed(s) of the {settings.folds}-fold mean"
    else:
        values = [r["test_accuracy"] for r in results]
        over = f"{len(values)} of {total} units" if not complete else f"{len(values)} seed(s)"
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(np.mean(values)) if values else math.nan, "std": std,
            "over": over, "units_done": len(results), "units_total": total}
