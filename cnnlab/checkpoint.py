"""Training checkpoints: everything ``fit`` needs to continue a run exactly.

A checkpoint is one ``.npz`` written atomically by ``cnnlab.io.save_arrays`` (never
pickled): the model's weights and buffers and the optimiser's state as arrays, and as
JSON metadata the model config, input shape, class names, input normalisation, epoch,
history, optimiser hyperparameters, callback state and every random generator's state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from cnnlab.training import TrainingState

CHECKPOINT_FORMAT = "cnnlab-checkpoint"
_MODEL_PREFIX = "model."
_OPTIMIZER_PREFIX = "optimizer."


def _generators(model, augment) -> dict[str, np.random.Generator]:
    """Every NumPy generator held by the model's modules or the augmentation, by a stable name."""
    found = {}
    for prefix, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, np.random.Generator):
                found[f"model.{prefix}.{attr}"] = value
    if augment is not None:
        for attr, value in vars(augment).items():
            if isinstance(value, np.random.Generator):
                found[f"augment.{attr}"] = value
    return found


# --------------------------------------------------------------- checkpoints
def save_checkpoint(path, state: TrainingState) -> None:
    """Write model config + weights, optimiser state, epoch, history and callback state, atomically.

    Refuses (ValueError) to write non-finite weights.
    """
    from cnnlab.io import save_arrays

    model, optimizer = state.model, state.optimizer
    if not state.weights_finite():
        raise ValueError(f"save_checkpoint: the model has NaN or infinite weights; not writing {path}")
    arrays = {_MODEL_PREFIX + name: value for name, value in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    arrays.update({_OPTIMIZER_PREFIX + key: value for key, value in optimizer_state.pop("state").items()})
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
        "rng": {name: gen.bit_generator.state for name, gen in _generators(model, state.augment).items()},
    }
    save_arrays(path, arrays, metadata)


def load_checkpoint(path) -> dict:
    """Read a checkpoint: ``{'model': state dict, 'optimizer': state dict, **metadata}``."""
    from cnnlab.io import FileFormatError, load_arrays

    arrays, metadata = load_arrays(path)
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise FileFormatError(f"{path}: not a cnnlab training checkpoint (format {metadata.get('format')!r})")
    out = dict(metadata)
    out["model"] = {k[len(_MODEL_PREFIX):]: v for k, v in arrays.items() if k.startswith(_MODEL_PREFIX)}
    optimizer_state = dict(metadata["optimizer"])
    optimizer_state["state"] = {
        k[len(_OPTIMIZER_PREFIX):]: v for k, v in arrays.items() if k.startswith(_OPTIMIZER_PREFIX)
    }
    out["optimizer"] = optimizer_state
    out["path"] = str(path)
    return out


def model_from_checkpoint(checkpoint):
    """Rebuild the model saved in a checkpoint (a path or what ``load_checkpoint`` returned)."""
    from cnnlab.nn import from_config

    if not isinstance(checkpoint, dict):
        checkpoint = load_checkpoint(checkpoint)
    model = from_config(checkpoint["model_config"])
    if checkpoint.get("input_shape"):
        model.build(tuple(checkpoint["input_shape"]))
    model.load_state_dict(checkpoint["model"])
    model.class_names = checkpoint.get("class_names")
    if checkpoint.get("normalization"):
        model.normalization = checkpoint["normalization"]
    return model


def restore_training(state: TrainingState, checkpoint: dict) -> None:
    """Put the model, optimiser, history and generators back as the checkpoint saved them."""
    path = checkpoint["path"]
    try:
        state.model.load_state_dict(checkpoint["model"])
    except ValueError as error:
        raise ValueError(f"fit: cannot resume from {path}: {error}") from None
    saved_type = checkpoint["optimizer"].get("type")
    if saved_type != type(state.optimizer).__name__:
        raise ValueError(
            f"fit: cannot resume from {path}: it was trained with {saved_type}, "
            f"this run uses {type(state.optimizer).__name__}"
        )
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    state.history.update({k: list(v) for k, v in checkpoint["history"].items()})
    state.epochs_done = int(checkpoint["epoch"])
    _restore_generators(state, checkpoint.get("rng", {}))


def _restore_generators(state: TrainingState, saved: dict) -> None:
    """Set every saved generator's state; create it where a layer makes its generator lazily."""
    generators = _generators(state.model, state.augment)
    owners = {f"model.{prefix}": module for prefix, module in state.model.named_modules()}
    owners["augment"] = state.augment
    for name, bit_state in saved.items():
        generator = generators.get(name)
        if generator is None:
            owner_name, _, attr = name.rpartition(".")
            owner = owners.get(owner_name)
            if owner is None or getattr(owner, attr, False) is not None:
                continue
            generator = np.random.Generator(getattr(np.random, bit_state["bit_generator"])())
            setattr(owner, attr, generator)
        generator.bit_generator.state = bit_state


def restore_callbacks(state: TrainingState, checkpoint: dict) -> None:
    saved = checkpoint.get("callbacks", [])
    for cb, entry in zip(state.callbacks, saved):
        if entry.get("class") == type(cb).__name__:
            cb.load_state_dict(entry["state"])
