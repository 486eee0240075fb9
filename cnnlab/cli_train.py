"""``cnnlab train``: a new run or a resumed one, in a run folder (``cnnlab.runs``).

A new run refuses an existing ``--name`` (``--overwrite`` replaces it) and writes
``run.json`` only once the model and data are known to work. A resumed run reads
its settings from ``run.json`` (refusing without one), may change only ``--epochs``
(more epochs extend it), ``--threads`` and ``--data-dir``, and says so when there is
nothing left to do, without rewriting anything. After training the test set is
evaluated once: its loss, accuracy and confusion matrix come from one pass.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from pathlib import Path

import numpy as np

from cnnlab import distributed, models, runs
from cnnlab._memory import keep_freed_memory
from cnnlab.callbacks import LearningRateScheduler, ModelCheckpoint
from cnnlab.checkpoint import load_checkpoint, model_from_checkpoint
from cnnlab.errors import CnnlabError
from cnnlab.interrupts import stop_signals
from cnnlab.io import save_model
from cnnlab.threads import BlasThreads
from cnnlab.training import fit, predict

#: the settings of a training run, recorded in run.json, with the CLI's defaults
DEFAULTS = {
    "model": "lecture",
    "data": "digits",
    "epochs": 10,
    "batch_size": 32,
    "lr": 2e-3,
    "optimizer": "adam",
    "schedule": "cosine",
    "augment": "shift=2,rotate=10",
    "seed": 0,
    "image_size": None,
    "data_dir": None,
    "threads": None,
    "weight_decay": None,
    "momentum": None,
    "patience": None,
    "validation_split": 0.0,
    "clip_norm": None,
    "sync_batch_norm": False,
}
SGD_OPTIMIZERS = ("sgd", "momentum", "nesterov")


class CLIError(CnnlabError):
    """A user-facing error: printed as 'cnnlab <command>: error: message', exit status 2."""


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def requested_settings(args) -> dict:
    """The settings given explicitly on the command line (the parser's defaults are None)."""
    return {
        name: getattr(args, name) for name in DEFAULTS if getattr(args, name, None) is not None
    }


def cmd_train(args) -> int:
    keep_freed_memory()  # reuse freed buffers across batches (see cnnlab._memory)
    requested = requested_settings(args)
    if args.resume:
        if args.name or args.overwrite:
            raise CLIError(
                "--resume continues a run in its own folder; --name and --overwrite don't apply"
            )
        return _resume(args, requested)
    settings = {**DEFAULTS, **requested}
    _check_combination(settings)
    image_size = settings["image_size"] or models.default_input_shape(settings["model"])[1]
    splits, augment = _prepare(settings, image_size)
    model = _new_model(settings, splits.train)
    # From the moment the run folder exists, Ctrl-C/SIGTERM only ask fit to stop (fit shares
    # this request), so a stop at any point ends in _stopped's clean-up and message.
    group = distributed.world()
    settings.update(_parallel_settings(group, settings))
    with stop_signals(args.verbose):
        # under mpirun rank 0 makes the folder; the others write nothing
        run = distributed.root_run(lambda: _new_run(args, settings))
        return _train(run, model, splits, augment, settings, args.verbose, checkpoint=None)


def _new_run(args, settings: dict):
    run = runs.create_run(
        args.out, settings["model"], settings["data"], name=args.name, overwrite=args.overwrite
    )
    run.clean_temporaries()
    run.remove_planted_links()
    command = "cnnlab " + shlex.join(sys.argv[1:])
    run.write_info(runs.RunInfo(settings["model"], settings["data"], settings, command))
    return run


def _is_root(group) -> bool:
    """Whether this process prints and writes (``distributed.is_root`` for a known group)."""
    return group is None or group.rank == 0


def _parallel_settings(group, settings: dict) -> dict:
    """What run.json records of a data-parallel run: the ranks and their batch together."""
    ranks = 1 if group is None else group.size
    if ranks == 1 and "ranks" not in settings:
        return {}
    return {"ranks": ranks, "global_batch_size": ranks * settings["batch_size"]}


def _resume(args, requested: dict) -> int:
    try:
        run = runs.open_run(args.resume)
    except runs.RunError as error:
        raise CLIError(f"--resume: {error}") from None
    if run.directory != Path(args.resume) and Path(args.resume).name != runs.CHECKPOINT_FILE:
        raise CLIError(
            f"--resume takes a run folder or its {runs.CHECKPOINT_FILE}, received {args.resume}"
        )
    group = distributed.world()
    if _is_root(group):
        run.clean_temporaries()
    try:
        info = run.read_info()
    except runs.RunError as error:
        raise CLIError(
            f"--resume: {error}; without it cnnlab can't tell which model, data and "
            "settings the run used, so it won't guess"
        ) from None
    if _is_root(group):
        run.remove_planted_links()
    if not run.has_checkpoint():
        raise CLIError(
            f"--resume: {run.directory} has no {runs.CHECKPOINT_FILE}: the run stopped before "
            "its first epoch ended, so there is nothing to resume; start it again"
        )
    saved = {**DEFAULTS, "model": info.model, "data": info.data, **info.settings}
    try:
        settings = runs.merge_resume_settings(saved, requested)
    except runs.ResumeConflictError as error:
        raise CLIError(
            f"--resume: a resumed run keeps its settings; {', '.join(map(flag, error.names))} "
            f"can't change ({error.detail}); only --epochs (to extend it), --threads and "
            "--data-dir may; start a new run to change the others"
        ) from None
    try:
        checkpoint = load_checkpoint(run.checkpoint_file)
        model = model_from_checkpoint(checkpoint)
    except (CnnlabError, ValueError, TypeError, KeyError) as error:
        raise CLIError(
            f"--resume: {run.checkpoint_file}: cannot load the checkpoint: {error}"
        ) from None
    done = int(checkpoint["epoch"])
    settings.update(_parallel_settings(group, settings))
    if done >= settings["epochs"] and not run.has_model() and _is_root(group):
        # Killed after its last checkpoint but before writing its model: finish it, no training.
        print(
            f"{run.directory} trained {done} epochs but stopped before writing its model; "
            "writing it now"
        )
        splits, _ = _prepare(settings, tuple(model.input_shape[1:]))
        return _finish(run, model, checkpoint["history"], splits.test, _title(settings))
    if done >= settings["epochs"]:
        if not _is_root(group):
            return 0
        print(
            f"Nothing to do: {run.directory} has trained {done} epochs and --epochs is "
            f"{settings['epochs']}; give --epochs above {done} to train it longer. "
            "Nothing was changed."
        )
        return 0
    splits, augment = _prepare(settings, tuple(model.input_shape[1:]))
    changed = {name: settings[name] for name in ("epochs", "ranks", "global_batch_size")
               if name in settings and settings[name] != saved.get(name)}
    if changed and _is_root(group):
        info.settings = {**info.settings, **changed}
        run.write_info(info)
    return _train(run, model, splits, augment, settings, args.verbose, checkpoint=checkpoint)


def _check_combination(settings: dict) -> None:
    if settings["momentum"] is not None and settings["optimizer"] not in SGD_OPTIMIZERS:
        raise CLIError(
            f"--momentum applies to --optimizer {', '.join(SGD_OPTIMIZERS)}, "
            f"not {settings['optimizer']}"
        )


def _prepare(settings: dict, image_size):
    """(splits, augmentation): every user error about them comes before any file is written."""
    # Lazy: scikit-learn loads slowly.
    from cnnlab.data.augment import parse_augment_spec

    try:
        augment = parse_augment_spec(settings["augment"], seed=settings["seed"])
    except ValueError as error:
        raise CLIError(f"--augment: {error}") from None
    return load_splits(settings["data"], image_size, settings["data_dir"]), augment


def _new_model(settings, train):
    try:
        return models.get(
            settings["model"],
            input_shape=train.image_shape,
            seed=settings["seed"],
            num_classes=train.num_classes,
            class_names=train.class_names,
        )
    except ValueError as error:
        raise CLIError(f"--model {settings['model']}: {error}") from None


def load_splits(data: str, image_size, data_dir):
    """The train/test splits of a dataset name or image folder; a CLIError for any problem."""
    # Lazy: scikit-learn and the image readers load slowly.
    from cnnlab.data import load_dataset

    try:
        return load_dataset(data, image_size=image_size, data_dir=data_dir)
    except (CnnlabError, ValueError, TypeError, OSError) as error:
        raise CLIError(f"--data {data}: {os_message(error)}") from None


def os_message(error: BaseException) -> str:
    """An OSError as 'path: reason' (the file named), anything else as its message."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error)


def _callbacks(run, settings: dict, root: bool = True) -> list:
    callbacks = [ModelCheckpoint(run.checkpoint_file, save_best_only=False)] if root else []
    if settings["schedule"] != "none":
        callbacks.append(LearningRateScheduler(settings["schedule"]))
    return callbacks


def _train(run, model, splits, augment, settings: dict, verbose: int, checkpoint) -> int:
    train, test = splits
    group = distributed.world()
    root = _is_root(group)
    if checkpoint is not None:
        _check_data_fits(model, train, settings["data"])
    if root:
        print(
            f"Training {settings['model']} on {settings['data']}: "
            f"{len(train)} train / {len(test)} test "
            f"images {train.image_shape}, {model.num_parameters():,} parameters"
        )
        if group is not None:
            print(f"Data-parallel over {group.size} ranks: {settings['batch_size']} images per "
                  f"rank, {settings['global_batch_size']} per step; batch norm "
                  f"{'synchronised' if settings['sync_batch_norm'] else 'per rank'}")
        print(f"Run directory: {run.directory}", flush=True)
    if settings["sync_batch_norm"]:
        distributed.synchronize_batch_norm(model, group)
    validation = None if settings["validation_split"] else test
    # --threads fixes the BLAS thread count; without it BlasThreads chooses (cnnlab.threads),
    # or under mpirun the cores divided among this machine's ranks
    threads = settings["threads"] or distributed.threads_per_rank()
    with BlasThreads(threads), _resume_errors(checkpoint), _write_errors(run):
        history = fit(
            model,
            train,
            epochs=settings["epochs"],
            batch_size=settings["batch_size"],
            validation=validation,
            optimizer=settings["optimizer"],
            lr=settings["lr"],
            callbacks=_callbacks(run, settings, root),
            augment=augment,
            seed=settings["seed"],
            verbose=verbose if root else 0,
            resume=checkpoint["path"] if checkpoint else None,
            clip_norm=settings["clip_norm"],
            weight_decay=settings["weight_decay"],
            momentum=settings["momentum"],
            validation_split=settings["validation_split"],
            patience=settings["patience"],
            parallel=group,
        )
    if not root:  # rank 0 reports and writes
        return 0
    if history.diverged or history.interrupted:
        return _stopped(run, history, verbose, fresh=checkpoint is None)
    return _finish(run, model, history, test, _title(settings))


def _title(settings: dict) -> str:
    return f"{settings['model']} on {settings['data']}"


def _finish(run, model, history, test, title: str) -> int:
    """Write the history and the model, then evaluate the test set once and draw the figures."""
    run.write_history(history)
    save_model(model, run.model_file)
    return _report(run, model, history, test, title)


def _check_data_fits(model, train, data) -> None:
    if tuple(model.input_shape) != tuple(train.image_shape):
        raise CLIError(
            f"--resume: the run's model expects inputs {tuple(model.input_shape)} but --data "
            f"{data} gives {train.image_shape}"
        )


def _stopped(run, history, verbose: int, fresh: bool) -> int:
    """After a divergence or Ctrl-C/SIGTERM: say what was kept and what can be done next.

    A new run stopped before its first epoch ended has nothing worth keeping: its folder
    (run.json alone) is removed, so the same command can simply be run again.
    """
    if not verbose:  # fit printed the reason already when verbose
        print(f"cnnlab train: {history.stop_reason}", file=sys.stderr)
    saved = _saved_epochs(run)
    if saved:
        kept = f"The checkpoint after epoch {saved} is kept: {run.checkpoint_file}."
    else:
        kept = "Nothing was saved: no epoch finished."
        if fresh and _remove_unfinished(run):
            kept += f" The run folder {run.directory} was removed"
            kept += "." if history.diverged else "; run the same command again."
    if history.diverged:
        print(f"{kept} Start a new run with a lower --lr or with --clip-norm.", file=sys.stderr)
        return 1
    print(f"Interrupted. {kept}")
    if saved:
        print(f"Continue with: cnnlab train --resume {shlex.quote(str(run.directory))}")
    return 130


def _remove_unfinished(run) -> bool:
    """Remove run.json, stale temporaries and then the folder, if nothing else is in it."""
    run.clean_temporaries()
    with contextlib.suppress(FileNotFoundError):
        run.run_file.unlink()
    try:
        run.directory.rmdir()
    except OSError:
        return False
    return True


def _saved_epochs(run) -> int:
    if not run.has_checkpoint():
        return 0
    try:
        return int(load_checkpoint(run.checkpoint_file)["epoch"])
    except (CnnlabError, ValueError, TypeError, KeyError, OSError):
        return 0


def _report(run, model, history, test, title: str) -> int:
    """Evaluate the test set once; print loss and accuracy; write both figures."""
    # lazy: matplotlib loads slowly
    from cnnlab.plots import confusion_matrix, plot_confusion_matrix, plot_history

    probabilities = predict(model, test)
    labels = np.asarray(test.labels)
    predicted = probabilities.argmax(axis=1)
    accuracy = float(np.mean(predicted == labels))
    chosen = probabilities[np.arange(len(labels)), labels].astype(np.float64)
    loss = float(-np.mean(np.log(np.maximum(chosen, np.finfo(np.float64).tiny))))
    figures = []
    if history.get("loss"):
        figures.append(plot_history(history, run.path("learning_curve.png"), title=title))
    matrix = confusion_matrix(labels, predicted, num_classes=test.num_classes)
    figures.append(
        plot_confusion_matrix(
            matrix, run.path("confusion_matrix.png"), class_names=test.class_names
        )
    )
    correct = int(np.sum(predicted == labels))
    print(
        f"Training time: {sum(history.get('time', [])):.1f}s "
        f"for {len(history.get('loss', []))} epochs"
    )
    print(f"Test loss: {loss:.4f}")
    print(f"Test accuracy: {accuracy:.4f} ({correct}/{len(test)})")
    print(f"Wrote {run.model_file}, {', '.join(str(path) for path in figures)}")
    return 0


@contextlib.contextmanager
def _resume_errors(checkpoint):
    """A checkpoint that doesn't fit its run (crafted, or from another run) is a user error."""
    if checkpoint is None:
        yield
        return
    try:
        yield
    except (CnnlabError, ValueError, TypeError, KeyError) as error:
        raise CLIError(f"--resume: {checkpoint['path']}: {error}") from None


@contextlib.contextmanager
def _write_errors(run):
    """A failed write (disk full, folder gone) says which file and what was kept."""
    try:
        yield
    except OSError as error:
        saved = _saved_epochs(run)
        kept = (
            f"the checkpoint after epoch {saved} is kept: {run.checkpoint_file}; continue with "
            f"cnnlab train --resume {shlex.quote(str(run.directory))} once there is room"
            if saved
            else "no epoch was saved"
        )
        raise CLIError(f"{os_message(error)}; {kept}") from None
