"""``run.json``: what a run is (``RunInfo``), the settings it may hold, and the resume rule.

``run.json`` is untrusted input when read: ``RunInfo.from_json`` checks every field
against ``SETTINGS`` (the only names a run file may use, each with its check), so a
crafted file ends in a ``RunError`` naming the file and the field, never a traceback.
``merge_resume_settings`` decides what a resume may change: nothing but
``RESUME_CHANGEABLE``; anything else raises ``ResumeConflictError`` naming it.
"""

from __future__ import annotations

import dataclasses

from cnnlab._checks import check_choice, check_int, check_number, check_type
from cnnlab.errors import CnnlabError, FileFormatError
from cnnlab.optim import OPTIMIZER_NAMES

__all__ = [
    "OPTIMIZERS",
    "RESUME_CHANGEABLE",
    "RUN_FORMAT",
    "RUN_VERSION",
    "SCHEDULES",
    "SETTINGS",
    "ResumeConflictError",
    "RunError",
    "RunInfo",
    "merge_resume_settings",
]

RUN_FORMAT = "cnnlab-run"
RUN_VERSION = 1
#: the optimisers and learning-rate schedules a run may name (cnnlab.optim, cnnlab.callbacks)
OPTIMIZERS = OPTIMIZER_NAMES
SCHEDULES = ("cosine", "onecycle", "step", "none")
#: settings that a resumed run may change: more epochs extend it; the rest is where and how fast
RESUME_CHANGEABLE = ("epochs", "threads", "data_dir", "verbose", "ranks", "global_batch_size")


class RunError(FileFormatError):
    """A run folder or one of its files can't be used; the message names the path and why."""


class ResumeConflictError(CnnlabError, ValueError):
    """A resume was asked to change settings that are fixed for the run.

    ``names`` lists them; ``detail`` says, for each, what the run has and what was asked.
    """

    def __init__(self, names: list[str], detail: str):
        super().__init__(f"a resumed run keeps its settings; cannot change {detail}")
        self.names = names
        self.detail = detail


def _optional(check):
    return lambda value, name: None if value is None else check(value, name)


# name -> check(value, name) returning the value; the owner in messages is "settings".
SETTINGS = {
    "model": lambda v, n: check_type(v, str, "settings", n, "a str"),
    "data": lambda v, n: check_type(v, str, "settings", n, "a str"),
    "epochs": lambda v, n: check_int(v, "settings", n, minimum=1),
    "batch_size": lambda v, n: check_int(v, "settings", n, minimum=1),
    "lr": lambda v, n: check_number(v, "settings", n, low=0, low_open=True),
    "optimizer": lambda v, n: check_choice(v, OPTIMIZERS, "settings", n),
    "schedule": lambda v, n: check_choice(v, SCHEDULES, "settings", n),
    "augment": lambda v, n: check_type(v, str, "settings", n, "a str"),
    "seed": lambda v, n: check_int(v, "settings", n, minimum=0),
    "image_size": _optional(lambda v, n: check_int(v, "settings", n, minimum=1)),
    "data_dir": _optional(lambda v, n: check_type(v, str, "settings", n, "a str or null")),
    "threads": _optional(lambda v, n: check_int(v, "settings", n, minimum=1)),
    "weight_decay": _optional(lambda v, n: check_number(v, "settings", n, low=0)),
    "momentum": _optional(
        lambda v, n: check_number(v, "settings", n, low=0, high=1, high_open=True)
    ),
    "patience": _optional(lambda v, n: check_int(v, "settings", n, minimum=1)),
    "validation_split": lambda v, n: check_number(v, "settings", n, low=0, high=1, high_open=True),
    "clip_norm": _optional(lambda v, n: check_number(v, "settings", n, low=0, low_open=True)),
    "verbose": lambda v, n: check_int(v, "settings", n, minimum=0, maximum=2),
    # data-parallel runs (mpirun): the ranks of the latest part, and their batch together
    "ranks": lambda v, n: check_int(v, "settings", n, minimum=1),
    "global_batch_size": lambda v, n: check_int(v, "settings", n, minimum=1),
    "sync_batch_norm": lambda v, n: check_type(v, bool, "settings", n, "true or false"),
}


@dataclasses.dataclass
class RunInfo:
    """The contents of ``run.json``: which model on which data, with which settings.

    ``settings`` maps setting names (``epochs``, ``batch_size``, ``lr``, ``optimizer``,
    ``schedule``, ``augment``, ``seed``, ...) to JSON values; ``command`` is the command
    line that started the run, for people to read.
    """

    model: str
    data: str
    settings: dict
    command: str = ""

    def to_json(self) -> dict:
        return {
            "format": RUN_FORMAT,
            "version": RUN_VERSION,
            "model": self.model,
            "data": self.data,
            "settings": dict(self.settings),
            "command": self.command,
        }

    @classmethod
    def from_json(cls, obj, path) -> RunInfo:
        """Validate what ``read_json`` returned for ``path``; RunError names the bad field."""
        if not isinstance(obj, dict):
            raise RunError(path, f"expected a JSON object, found {type(obj).__name__}")
        if "format" not in obj and "args" in obj:  # written by cnnlab before run.json had a format
            obj = {
                "format": RUN_FORMAT,
                "version": 1,
                "model": obj.get("model"),
                "data": obj.get("dataset"),
                "settings": obj.get("args"),
                "command": obj.get("command", ""),
            }
        if obj.get("format") != RUN_FORMAT:
            raise RunError(path, f"not a cnnlab run file (format {obj.get('format')!r})")
        version = obj.get("version")
        if (
            isinstance(version, bool)
            or not isinstance(version, int)
            or not 1 <= version <= RUN_VERSION
        ):
            raise RunError(
                path,
                f"unsupported run file version {version!r} (this cnnlab reads 1..{RUN_VERSION})",
            )
        settings = obj.get("settings")
        if not isinstance(settings, dict):
            raise RunError(
                path, f"'settings' must be a JSON object, found {type(settings).__name__}"
            )
        for key in ("model", "data", "command"):
            if not isinstance(obj.get(key, ""), str):
                raise RunError(path, f"{key!r} must be a string, found {obj[key]!r:.80}")
        checked = {}
        for name, value in settings.items():
            if name not in SETTINGS:
                raise RunError(
                    path, f"unknown setting {name!r:.80}; known: {', '.join(SETTINGS)}"
                )
            try:
                checked[name] = SETTINGS[name](value, name)
            except (TypeError, ValueError) as error:
                raise RunError(path, str(error)[:300]) from None
        model, data = (
            obj.get("model") or checked.get("model"),
            obj.get("data") or checked.get("data"),
        )
        if not model or not data:
            raise RunError(path, "the run names no model or no data")
        return cls(model=model, data=data, settings=checked, command=obj.get("command", ""))


def merge_resume_settings(saved: dict, requested: dict, changeable=RESUME_CHANGEABLE) -> dict:
    """The settings of a resumed run: ``saved`` updated with the ``requested`` changes allowed.

    ``requested`` holds only what the user asked for explicitly. A setting outside
    ``changeable`` that differs from the saved one raises ResumeConflictError naming
    every such setting with both values (nothing is silently ignored).
    """
    conflicts = [
        name
        for name, value in requested.items()
        if name not in changeable and name in saved and saved[name] != value
    ]
    conflicts += [
        name
        for name in requested
        if name not in changeable and name not in saved and name in SETTINGS
    ]
    if conflicts:
        detail = ", ".join(
            f"{name} (the run has {saved.get(name)!r}, asked for {requested[name]!r})"
            for name in conflicts
        )
        raise ResumeConflictError(conflicts, detail)
    merged = dict(saved)
    merged.update({name: value for name, value in requested.items() if name in changeable})
    return merged
