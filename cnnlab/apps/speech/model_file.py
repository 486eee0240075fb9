"""A speech model file: cnnlab's safe model format plus the feature settings it was trained on.

The file is an ordinary cnnlab model (``cnnlab.io``: no pickle, bounded, checked, atomic
writes) whose metadata also holds ``"speech_features"`` (``FeatureSettings.to_json``), so
``cnnlab predict``, ``summary`` and the explorer read it like any model, and ``cnnlab speech
predict`` knows how to turn a recording into its input. ``shipped_model_path`` is the model
that ships with the package (``cnnlab/apps/speech/model/``, read with ``importlib.resources``).
"""

from __future__ import annotations

import contextlib
import importlib.resources

import cnnlab
from cnnlab.apps.speech.spectrogram import FeatureSettings
from cnnlab.errors import FileFormatError
from cnnlab.io import open_archive, save_arrays
from cnnlab.model_file import rebuild_model

__all__ = ["SHIPPED_MODEL", "load_speech_model", "save_speech_model", "shipped_model_path"]

SHIPPED_MODEL = "fsdd_2d.npz"
_KEY = "speech_features"


def save_speech_model(model, features: FeatureSettings, path) -> None:
    """Write a built model with its feature settings, atomically (what ``io.save_model`` writes,
    plus ``speech_features``)."""
    metadata = {
        "kind": "model",
        "cnnlab_version": cnnlab.__version__,
        "config": model.get_config(),
        "input_shape": list(model.input_shape),
        "class_names": None if model.class_names is None else [str(c) for c in model.class_names],
        "normalization": None,
        _KEY: features.to_json(),
    }
    save_arrays(path, model.state_dict(), metadata)


def load_speech_model(path):
    """(model, FeatureSettings) from a file ``save_speech_model`` wrote.

    Raises ``FileFormatError`` naming the file: not a model, no or bad feature settings,
    or features whose shape is not the model's input shape.
    """
    with open_archive(path) as archive:
        metadata = archive.metadata
        if metadata.get("kind") != "model" or "config" not in metadata:
            raise FileFormatError(path, "a cnnlab file, but not a model")
        if _KEY not in metadata:
            raise FileFormatError(path, "a cnnlab model, but not a speech model (it records no "
                                        "spectrogram settings); train one with cnnlab speech train")
        try:
            features = FeatureSettings.from_json(metadata[_KEY])
        except (TypeError, ValueError) as error:
            raise FileFormatError(path, f"bad {_KEY}: {error}") from None
        model = rebuild_model(archive, metadata, config_field="config", prefix="")
    if tuple(model.input_shape) != features.input_shape:
        raise FileFormatError(path, f"the model takes {tuple(model.input_shape)} but its "
                                    f"features give {features.input_shape}")
    return model, features


@contextlib.contextmanager
def shipped_model_path():
    """The shipped model's file path, for the duration of the ``with`` block."""
    resource = importlib.resources.files("cnnlab.apps.speech") / "model" / SHIPPED_MODEL
    with importlib.resources.as_file(resource) as path:
        yield path
