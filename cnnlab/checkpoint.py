"""Training checkpoints: everything ``fit`` needs to continue a run exactly.

A checkpoint is one ``.npz`` written atomically by ``cnnlab.io.save_arrays`` (never
pickled): the model's weights and buffers and the optimiser's state as arrays, and as
JSON metadata the model config, input shape, class names, input normalisation, epoch,
history, optimiser hyperparameters, callback state and every random generator's state.

Reading treats the file as untrusted, as ``cnnlab.io`` does: every field is checked
(type, range, keys) and the arrays are compared with the architecture before they are
read; the only exceptions out of ``load_checkpoint``, ``model_from_checkpoint`` and
``restore_training`` are ``cnnlab.errors`` types naming the file and the field. A
random generator is restored only as PCG64 (what cnnlab writes), its state checked
field by field, and only into a stream the model declares (``Module.named_generators``)
or the augmentation's ``rng``: no name from the file is ever looked up or assigned.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING

import numpy as np

from cnnlab import optim
from cnnlab._checks import check_choice, check_int, check_number, check_type
from cnnlab.errors import FileFormatError
from cnnlab.io import open_archive, save_arrays
from cnnlab.limits import LIMITS
from cnnlab.model_file import build_with_weights, check_model_fields, read_weights

if TYPE_CHECKING:
    from cnnlab.training import TrainingState

__all__ = [
    "CHECKPOINT_FORMAT",
    "load_checkpoint",
    "model_from_checkpoint",
    "restore_callbacks",
    "restore_training",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "cnnlab-checkpoint"
_MODEL_PREFIX = "model."
_OPTIMIZER_PREFIX = "optimizer."
_AUGMENT_STREAM = "augment.rng"
#: the bit generators a checkpoint may restore (``np.random.default_rng`` makes PCG64)
BIT_GENERATORS = ("PCG64",)
#: optimisers a checkpoint may name, and the per-parameter state arrays each keeps
OPTIMIZERS = {cls: cls.state_keys for cls in optim.OPTIMIZERS.values()}
_OWNER = "checkpoint"  # how the argument checks name the owner of a field
_MAX_EPOCHS = 10**6
_MAX_STEPS = 2**62
_OPTIMIZER_STATE_KEY = re.compile(r"(\d{1,9})\.([A-Za-z_]\w{0,63})")


def _streams(model, augment) -> dict[str, np.random.Generator]:
    """Every random stream a checkpoint saves, by name: the model's and the augmentation's."""
    found = {f"model.{name}": generator for name, generator in model.named_generators()}
    rng = getattr(augment, "rng", None)
    if isinstance(rng, np.random.Generator):
        found[_AUGMENT_STREAM] = rng
    return found


def save_checkpoint(path, state: TrainingState) -> None:
    """Write model config + weights, optimiser state, epoch, history, callback state, atomically.

    Refuses (ValueError) to write non-finite weights, or a generator other than PCG64.
    """
    model, optimizer = state.model, state.optimizer
    if not state.weights_finite():
        raise ValueError(
            f"save_checkpoint: the model has NaN or infinite weights; not writing {path}"
        )
    streams = _streams(model, state.augment)
    for name, generator in streams.items():
        kind = type(generator.bit_generator).__name__
        if kind not in BIT_GENERATORS:
            raise ValueError(
                f"save_checkpoint: random stream {name!r} uses {kind}; checkpoints restore only "
                f"{list(BIT_GENERATORS)} (np.random.default_rng); not writing {path}"
            )
    arrays = {_MODEL_PREFIX + name: value for name, value in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    arrays.update(
        {_OPTIMIZER_PREFIX + key: value for key, value in optimizer_state.pop("state").items()}
    )
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "model_config": model.get_config(),
        "input_shape": list(model.input_shape) if model.input_shape is not None else None,
        "class_names": list(model.class_names) if model.class_names is not None else None,
        "normalization": state.normalization,
        "epoch": state.epochs_done,
        "epochs": state.epochs,
        "seed": state.seed,
        "history": dict(state.history),
        "optimizer": optimizer_state,
        "callbacks": [
            {"class": type(cb).__name__, "state": cb.state_dict()} for cb in state.callbacks
        ],
        "rng": {name: generator.bit_generator.state for name, generator in streams.items()},
    }
    save_arrays(path, arrays, metadata)


def load_checkpoint(path) -> dict:
    """Read and check a checkpoint: ``{'model', 'optimizer' (state dicts), 'path', **metadata}``.

    Raises ``FileFormatError`` (``LimitExceededError`` for a limit) naming the file and field.
    """
    with open_archive(path) as archive:
        metadata = archive.metadata
        if metadata.get("format") != CHECKPOINT_FORMAT:
            raise FileFormatError(
                path, f"not a cnnlab training checkpoint (format {metadata.get('format')!r:.100})"
            )
        with _checking(path):
            check_choice(metadata.get("version"), (1,), _OWNER, "version")
        stray = [
            key
            for key in archive.entries
            if not key.startswith((_MODEL_PREFIX, _OPTIMIZER_PREFIX))
        ][:10]
        if stray:
            raise FileFormatError(path, f"unexpected arrays {stray}")
        fields = check_model_fields(archive, metadata, "model_config", _MODEL_PREFIX)
        trainable = (
            None
            if fields["declared"] is None
            else [shape for _, shape, is_trainable in fields["declared"] if is_trainable]
        )
        out = dict(metadata)
        out.update(fields)
        del out["declared"]
        out.update(_check_progress(path, metadata))
        optimizer_state = _check_optimizer(path, metadata.get("optimizer"))
        _check_optimizer_arrays(path, archive.entries, optimizer_state["type"], trainable)
        out["callbacks"] = _check_callbacks(path, metadata.get("callbacks", []))
        out["rng"] = _check_streams(path, metadata.get("rng", {}))
        out["model"] = read_weights(archive, _MODEL_PREFIX)
        optimizer_state["state"] = read_weights(archive, _OPTIMIZER_PREFIX)
        out["optimizer"] = optimizer_state
    out["path"] = str(path)
    return out


@contextlib.contextmanager
def _checking(path):
    """A ``cnnlab._checks`` failure (it names the field) as a FileFormatError naming the file."""
    try:
        yield
    except FileFormatError:
        raise
    except (TypeError, ValueError) as error:
        raise FileFormatError(path, str(error)) from None


def _check_progress(path, metadata: dict) -> dict:
    """epoch, epochs, seed and history, checked."""
    with _checking(path):
        epochs = check_int(metadata.get("epochs"), _OWNER, "epochs", 1, _MAX_EPOCHS)
        epoch = check_int(metadata.get("epoch"), _OWNER, "epoch", 0, epochs)
        seed = metadata.get("seed")
        if seed is not None:
            check_int(seed, _OWNER, "seed", 0, 2**63 - 1)
        history = check_type(
            metadata.get("history", {}), dict, _OWNER, "history", "an object of lists of numbers"
        )
        LIMITS.check("max_entries", len(history), f"{path}: history")
        for key, values in history.items():
            check_type(values, list, _OWNER, f"history[{key!r}]", "a list of numbers")
            check_int(len(values), _OWNER, f"len(history[{key!r}])", 0, _MAX_EPOCHS)
            for value in values:  # NaN is a legitimate record of a diverged epoch
                check_number(value, _OWNER, f"history[{key!r}] item", finite=False)
    return {
        "epoch": epoch,
        "epochs": epochs,
        "seed": seed,
        "history": {key: list(values) for key, values in history.items()},
    }


_HYPERPARAMETERS = {
    "momentum": lambda v, name: check_number(v, _OWNER, name, 0.0),
    "nesterov": lambda v, name: check_type(v, bool, _OWNER, name, "true or false"),
    "weight_decay": lambda v, name: check_number(v, _OWNER, name, 0.0),
    "eps": lambda v, name: check_number(v, _OWNER, name, 0.0, low_open=True),
    "betas": lambda v, name: _check_betas(v, name),
    "rho": lambda v, name: check_number(v, _OWNER, name, 0.0, 1.0),
}


def _check_betas(value, name: str) -> None:
    check_type(value, list, _OWNER, name, "a pair of numbers")
    check_choice(len(value), (2,), _OWNER, f"len({name})")
    for i, beta in enumerate(value):
        check_number(beta, _OWNER, f"{name}[{i}]", 0.0, 1.0, high_open=True)


def _optimizer_class(name):
    return next((cls for cls in OPTIMIZERS if cls.__name__ == name), None)


def _check_optimizer(path, saved) -> dict:
    """The optimiser's hyperparameters: a known optimiser, known names, each value in range."""
    with _checking(path):
        check_type(saved, dict, _OWNER, "optimizer", "an object")
        cls = _optimizer_class(saved.get("type"))
        if cls is None:
            check_choice(
                saved.get("type"), [c.__name__ for c in OPTIMIZERS], _OWNER, "optimizer.type"
            )
        allowed = {"type", "lr", "initial_lr", "step_count", *cls.hyperparameters}
        unknown = sorted(map(str, set(saved) - allowed))
        if unknown:
            raise FileFormatError(
                path,
                f"field 'optimizer' has unknown hyperparameters {unknown[:10]} for {cls.__name__} "
                f"(known: {sorted(allowed)})",
            )
        out = {
            "type": cls.__name__,
            "lr": check_number(saved.get("lr"), _OWNER, "optimizer.lr", 0.0),
        }
        if "initial_lr" in saved:
            out["initial_lr"] = check_number(
                saved["initial_lr"], _OWNER, "optimizer.initial_lr", 0.0
            )
        if "step_count" in saved:
            out["step_count"] = check_int(
                saved["step_count"], _OWNER, "optimizer.step_count", 0, _MAX_STEPS
            )
        for name in cls.hyperparameters:
            if name in saved:
                _HYPERPARAMETERS[name](saved[name], f"optimizer.{name}")
                out[name] = saved[name]
    return out


def _check_optimizer_arrays(path, entries: dict, type_name: str, trainable) -> None:
    """Each ``optimizer.i.key`` array: a known key, a parameter index, that parameter's shape."""
    keys = next(keys for cls, keys in OPTIMIZERS.items() if cls.__name__ == type_name)
    for name, entry in entries.items():
        if not name.startswith(_OPTIMIZER_PREFIX):
            continue
        match = _OPTIMIZER_STATE_KEY.fullmatch(name[len(_OPTIMIZER_PREFIX) :])
        if match is None or match.group(2) not in keys:
            raise FileFormatError(
                path, f"array {name!r} is not {type_name} state (i.{'/'.join(keys)})"
            )
        if trainable is None:
            continue
        index = int(match.group(1))
        if index >= len(trainable) or trainable[index] != entry.shape:
            expected = (
                "no such parameter" if index >= len(trainable) else f"shape {trainable[index]}"
            )
            raise FileFormatError(
                path, f"array {name!r} of shape {entry.shape} does not fit the model ({expected})"
            )


_CALLBACK_FIELDS = {
    "monitor": lambda v: v is None or check_type(v, str, _OWNER, "monitor", "a name"),
    "mode": lambda v: check_choice(v, ("auto", "min", "max"), _OWNER, "mode"),
    "best": lambda v: v is None or check_number(v, _OWNER, "best", finite=False),
    "wait": lambda v: check_int(v, _OWNER, "wait", 0, _MAX_EPOCHS),
    "last_saved_epoch": lambda v: (
        v is None or check_int(v, _OWNER, "last_saved_epoch", 0, _MAX_EPOCHS)
    ),
    "base_lr": lambda v: check_number(v, _OWNER, "base_lr", 0.0),
    "last_step": lambda v: check_int(v, _OWNER, "last_step", 0, _MAX_STEPS),
    "type": lambda v: check_type(v, str, _OWNER, "type", "a name"),
}


def _check_callbacks(path, saved) -> list[dict]:
    """A list of ``{"class": name, "state": {...}}``; fields cnnlab's callbacks read, checked."""
    with _checking(path):
        check_type(saved, list, _OWNER, "callbacks", "a list")
        LIMITS.check("max_entries", len(saved), f"{path}: callbacks")
        for index, entry in enumerate(saved):
            what = f"callbacks[{index}]"
            check_type(entry, dict, _OWNER, what, "an object with 'class' and 'state'")
            check_type(entry.get("class"), str, _OWNER, f"{what}.class", "a class name")
            state = check_type(entry.get("state", {}), dict, _OWNER, f"{what}.state", "an object")
            for key, value in state.items():
                if key in _CALLBACK_FIELDS:
                    try:
                        _CALLBACK_FIELDS[key](value)
                    except (TypeError, ValueError) as error:
                        raise FileFormatError(path, f"{what}.state: {error}") from None
    return saved


def _check_streams(path, saved) -> dict:
    """Each saved generator state: PCG64's exact fields and ranges; nothing looked up by name."""
    with _checking(path):
        check_type(saved, dict, _OWNER, "rng", "an object of generator states")
        LIMITS.check("max_entries", len(saved), f"{path}: rng")
        for name, state in saved.items():
            what = f"rng[{name!r}]"
            check_type(state, dict, _OWNER, what, "a generator state object")
            check_choice(
                state.get("bit_generator"), BIT_GENERATORS, _OWNER, f"{what}.bit_generator"
            )
            if set(state) != {"bit_generator", "state", "has_uint32", "uinteger"}:
                raise FileFormatError(
                    path, f"{what} has fields {sorted(map(str, state))}, not PCG64's"
                )
            inner = check_type(state["state"], dict, _OWNER, f"{what}.state", "an object")
            if set(inner) != {"state", "inc"}:
                raise FileFormatError(
                    path, f"{what}.state has fields {sorted(map(str, inner))}, not PCG64's"
                )
            for key in ("state", "inc"):
                check_int(inner[key], _OWNER, f"{what}.state.{key}", 0, 2**128 - 1)
            check_int(state["has_uint32"], _OWNER, f"{what}.has_uint32", 0, 1)
            check_int(state["uinteger"], _OWNER, f"{what}.uinteger", 0, 2**32 - 1)
    return saved


def model_from_checkpoint(checkpoint):
    """Rebuild the model saved in a checkpoint (a path or what ``load_checkpoint`` returned)."""
    if not isinstance(checkpoint, dict):
        checkpoint = load_checkpoint(checkpoint)
    path = checkpoint.get("path", "checkpoint")
    model = build_with_weights(
        path,
        checkpoint["model_config"],
        checkpoint.get("input_shape"),
        checkpoint["model"],
        "model_config",
    )
    model.class_names = checkpoint.get("class_names")
    if checkpoint.get("normalization"):
        model.normalization = checkpoint["normalization"]
    return model


def restore_training(state: TrainingState, checkpoint: dict) -> None:
    """Put the model, optimiser, history and generators back as the checkpoint saved them.

    Raises ``FileFormatError`` naming the checkpoint when it does not fit this run.
    """
    path = checkpoint["path"]
    try:
        state.model.load_state_dict(checkpoint["model"])
    except ValueError as error:
        raise FileFormatError(path, f"fit: cannot resume from it: {error}") from None
    saved = checkpoint["optimizer"]
    if saved.get("type") != type(state.optimizer).__name__:
        raise FileFormatError(
            path,
            f"fit: cannot resume from it: it was trained with {saved.get('type')}, "
            f"this run uses {type(state.optimizer).__name__}",
        )
    params = state.optimizer.params
    for key, value in saved.get("state", {}).items():
        index = int(key.partition(".")[0])
        if index >= len(params) or params[index].shape != value.shape:
            raise FileFormatError(
                path,
                f"fit: cannot resume from it: optimizer state {key!r} "
                "does not fit this run's parameters",
            )
    try:
        state.optimizer.load_state_dict(saved)
    except (TypeError, ValueError) as error:
        raise FileFormatError(path, f"fit: cannot resume from it: {error}") from None
    state.history.update({k: list(v) for k, v in checkpoint["history"].items()})
    state.epochs_done = int(checkpoint["epoch"])
    _restore_generators(path, state, checkpoint.get("rng", {}))


def _restore_generators(path, state: TrainingState, saved: dict) -> None:
    """Set each declared stream the checkpoint saved (states checked by ``load_checkpoint``)."""
    streams = _streams(state.model, state.augment)
    for name, bit_state in saved.items():
        generator = streams.get(name)
        if generator is None:
            if name == _AUGMENT_STREAM:
                continue  # resumed without augmentation: nothing draws from that stream
            raise FileFormatError(
                path,
                f"rng: random stream {name!r} is not one this model declares ({sorted(streams)})",
            )
        if bit_state.get("bit_generator") not in BIT_GENERATORS or (
            type(generator.bit_generator).__name__ != bit_state["bit_generator"]
        ):
            kind = bit_state.get("bit_generator")
            raise FileFormatError(path, f"rng: stream {name!r} cannot take a {kind!r:.50} state")
        generator.bit_generator.state = bit_state


def restore_callbacks(state: TrainingState, checkpoint: dict) -> None:
    """Give each callback the state its namesake saved (checked by ``load_checkpoint``)."""
    # Matched by class, then by order within the class, not by position in the list: older
    # checkpoints saved ModelCheckpoint last while the CLI passes it first.
    saved: dict[str, list] = {}
    for entry in checkpoint.get("callbacks", []):
        saved.setdefault(entry.get("class"), []).append(entry.get("state", {}))
    for cb in state.callbacks:
        queue = saved.get(type(cb).__name__)
        if not queue:
            continue
        try:
            cb.load_state_dict(queue.pop(0))
        except (TypeError, ValueError, KeyError) as error:
            raise FileFormatError(checkpoint["path"], f"callbacks: {error}") from None
