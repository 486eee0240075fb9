"""The model that ships with cnnlab (the 2d model of the standard split): small, loads safely,
and recognises test recordings it never trained on."""


from cnnlab.apps.speech.fsdd import find_fsdd
from cnnlab.apps.speech.inference import predict_recordings
from cnnlab.apps.speech.model_file import load_speech_model, shipped_model_path
from cnnlab.apps.speech.spectrogram import FeatureSettings

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def test_the_shipped_model_is_small_and_loads():
    with shipped_model_path() as path:
        assert path.stat().st_size < 2 << 20
        model, features = load_speech_model(path)
    assert features == FeatureSettings()
    assert model.class_names == [str(d) for d in range(10)]
    assert tuple(model.input_shape) == (1, 40, 64)


def test_the_shipped_model_names_the_digits_of_standard_test_recordings(fsdd_root):
    folder = find_fsdd(fsdd_root)
    # take 0..4 are the standard split's test set: the shipped model never trained on them
    paths = [folder / f"{digit}_{speaker}_{take}.wav"
             for digit in range(10) for speaker in SPEAKERS for take in (0, 3)]
    with shipped_model_path() as path:
        model, features = load_speech_model(path)
    predictions = predict_recordings(model, features, paths)
    right = sum(p.label == p.path.split("/")[-1][0] for p in predictions)
    assert right >= 118, f"{right}/120 right"
    assert min(p.probability for p in predictions) > 0.1
