"""Training the speech models on FSDD in run folders (``cnnlab.runs``), with checkpoints and resume.

A run folder holds what ``cnnlab train`` writes (run.json, history.json, checkpoint.npz,
model.npz, learning_curve.png) plus ``speech.json``, the spectrogram settings (the model
file carries them too). ``run.json`` names the model ``speech-freq`` or ``speech-2d`` and the
data ``fsdd:standard`` or ``fsdd:speaker=NAME`` (``:takes=N`` when only the first N takes of
each speaker and digit were used). The test split is the validation data of every epoch.

``train_speech`` starts runs: one for the standard split or for one held-out speaker, six
for ``split='speaker'`` (all rotations, with their mean and worst accuracy).
``resume_speech`` continues a run from its checkpoint, its settings unchanged except
``epochs`` (more extend it) and ``threads``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import shlex
import sys
import time

import numpy as np

from cnnlab import atomic, distributed, runs
from cnnlab.apps.speech.augment import DEFAULT_AUGMENT, parse_speech_augment
from cnnlab.apps.speech.fsdd import load_fsdd, parse_split, split_indices
from cnnlab.apps.speech.model_file import save_speech_model
from cnnlab.apps.speech.models import MODEL_NAMES, build_model
from cnnlab.apps.speech.spectrogram import FeatureSettings
from cnnlab.callbacks import LearningRateScheduler, ModelCheckpoint
from cnnlab.errors import CnnlabError
from cnnlab.threads import BlasThreads
from cnnlab.training import evaluate, fit

__all__ = ["DEFAULTS", "SpeechRunResult", "SpeechTrainError", "data_label", "resume_speech",
           "summarize_rotations", "train_speech"]

FEATURES_FILE = "speech.json"
#: the settings of a speech run (run.json), with their defaults
DEFAULTS = {"epochs": 30, "batch_size": 32, "lr": 2e-3, "optimizer": "adam",
            "schedule": "cosine", "augment": DEFAULT_AUGMENT, "seed": 0, "data_dir": None,
            "threads": None}
_DATA = re.compile(r"fsdd:(standard|speaker=([a-z]{1,32}))(?::takes=([0-9]{1,3}))?")


class SpeechTrainError(CnnlabError, ValueError):
    """A speech run can't start or continue; the message says why and what to do."""


@dataclasses.dataclass
class SpeechRunResult:
    """One finished (or stopped) run: its folder, accuracy on the test split and timing."""

    run: runs.Run
    split: str
    speaker: str | None
    epochs: int
    test_accuracy: float
    test_loss: float
    seconds: float
    stop_reason: str | None = None


def data_label(kind: str, speaker: str | None, takes: int | None) -> str:
    """run.json's data text: 'fsdd:standard', 'fsdd:speaker=theo', + ':takes=N'."""
    text = "fsdd:standard" if kind == "standard" else f"fsdd:speaker={speaker}"
    return text if takes is None else f"{text}:takes={takes}"


def _parse_data_label(text: str, path) -> tuple[str, str | None, int | None]:
    match = _DATA.fullmatch(text)
    if match is None:
        raise SpeechTrainError(f"{path}: data {text!r:.80} is not an FSDD split of a speech run")
    kind = "standard" if match[1] == "standard" else "speaker"
    return kind, match[2], None if match[3] is None else int(match[3])


def train_speech(model_name: str = "freq", split: str = "standard", *, data_dir=None,
                 out="runs", name: str | None = None, overwrite: bool = False,
                 features: FeatureSettings | None = None, takes: int | None = None,
                 verbose: int = 1, **settings) -> list[SpeechRunResult]:
    """Train ``model_name`` ('freq' or '2d') on a split: 'standard', 'speaker' (six runs, one
    per held-out speaker) or 'speaker:NAME'; return one result per run.

    ``settings`` override ``DEFAULTS`` (epochs, batch_size, lr, augment, seed, threads, ...).
    ``takes``: use only the first N takes of each speaker and digit (quick trials).
    """
    if model_name not in MODEL_NAMES:
        raise SpeechTrainError(f"unknown model {model_name!r}; expected {', '.join(MODEL_NAMES)}")
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise TypeError(f"train_speech: unknown setting(s) {unknown}")
    settings = {**DEFAULTS, **settings, "data_dir": None if data_dir is None else str(data_dir)}
    try:
        kind, speaker = parse_split(split)
        parse_speech_augment(settings["augment"])
    except ValueError as error:
        raise SpeechTrainError(str(error)) from None
    features = features or FeatureSettings()
    build_model(model_name, features.input_shape)  # a bad combination fails before any file
    data = load_fsdd(data_dir, features, limit_per_class=takes)
    if kind == "speaker":
        held_out = [speaker] if speaker else data.speaker_names
    else:
        held_out = [None]
    results = []
    for one in held_out:
        label = data_label(kind, one, takes)
        run_name = None if name is None else (name if len(held_out) == 1 else f"{name}-{one}")
        # under mpirun rank 0 makes the folder; the others write nothing
        run = distributed.root_run(functools.partial(
            _new_run, out, model_name, label, run_name, overwrite, settings, features))
        results.append(_train_run(run, model_name, data, kind, one, settings, features, verbose,
                                  resume=None))
    if len(results) > 1 and verbose and distributed.is_root():
        print(summarize_rotations(results))
    return results


def _new_run(out, model_name, label, run_name, overwrite, settings, features):
    run = runs.create_run(out, f"speech-{model_name}", label, name=run_name, overwrite=overwrite)
    run.clean_temporaries()
    run.remove_planted_links()
    command = "cnnlab " + shlex.join(sys.argv[1:])
    run.write_info(runs.RunInfo(f"speech-{model_name}", label,
                                {"model": f"speech-{model_name}", "data": label, **settings},
                                command))
    atomic.write_text(run.path(FEATURES_FILE), json.dumps(features.to_json(), indent=1) + "\n")
    return run


def resume_speech(path, epochs: int | None = None, threads: int | None = None,
                  verbose: int = 1) -> SpeechRunResult:
    """Continue the run at ``path`` (its folder or checkpoint) up to ``epochs`` epochs."""
    run = runs.open_run(path)
    root = distributed.is_root()
    if root:
        run.clean_temporaries()
    info = run.read_info()
    if not info.model.startswith("speech-") or info.model[len("speech-"):] not in MODEL_NAMES:
        raise SpeechTrainError(f"{run.run_file}: model {info.model!r:.60} is not a speech model; "
                               "resume it with cnnlab train --resume")
    model_name = info.model[len("speech-"):]
    kind, speaker, takes = _parse_data_label(info.data, run.run_file)
    features_json = runs.read_json(run.path(FEATURES_FILE), "speech settings")
    try:
        features = FeatureSettings.from_json(features_json)
    except (TypeError, ValueError) as error:
        raise SpeechTrainError(f"{run.path(FEATURES_FILE)}: {error}") from None
    if not run.has_checkpoint():
        raise SpeechTrainError(f"{run.directory} has no {runs.CHECKPOINT_FILE}: no epoch "
                               "finished, so there is nothing to resume; start it again")
    settings = {**DEFAULTS, **{k: v for k, v in info.settings.items() if k in DEFAULTS}}
    if threads is not None:
        settings["threads"] = threads
    if epochs is not None and epochs != settings["epochs"]:
        settings["epochs"] = epochs
        info.settings = {**info.settings, "epochs": epochs}
        if root:
            run.write_info(info)
    if root:
        run.remove_planted_links()
    data = load_fsdd(settings["data_dir"], features, limit_per_class=takes)
    return _train_run(run, model_name, data, kind, speaker, settings, features, verbose,
                      resume=run.checkpoint_file)


def _train_run(run, model_name, data, kind, speaker, settings, features, verbose, resume):
    train, test = split_indices(data, kind, speaker)
    model = build_model(model_name, features.input_shape, seed=settings["seed"])
    model.class_names = [str(d) for d in range(10)]
    augment = parse_speech_augment(settings["augment"], seed=settings["seed"])
    # under mpirun only rank 0 prints and writes (cnnlab.distributed)
    root = distributed.is_root()
    verbose = verbose if root else 0
    callbacks = [ModelCheckpoint(run.checkpoint_file, save_best_only=False)] if root else []
    if settings["schedule"] != "none":
        callbacks.append(LearningRateScheduler(settings["schedule"]))
    if verbose:
        held = "" if speaker is None else f", {speaker} held out"
        print(f"Training speech-{model_name} on FSDD ({kind} split{held}): {len(train)} train / "
              f"{len(test)} test spectrograms {features.input_shape}, "
              f"{model.num_parameters():,} parameters\nRun directory: {run.directory}",
              flush=True)
    started = time.perf_counter()
    validation = (data.x[test], data.digits[test])
    with BlasThreads(settings["threads"] or distributed.threads_per_rank()):
        history = fit(model, (data.x[train], data.digits[train]), epochs=settings["epochs"],
                      batch_size=settings["batch_size"], validation=validation,
                      optimizer=settings["optimizer"], lr=settings["lr"], callbacks=callbacks,
                      augment=augment, seed=settings["seed"], verbose=verbose, resume=resume,
                      parallel=distributed.world())
    seconds = time.perf_counter() - started
    result = evaluate(model, validation)
    if root and not (history.diverged or history.interrupted):
        run.write_history(history)
        save_speech_model(model, features, run.model_file)
        if history.get("loss"):
            from cnnlab.plots import plot_history  # lazy: matplotlib

            plot_history(history, run.path("learning_curve.png"),
                         title=f"speech-{model_name} on {kind}")
    if verbose:
        right = round(result["accuracy"] * len(test))
        print(f"Test accuracy: {result['accuracy']:.4f} ({right}/{len(test)}), "
              f"loss {result['loss']:.4f}, {history.epochs} epochs in {seconds:.0f} s",
              flush=True)
    return SpeechRunResult(run, kind, speaker, history.epochs, float(result["accuracy"]),
                           float(result["loss"]), seconds, history.stop_reason)


def summarize_rotations(results: list[SpeechRunResult]) -> str:
    """A table of the held-out-speaker accuracies with their mean and worst."""
    lines = ["held-out speaker   accuracy   epochs   seconds"]
    for r in results:
        lines.append(f"{r.speaker or '-':<18} {r.test_accuracy:8.4f}   {r.epochs:6d}   "
                     f"{r.seconds:7.0f}")
    accuracies = np.array([r.test_accuracy for r in results])
    worst = results[int(accuracies.argmin())]
    lines.append(f"mean {accuracies.mean():.4f}, worst {accuracies.min():.4f} ({worst.speaker})")
    return "\n".join(lines)
