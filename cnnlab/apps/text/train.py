"""Training Kim's CNN on a corpus: each (seed, fold) is one unit of a resumable run folder.

A run folder (``OUT/NAME``, by default ``runs/text-<data>``) holds::

    text.json                     the settings (data, folds, seeds, epochs, optimiser, ...)
    unit-s<seed>-f<fold>.json     one unit's result (test accuracy at the best dev epoch, ...)
    unit-s<seed>-f<fold>.checkpoint.npz, .best.npz   the unit in progress (removed when done)
    model.npz                     the model of the first unit, with its vocabulary (for predict)

Rerunning the same command continues: units whose result file exists are skipped, and a unit
that was killed continues from its last finished epoch, so a 10-fold × 5-seed job runs in
pieces (``max_units``). Each unit is deterministic (its seed and
fold fix the dev split, the weights, the dropout masks and the batch order), so a unit run
again gives the same numbers. Asking a run folder for other settings is an error, except
for more seeds, which adds their units to the run.

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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from cnnlab import atomic, distributed, optim
from cnnlab._checks import check_int, check_number
from cnnlab.apps.text.datasets import Corpus, fold_assignment
from cnnlab.apps.text.model import (
    WIDTHS,
    apply_constraints,
    kim_cnn,
    left_pad,
    save_text_model,
)
from cnnlab.apps.text.vocabulary import Vocabulary
from cnnlab.callbacks import Callback, ModelCheckpoint
from cnnlab.errors import CnnlabError
from cnnlab.io import load_arrays, save_arrays
from cnnlab.runs import RunError, read_json
from cnnlab.training import evaluate, fit

__all__ = ["MAX_TOKENS", "SETTINGS_FILE", "TextSettings", "UnitStopped", "run_units", "summarize",
           "train_unit"]

SETTINGS_FILE = "text.json"
MODEL_FILE = "model.npz"
#: longest sentence kept, in tokens (MR's longest is 56): bounds a batch of user data
MAX_TOKENS = 400


class UnitStopped(CnnlabError):
    """A unit's training stopped before its last epoch (its checkpoint lets it continue)."""


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
    """Keeps the weights and the test accuracy of the epoch with the best dev accuracy.

    With ``weights_file`` the best weights go to that file (so a resumed unit has them);
    the numbers are the callback's state, saved in the unit's checkpoint.
    """

    def __init__(self, test, weights_file=None):
        self.test = test
        self.weights_file = weights_file
        self.best = -math.inf
        self.epoch = 0
        self.test_accuracy = math.nan
        self._weights = None

    def on_epoch_end(self, state, epoch, logs):
        if logs["val_accuracy"] >= self.best:
            self.best, self.epoch = float(logs["val_accuracy"]), epoch + 1
            self.test_accuracy = float(
                evaluate(state.model, self.test, batch_size=500)["accuracy"])
            weights = state.model.state_dict()
            if self.weights_file is None:
                self._weights = {k: v.copy() for k, v in weights.items()}
            else:
                save_arrays(self.weights_file, weights, {"kind": "weights"})

    def best_weights(self) -> dict | None:
        if self.weights_file is None or self.epoch == 0:
            return self._weights
        return load_arrays(self.weights_file)[0]

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.epoch, "test_accuracy": self.test_accuracy}

    def load_state_dict(self, state):
        self.best = check_number(state["best"], "BestOnDev", "best", 0.0, 1.0)
        self.epoch = check_int(state["best_epoch"], "BestOnDev", "best_epoch", 1)
        self.test_accuracy = check_number(state["test_accuracy"], "BestOnDev", "test_accuracy",
                                          0.0, 1.0)


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
               verbose: int = 0, limit: int | None = None, work_dir=None, callbacks=()):
    """Train one unit; return (result dict, model, vocabulary).

    ``work_dir``: keep the unit's checkpoint (after every epoch) and best weights there, and
    continue from them when they exist, so a killed unit resumes at its last finished epoch
    with the same numbers; both files are removed when the unit ends.
    ``limit``: train on the first ``limit`` training sentences only (tests, quick looks).
    ``callbacks``: more ``cnnlab.callbacks.Callback``s for ``fit``.
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
    checkpoint = resume = None
    stem = unit_file(seed, fold).removesuffix(".json")
    if work_dir is not None:
        checkpoint = Path(work_dir) / f"{stem}.checkpoint.npz"
        resume = checkpoint if checkpoint.exists() else None
    # under mpirun every rank trains its part of each batch; only rank 0 writes and prints
    root = distributed.is_root()
    best = BestOnDev(test_xy, None if work_dir is None or not root
                     else Path(work_dir) / f"{stem}.best.npz")
    every = [KimConstraints(), best, *callbacks]
    if checkpoint is not None and root:
        every.append(ModelCheckpoint(checkpoint, save_best_only=False))
    history = fit(model, train_xy, epochs=settings.epochs, batch_size=settings.batch_size,
                  validation=dev_xy, optimizer=optimizer, callbacks=every, seed=seed,
                  verbose=verbose if root else 0, divergence_threshold=None, resume=resume,
                  parallel=distributed.world())
    if history.interrupted:
        raise KeyboardInterrupt
    if history.epochs < settings.epochs and not history.diverged:
        raise UnitStopped(f"{stem} stopped after epoch {history.epochs} of {settings.epochs} "
                          f"({history.stop_reason}); run again to continue")
    weights = best.best_weights()
    if weights is not None:
        model.load_state_dict(weights)
    result = {
        "seed": seed, "fold": fold, "test_accuracy": best.test_accuracy,
        "dev_accuracy": best.best, "best_epoch": best.epoch, "epochs": history.epochs,
        "train_size": len(train), "dev_size": len(dev), "test_size": len(test),
        "vocabulary": len(vocabulary), "length": length,
        "final_train_accuracy": history["accuracy"][-1] if history.epochs else None,
        "seconds": round(time.perf_counter() - started, 1),
        "diverged": history.diverged,
    }
    return result, model, vocabulary


def _remove_unit_files(directory: Path, seed: int, fold: int | None) -> None:
    stem = unit_file(seed, fold).removesuffix(".json")
    for suffix in (".checkpoint.npz", ".best.npz"):
        (directory / f"{stem}{suffix}").unlink(missing_ok=True)


def unit_file(seed: int, fold: int | None) -> str:
    return f"unit-s{seed}-f{'all' if fold is None else fold}.json"


def _open_folder(directory: Path, settings: TextSettings) -> None:
    """Create the run folder, or check that the one there was asked for the same settings.

    Only the number of seeds may change: every unit is one seed's, so asking for more
    seeds adds units to the same run (and fewer reports the first ones)."""
    settings_file = directory / SETTINGS_FILE
    wanted = asdict(settings)
    if settings_file.exists():
        saved = read_json(settings_file, "text run settings")
        old = saved.get("settings") if isinstance(saved, dict) else None
        old = old if isinstance(old, dict) else {}
        absent = object()  # a key on one side only differs, whatever its value
        changed = sorted(k for k in set(old) | set(wanted)
                         if k != "seeds" and old.get(k, absent) != wanted.get(k, absent))
        if not isinstance(old.get("seeds"), int):  # a foreign or hand-edited file
            changed.append("seeds")
        if changed:
            raise RunError(settings_file, f"this run was started with other settings "
                                          f"({', '.join(changed)} differ); use another --name")
        atomic.remove_stale_temporaries(directory)
        if old["seeds"] >= settings.seeds:
            return
    else:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunError(directory, f"cannot create the run folder: {error.strerror}") from None
    atomic.write_text(settings_file, json.dumps({"settings": wanted}, indent=1) + "\n")


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
    if corpus.parts is not None:  # a split of its own: the number of folds means nothing
        settings = replace(settings, folds=1)
    root = distributed.is_root()
    if root:
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
            result, model, vocabulary = train_unit(corpus, settings, seed, fold, verbose,
                                                   work_dir=directory)
            results.append(result)
            if not root:
                continue
            if not (directory / MODEL_FILE).exists():
                save_text_model(model, vocabulary, corpus.lowercase, directory / MODEL_FILE)
            atomic.write_text(path, json.dumps(result, indent=1) + "\n")
            _remove_unit_files(directory, seed, fold)
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
