"""Finding a trained model in a run folder written by ``cnnlab train``.

A run folder holds ``model.npz`` once training has finished, ``checkpoint.npz``
after each epoch, and ``run.json`` with the settings (its ``"dataset"`` names the
data). A run stopped early has only the checkpoint: its model is rebuilt from it.
This is the lab's stop-gap until ``cnnlab.runs`` owns the run folder for everyone.
"""

from __future__ import annotations

import json
from pathlib import Path

from cnnlab.errors import CnnlabError, FileFormatError
from cnnlab.limits import LIMITS

MODEL_FILE = "model.npz"
CHECKPOINT_FILE = "checkpoint.npz"
RUN_FILE = "run.json"


def find_model_file(run) -> Path:
    """The file to load for ``run``: the path itself, else its model.npz, else checkpoint.npz."""
    run = Path(run)
    if run.is_file():
        return run
    if not run.is_dir():
        raise FileFormatError(run, "no such run directory or model file")
    for name in (MODEL_FILE, CHECKPOINT_FILE):
        if (run / name).is_file():
            return run / name
    raise FileFormatError(
        run, f"not a run directory: it holds neither {MODEL_FILE} nor {CHECKPOINT_FILE}"
    )


def load_run_model(run):
    """``(model, path)``: the model of a run folder, a model file or a training checkpoint."""
    from cnnlab.checkpoint import CHECKPOINT_FORMAT, model_from_checkpoint
    from cnnlab.io import load_arrays, load_model

    path = find_model_file(run)
    try:
        _, metadata = load_arrays(path)
        if isinstance(metadata, dict) and metadata.get("format") == CHECKPOINT_FORMAT:
            return model_from_checkpoint(path), path
        return load_model(path), path
    except FileFormatError:
        raise
    except (CnnlabError, ValueError, TypeError, KeyError, OSError) as error:
        raise FileFormatError(path, f"cannot load a model from it: {error}") from None


def recorded_dataset(run) -> str | None:
    """The dataset named in the run folder's run.json; None without one.

    Raises FileFormatError (or LimitExceededError) naming run.json if it is unreadable.
    """
    run = Path(run)
    path = (run if run.is_dir() else run.parent) / RUN_FILE
    if not path.is_file():
        return None
    try:
        LIMITS.check("max_json_bytes", path.stat().st_size, f"{path}: the file")
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        if isinstance(error, FileFormatError):
            raise
        raise FileFormatError(path, f"not a readable run record: {error}") from None
    if not isinstance(info, dict):
        return None
    for holder in (info, info.get("args")):
        if isinstance(holder, dict):
            for key in ("dataset", "data"):
                if isinstance(holder.get(key), str):
                    return holder[key]
    return None


def run_label(path: Path) -> str:
    """A short name for a model: its run folder's name, or the model file's stem."""
    path = Path(path)
    return path.parent.name if path.name in (MODEL_FILE, CHECKPOINT_FILE) else path.stem
