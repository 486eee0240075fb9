"""The run folder: where a training run keeps its files, and how other code finds them.

A run lives in ``OUT/<model>-<data>-NNN/`` (or ``OUT/NAME/``) and holds::

    run.json              what the run is: model, data, settings, command (``RunInfo``)
    history.json          per-epoch loss, accuracy, val_loss, val_accuracy, lr, time
    checkpoint.npz        the training state after the last finished epoch (for resuming)
    model.npz             the trained model, written when training ends
    learning_curve.png    written when training ends
    confusion_matrix.png

Every file of a run is written through ``cnnlab.atomic`` (temporary file in the run
folder + rename), so a crash never leaves half a file and a symlink planted in a
run folder is replaced, never followed. ``Run.path`` accepts plain file names only,
so nothing is written outside the folder. ``run.json`` and ``history.json`` are
untrusted input when read: their size is bounded by ``cnnlab.limits.LIMITS.max_json_bytes``,
a symlink is refused, and every field is checked; problems raise ``RunError`` (a
``cnnlab.errors.FileFormatError``) naming the file.

Public API (used by ``cnnlab.cli``, ``cnnlab.lab`` and the explain/explorer code):

- ``create_run(out, model, data, name=None, overwrite=False) -> Run``: a new run folder,
  ``OUT/<model>-<data>-NNN`` with the first free NNN, or ``OUT/NAME``; an existing NAME is
  refused (``RunExistsError``, which suggests the next free name) unless ``overwrite``,
  which removes that run's files first.
- ``open_run(path) -> Run``: an existing run folder, or the folder of a file inside it.
- ``run_stem(model, data) -> str`` and ``next_free_name(out, stem) -> str``.
- ``Run``: ``.directory``; ``.path(file_name)``; ``.run_file``, ``.history_file``,
  ``.checkpoint_file``, ``.model_file``; ``.has_checkpoint()``, ``.has_model()``;
  ``.write_info(RunInfo)``, ``.read_info() -> RunInfo``; ``.write_history(dict)``,
  ``.read_history() -> dict``; ``.clean_temporaries() -> list[Path]``;
  ``.remove_planted_links() -> list[Path]``; ``.label``.
- ``RunInfo(model, data, settings, command)``: ``.to_json()``, ``RunInfo.from_json(obj, path)``
  (defined with the settings a run file may hold in ``cnnlab.run_settings``).
- ``find_model_file(path) -> Path``: the file itself, or a run folder's ``model.npz``,
  else its ``checkpoint.npz`` (a run with only a checkpoint works).
- ``load_any_model(path) -> Module``: a model file, a checkpoint or a run folder.
- ``merge_resume_settings(saved, requested, changeable=RESUME_CHANGEABLE) -> dict``:
  the settings of a resumed run; raises ``ResumeConflictError`` naming what may not change.
- ``read_json(path, what="JSON file") -> object``: a bounded, symlink-refusing JSON read.
- Constants: ``RUN_FILE``, ``HISTORY_FILE``, ``CHECKPOINT_FILE``, ``MODEL_FILE``,
  ``FIGURE_FILES``, ``OPTIMIZERS`` and ``SCHEDULES`` (the names a run.json may use),
  ``RESUME_CHANGEABLE``.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path

from cnnlab import atomic
from cnnlab.checkpoint import CHECKPOINT_FORMAT, model_from_checkpoint
from cnnlab.errors import FileFormatError
from cnnlab.io import load_arrays, load_model, parse_json
from cnnlab.limits import LIMITS
from cnnlab.run_settings import (
    OPTIMIZERS,
    RESUME_CHANGEABLE,
    SCHEDULES,
    ResumeConflictError,
    RunError,
    RunInfo,
    merge_resume_settings,
)

__all__ = [
    "CHECKPOINT_FILE",
    "FIGURE_FILES",
    "HISTORY_FILE",
    "MODEL_FILE",
    "OPTIMIZERS",
    "RESUME_CHANGEABLE",
    "RUN_FILE",
    "SCHEDULES",
    "ResumeConflictError",
    "Run",
    "RunError",
    "RunExistsError",
    "RunInfo",
    "create_run",
    "find_model_file",
    "load_any_model",
    "merge_resume_settings",
    "next_free_name",
    "open_run",
    "read_json",
    "run_stem",
]

RUN_FILE = "run.json"
HISTORY_FILE = "history.json"
CHECKPOINT_FILE = "checkpoint.npz"
MODEL_FILE = "model.npz"
FIGURE_FILES = ("learning_curve.png", "confusion_matrix.png")
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_COUNTER_PATTERN = re.compile(r"(.+)-(\d{3,})")


class RunExistsError(RunError):
    """A run of that name exists and ``overwrite`` was not given; ``suggestion`` is a free name."""

    def __init__(self, path, problem: str, suggestion: str):
        super().__init__(path, problem)
        self.suggestion = suggestion


def read_json(path, what: str = "JSON file"):
    """Parse a small JSON file that may be hostile: a regular file (a symlink is refused), at most
    ``LIMITS.max_json_bytes`` bytes, nested at most ``LIMITS.max_nesting`` deep.

    Raises RunError naming the file (FileNotFoundError-free: a missing file is a RunError too).
    """
    path = Path(path)
    try:
        fd = os.open(
            path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise RunError(
                path, f"the {what} is a symlink; a run's files must be regular files"
            ) from None
        if error.errno == errno.ENOENT:
            raise RunError(path, f"no {what} here") from None
        raise RunError(path, f"cannot read the {what}: {error.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise RunError(path, f"the {what} is not a regular file")
        data = handle.read(LIMITS.max_json_bytes + 1)
    LIMITS.check("max_json_bytes", len(data), f"{path}: the {what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RunError(path, f"the {what} is not valid JSON: {error}") from None
    try:
        return parse_json(text, path, f"the {what}", allow_nan=False)
    except FileFormatError as error:  # the same message (a limit's included), as a run error
        raise RunError(str(error)) from None


class Run:
    """An existing run folder; see the module docstring for its files."""

    def __init__(self, directory):
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"Run({str(self.directory)!r})"

    @property
    def label(self) -> str:
        return self.directory.name

    def path(self, file_name: str) -> Path:
        """``directory / file_name``; ValueError for anything but a plain file name."""
        if not isinstance(file_name, str) or not _NAME_PATTERN.fullmatch(file_name):
            raise ValueError(
                f"Run.path: expected a plain file name inside the run folder, "
                f"received {file_name!r}"
            )
        return self.directory / file_name

    run_file = property(lambda self: self.path(RUN_FILE))
    history_file = property(lambda self: self.path(HISTORY_FILE))
    checkpoint_file = property(lambda self: self.path(CHECKPOINT_FILE))
    model_file = property(lambda self: self.path(MODEL_FILE))

    def has_checkpoint(self) -> bool:
        return self.checkpoint_file.is_file()

    def has_model(self) -> bool:
        return self.model_file.is_file()

    def write_info(self, info: RunInfo) -> Path:
        return _write_json(self.run_file, info.to_json())

    def read_info(self) -> RunInfo:
        return RunInfo.from_json(read_json(self.run_file, "run file"), self.run_file)

    def write_history(self, history) -> Path:
        return _write_json(
            self.history_file, {key: list(values) for key, values in dict(history).items()}
        )

    def read_history(self) -> dict:
        history = read_json(self.history_file, "history file")
        if not isinstance(history, dict) or not all(
            isinstance(values, list)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            for values in history.values()
        ):
            raise RunError(self.history_file, "expected an object of lists of numbers")
        return history

    def remove_planted_links(self) -> list[Path]:
        """Remove symlinks standing where the run's outputs go (never their targets); return them.

        The outputs are history.json, model.npz and the figures (run.json and checkpoint.npz
        are read by a resume, which refuses or bounds them). A crafted run folder can hold ``history.json -> ~/.bashrc``; cnnlab's own writers
        replace such links, and this also keeps a writer that follows links (a plotting
        library) from reaching the target. Call it at each start, with ``clean_temporaries``.
        """
        removed = []
        for file_name in (HISTORY_FILE, MODEL_FILE, *FIGURE_FILES):
            path = self.path(file_name)
            if path.is_symlink():
                path.unlink()
                removed.append(path)
        return removed

    def clean_temporaries(self) -> list[Path]:
        """Remove the ``.NAME.*.tmp`` files a killed writer left here (call at each start)."""
        return atomic.remove_stale_temporaries(self.directory)


def _write_json(path: Path, obj) -> Path:
    try:
        atomic.write_text(path, json.dumps(obj, indent=1, allow_nan=False) + "\n")
    except OSError as error:
        raise RunError(path, f"cannot write: {_reason(error)}") from None
    return path


def _reason(error: OSError) -> str:
    if error.errno in (errno.EEXIST, errno.ENOTDIR):
        return "a file is in the way where a folder should be"
    return error.strerror or str(error)


def _data_label(data: str) -> str:
    path = Path(data)
    label = path.name if path.is_dir() and path.name else data
    return re.sub(r"[^A-Za-z0-9._+-]", "_", label).lstrip(".") or "data"


def run_stem(model: str, data: str) -> str:
    """``<model>-<data label>``; a data folder is labelled by its name."""
    return f"{re.sub(r'[^A-Za-z0-9._+-]', '_', model)}-{_data_label(data)}"


def next_free_name(out, stem: str) -> str:
    """The first ``<stem>-NNN`` (from 001) not in ``out``; a stem ending in -NNN is stripped."""
    match = _COUNTER_PATTERN.fullmatch(stem)
    stem = match.group(1) if match else stem
    out = Path(out)
    for counter in range(1, 1_000_000):
        name = f"{stem}-{counter:03d}"
        if not os.path.lexists(out / name):
            return name
    raise RunError(out, f"no free run name {stem}-NNN left")


def _make_folder(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(path, f"cannot create the {what}: {_reason(error)}") from None
    if not path.is_dir():
        raise RunError(path, f"cannot create the {what}: a file is in the way")


def create_run(
    out, model: str, data: str, name: str | None = None, overwrite: bool = False
) -> Run:
    """Make a new run folder under ``out`` (created if needed) and return it.

    Without ``name`` the folder is ``<model>-<data>-NNN`` with the first free NNN (made with
    an exclusive mkdir, so two runs started together get different folders). An existing
    ``name`` raises RunExistsError unless ``overwrite``: then that run's known files
    (model, checkpoint, history, figures, run.json) are removed first.
    """
    out = Path(out)
    _make_folder(out, "output folder")
    if name is None:
        stem = run_stem(model, data)
        for _ in range(1000):
            directory = out / next_free_name(out, stem)
            try:
                directory.mkdir()
            except FileExistsError:
                continue  # taken between the check and the mkdir: try the next one
            except OSError as error:
                raise RunError(
                    directory, f"cannot create the run folder: {_reason(error)}"
                ) from None
            return Run(directory)
        raise RunError(out, f"no free run name {stem}-NNN")
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise RunError(
            out / str(name), "a run name must be a plain folder name (letters, digits, . _ + -)"
        )
    directory = out / name
    if os.path.lexists(directory):
        if directory.is_symlink() or not directory.is_dir():
            raise RunError(
                directory,
                "exists and is not a run folder (a file or a symlink); choose another name",
            )
        if not overwrite:
            suggestion = next_free_name(out, name)
            raise RunExistsError(
                directory,
                f"a run of that name exists; give --overwrite to replace it, "
                f"or choose a free name such as {suggestion}",
                suggestion,
            )
        run = Run(directory)
        for file_name in (RUN_FILE, HISTORY_FILE, CHECKPOINT_FILE, MODEL_FILE, *FIGURE_FILES):
            try:
                os.unlink(run.path(file_name))  # unlink removes a symlink itself, never its target
            except FileNotFoundError:
                pass
            except OSError as error:
                raise RunError(
                    run.path(file_name), f"cannot remove it to overwrite the run: {_reason(error)}"
                ) from None
        run.clean_temporaries()
        return run
    _make_folder(directory, "run folder")
    return Run(directory)


def open_run(path) -> Run:
    """The run folder ``path``, or the folder holding the file ``path`` (its checkpoint.npz)."""
    path = Path(path)
    if path.is_dir():
        return Run(path)
    if path.is_file():
        return Run(path.parent)
    raise RunError(path, "no such run folder or file")


def find_model_file(path) -> Path:
    """``path`` if it is a file; for a run folder its model.npz, else its checkpoint.npz."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        run = Run(path)
        for candidate in (run.model_file, run.checkpoint_file):
            if candidate.is_file():
                return candidate
        raise RunError(
            path, f"holds neither {MODEL_FILE} nor {CHECKPOINT_FILE} (is it a run folder?)"
        )
    raise RunError(path, "no such model file or run folder")


def load_any_model(path):
    """The model of a model file, a checkpoint or a run folder (its model, else its checkpoint).

    Every problem with the file raises a ``cnnlab.errors.FileFormatError`` naming it.
    """
    path = find_model_file(path)
    try:
        _, metadata = load_arrays(path)
        if isinstance(metadata, dict) and metadata.get("format") == CHECKPOINT_FORMAT:
            return model_from_checkpoint(path)
        return load_model(path)
    except FileFormatError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OSError, RecursionError) as error:
        # Loaders raise cnnlab errors for what they check; anything else is still about this file.
        raise FileFormatError(path, f"cannot load a model from it: {error}"[:500]) from None
