"""Training on FSDD: the splits, a short run on a subset, the run folder and resume."""

import json

import numpy as np
import pytest

from cnnlab.apps.speech.fsdd import (
    FsddNotFoundError,
    find_fsdd,
    load_fsdd,
    parse_split,
    split_indices,
)
from cnnlab.apps.speech.model_file import load_speech_model
from cnnlab.apps.speech.spectrogram import FeatureSettings
from cnnlab.apps.speech.train import SpeechTrainError, resume_speech, train_speech


def test_standard_and_speaker_splits(fsdd_root):
    data = load_fsdd(fsdd_root, takes=range(8))  # takes 0..7 of every digit and speaker
    assert data.x.shape == (480, 1, 40, 64) and data.speaker_names == [
        "george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    train, test = split_indices(data, "standard")
    assert len(test) == 300 and (data.takes[test] < 5).all() and (data.takes[train] >= 5).all()
    train, test = split_indices(data, "speaker", "theo")
    assert set(data.speakers[test]) == {"theo"} and "theo" not in set(data.speakers[train])
    assert len(train) + len(test) == 480
    assert parse_split("speaker:lucas") == ("speaker", "lucas")
    for bad in ("random", "standard:theo"):
        with pytest.raises(ValueError, match="unknown split"):
            parse_split(bad)
    with pytest.raises(ValueError, match="unknown speaker"):
        split_indices(data, "speaker", "alice")


def test_missing_dataset_says_where_it_looked(tmp_path):
    with pytest.raises(FsddNotFoundError, match="--data-dir"):
        find_fsdd(tmp_path)


def test_a_short_run_on_a_subset_beats_chance_by_far_and_resumes(fsdd_root, tmp_path):
    features = FeatureSettings(n_mels=32, frames=48)
    [first] = train_speech("2d", "standard", data_dir=fsdd_root, out=tmp_path, name="tiny",
                           features=features, takes=10, epochs=2, verbose=0, lr=3e-3,
                           augment="shift=2")
    assert first.epochs == 2
    [result] = [resume_speech(first.run.directory, epochs=8, verbose=0)]
    assert result.epochs == 8  # the history holds the two first epochs too
    assert result.test_accuracy > 0.6  # chance is 0.1; 300 test recordings
    run = result.run
    info = json.loads(run.run_file.read_text())
    assert info["data"] == "fsdd:standard:takes=10" and info["settings"]["epochs"] == 8
    assert len(json.loads(run.history_file.read_text())["loss"]) == 8
    model, saved = load_speech_model(run.model_file)
    assert saved == features and tuple(model.input_shape) == (1, 32, 48)


def test_bad_settings_are_refused_before_any_run_folder(fsdd_root, tmp_path):
    with pytest.raises(SpeechTrainError, match="unknown model"):
        train_speech("rnn", data_dir=fsdd_root, out=tmp_path)
    with pytest.raises(SpeechTrainError, match="NAME=NUMBER"):
        train_speech("2d", data_dir=fsdd_root, out=tmp_path, augment="rotate=3")
    with pytest.raises(ValueError, match="time blocks"):
        train_speech("freq", data_dir=fsdd_root, out=tmp_path,
                     features=FeatureSettings(frames=60))
    assert not any(tmp_path.iterdir())
    assert np.isfinite(load_fsdd(fsdd_root, takes=[0]).x).all()
