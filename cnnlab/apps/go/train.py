"""Training and measuring the policy network on game records (``cnnlab go train``).

``train_policy`` trains ``alphago_policy`` on encoded positions (``positions``) with
``cnnlab.training.fit`` (its progress bar, ``ModelCheckpoint`` after every epoch,
``resume``). ``measure`` gives top-1 / top-5 move prediction. ``train_command`` is the
CLI's: it reads Fox pro and Fox 9-dan from the datasets folder (``games.load_sets``:
duplicates removed, whole games held out), keeps a seeded sample of ``--games`` training
games, and writes a run folder (``cnnlab.runs``) holding::

    go-train.json      the settings (a resume reads them back; only --epochs may change)
    checkpoint.npz     after every epoch
    model.npz          when training ends
    history.json       per-epoch loss, accuracy, val_loss, val_accuracy (held-out sample)
    go-results.json    top-1 / top-5 on the held-out Fox pro games, positions seen, times
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from cnnlab import distributed, runs
from cnnlab.apps.go import positions as pos
from cnnlab.atomic import write_text
from cnnlab.errors import CnnlabError

__all__ = ["RESULTS_FILE", "SETTINGS_FILE", "measure", "sample_games", "train_command",
           "train_policy"]

SETTINGS_FILE = "go-train.json"
RESULTS_FILE = "go-results.json"
#: held-out positions evaluated after every epoch (the final measure uses all of them)
VALIDATION_POSITIONS = 2000
#: the settings a run keeps; a resume may change only ``epochs``
SETTING_NAMES = ("k", "layers", "planes", "pooling", "games", "epochs", "batch_size", "lr",
                 "seed")


def forward_logits(model, planes: np.ndarray) -> np.ndarray:
    """(N, 361) logits of ``model`` on float planes, in evaluation mode without a graph."""
    from cnnlab.tensor import Tensor, no_grad

    was_training = getattr(model, "training", False)
    model.train(False)
    try:
        with no_grad():
            return model(Tensor(planes)).data
    finally:
        model.train(was_training)


def measure(model, positions: pos.Positions, batch_size: int = 256) -> dict:
    """Top-1 and top-5 of ``model`` on ``positions`` (no symmetry): counts and rates."""
    from cnnlab.threads import BlasThreads

    hits = {1: 0, 5: 0}
    # as fit does: fewer BLAS threads while other processes keep cores busy (spinning
    # BLAS threads on a loaded machine made a long measure many times slower)
    with BlasThreads():
        for start in range(0, len(positions), batch_size):
            logits = forward_logits(model, positions.planes(start, start + batch_size))
            for k, count in pos.top_k(logits, positions.moves[start:start + batch_size]).items():
                hits[k] += count
    total = len(positions)
    return {"positions": total, "top1": hits[1], "top5": hits[5],
            "top1_rate": hits[1] / total if total else 0.0,
            "top5_rate": hits[5] / total if total else 0.0}


def accuracy_lines(result: dict, what: str) -> list[str]:
    """``top-1 accuracy: X% (n/N)`` and the same for top-5."""
    total = result["positions"]
    return [f"top-{k} accuracy{what}: {100 * result[f'top{k}'] / max(total, 1):.1f}% "
            f"({result[f'top{k}']:,}/{total:,})" for k in (1, 5)]


def sample_games(games, count: int | None, seed: int) -> list:
    """A seeded sample of ``count`` games (all when None or more than there are), in order."""
    games = list(games)
    if count is None or count >= len(games):
        return games
    chosen = np.sort(np.random.default_rng([seed, 12]).choice(len(games), count, replace=False))
    return [games[i] for i in chosen]


def _validation(held_out: pos.Positions, seed: int):
    """A fixed sample of held-out positions as float (x, y) for fit's val_* numbers."""
    count = min(VALIDATION_POSITIONS, len(held_out))
    index = np.sort(np.random.default_rng([seed, 13]).choice(len(held_out), count, replace=False))
    return pos.planes(held_out.stored[index], held_out.encoding), held_out.moves[index]


def train_policy(model, train: pos.Positions, held_out: pos.Positions | None, epochs: int,
                 batch_size: int = 64, lr: float = 1e-3, seed: int = 0, checkpoint=None,
                 resume=None, verbose: int = 1, parallel=None):
    """Train ``model`` on ``train`` with fit (Adam, random symmetries); returns the History.

    ``held_out``: positions whose fixed sample gives val_loss/val_accuracy per epoch.
    ``checkpoint``: a path written after every epoch (``ModelCheckpoint``); ``resume``: a
    checkpoint to continue from. ``parallel``: fit's data-parallel group (under mpirun; give
    the checkpoint on rank 0 only).
    """
    from cnnlab.callbacks import ModelCheckpoint
    from cnnlab.training import fit

    callbacks = [] if checkpoint is None else [ModelCheckpoint(checkpoint, save_best_only=False)]
    validation = None if held_out is None or not len(held_out) else _validation(held_out, seed)
    return fit(model, pos.loader(train, batch_size, seed), epochs=epochs, lr=lr,
               validation=validation, callbacks=callbacks, seed=seed, verbose=verbose,
               resume=resume, parallel=parallel)


def _encode(games, encoding: str, what: str) -> pos.Positions:
    _say(f"encoding {what}: {len(games):,} games ...", end="", file=sys.stderr, flush=True)
    positions = pos.encode_games(games, encoding)
    rate = len(positions) / max(positions.seconds, 1e-9)
    _say(f" {len(positions):,} positions in {positions.seconds:.1f} s ({rate:,.0f}/s), "
          f"{positions.nbytes / 1e6:,.1f} MB", file=sys.stderr, flush=True)
    return positions


def _settings(args) -> dict:
    settings = {name: getattr(args, name) for name in SETTING_NAMES}
    settings["planes"] = str(settings["planes"])
    return settings


def _resumed_settings(run, args) -> dict:
    saved = runs.read_json(run.path(SETTINGS_FILE), "go training settings")
    if not isinstance(saved, dict) or set(saved) != set(SETTING_NAMES):
        raise CnnlabError(f"{run.path(SETTINGS_FILE)}: not the settings of a go training run")
    requested = _settings(args)
    changed = [name for name in SETTING_NAMES if name != "epochs"
               and args.explicit.get(name) and requested[name] != saved[name]]
    if changed:
        raise CnnlabError(f"a resumed run keeps its settings; cannot change "
                          f"{', '.join(f'--{n.replace(chr(95), chr(45))}' for n in changed)}")
    saved["epochs"] = requested["epochs"] if args.explicit.get("epochs") else saved["epochs"]
    return saved


def _build_model(settings: dict):
    from cnnlab.models.go import alphago_policy
    from cnnlab.nn.seeding import manual_seed

    planes = pos.ENCODINGS[settings["planes"]][1]
    # the builder's layers draw their weights at construction, from the stream manual_seed sets
    manual_seed(settings["seed"])
    model = alphago_policy(settings["k"], settings["layers"], planes, settings["pooling"])
    model.build((planes, pos.BOARD_SIZE, pos.BOARD_SIZE))
    return model


def _say(*args, **kwargs) -> None:
    """``print``, on rank 0 only under mpirun."""
    if distributed.is_root():
        print(*args, **kwargs)


def _new_run(args, settings: dict):
    run = runs.create_run(args.out, "alphago-policy", f"go-fox-{settings['planes']}", args.name)
    write_text(run.path(SETTINGS_FILE), json.dumps(settings, indent=1) + "\n")
    return run


def train_command(args) -> int:
    """``cnnlab go train``: see the module docstring."""
    from cnnlab.apps.go.games import load_sets
    from cnnlab.io import save_model

    if args.resume:
        run = runs.open_run(args.resume)
        settings = _resumed_settings(run, args)
        checkpoint = run.checkpoint_file
        if not checkpoint.is_file():
            raise CnnlabError(f"{run.directory}: no {runs.CHECKPOINT_FILE} to resume from")
    else:
        settings = _settings(args)
        checkpoint = None
    root = Path(args.data_root)
    if not root.is_dir():
        raise CnnlabError(f"{root}: no such datasets folder (give --data-root)")
    started = time.perf_counter()
    _say(f"reading Fox pro and Fox 9-dan games from {root} ...", file=sys.stderr, flush=True)
    sets = load_sets(root, names=("fox-pro", "fox-9d"), seed=0)
    for line in sets.lines():
        _say(line, file=sys.stderr)
    train_games = sample_games(sets.train, settings["games"], settings["seed"])
    held_pro = sample_games(sets.held_out["fox-pro"], args.eval_games, 0)
    train = _encode(train_games, settings["planes"], "training games")
    held = _encode(held_pro, settings["planes"], "held-out Fox pro games")
    model = _build_model(settings)
    if not args.resume:  # under mpirun rank 0 makes the folder; the others write nothing
        run = distributed.root_run(lambda: _new_run(args, settings))
    _say(f"training alphago-policy k={settings['k']} layers={settings['layers']} "
          f"planes={settings['planes']} pooling={settings['pooling']}: "
          f"{model.num_parameters():,} parameters, {len(train):,} positions from "
          f"{len(train_games):,} games; run folder {run.directory}", flush=True)
    fit_start = time.perf_counter()
    root = distributed.is_root()
    history = train_policy(model, train, held, settings["epochs"], settings["batch_size"],
                           settings["lr"], settings["seed"],
                           run.checkpoint_file if root else None, resume=checkpoint,
                           verbose=args.verbose if root else 0, parallel=distributed.world())
    fit_seconds = time.perf_counter() - fit_start
    if not root:
        return 0
    run.write_history(history)
    if history.interrupted or history.diverged:
        _say(f"training stopped: {history.stop_reason}; the last finished epoch is in "
              f"{run.checkpoint_file} (continue with --resume {run.directory})", file=sys.stderr)
        return 1
    save_model(model, run.model_file)
    result = measure(model, held, args.batch_size * 4)
    lines = accuracy_lines(result, " on held-out Fox pro games")
    _say("\n".join(lines))
    summary = {"settings": settings, "held_out_fox_pro": result,
               "training_positions": len(train), "epochs": history.epochs,
               "positions_seen": len(train) * history.epochs,
               "fit_seconds_this_session": round(fit_seconds, 1),
               "total_seconds_this_session": round(time.perf_counter() - started, 1),
               "history": {key: list(values) for key, values in history.items()}}
    write_text(run.path(RESULTS_FILE), json.dumps(summary, indent=1) + "\n")
    _say(f"model: {run.model_file}")
    return 0
