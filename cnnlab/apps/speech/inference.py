"""Using a trained speech model: the digit in a recording, and what its first layer sees.

``predict_recordings`` reads each WAV (``audio.read_wav``), computes the features the model
was trained on and returns the most probable digit with its probability. ``show_recording``
draws one PNG: the model's input spectrogram, the first-layer kernels and the responses
(after batch norm and ReLU) of the filters whose response peaks highest on this recording.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cnnlab.apps.speech.audio import AudioInfo, read_wav
from cnnlab.apps.speech.spectrogram import FeatureSettings, features, hz_to_mel
from cnnlab.nn import Conv2D, ReLU
from cnnlab.tensor import Tensor, no_grad
from cnnlab.training import predict

__all__ = ["Prediction", "first_layer_responses", "predict_recordings", "show_recording"]


@dataclasses.dataclass
class Prediction:
    """The model's answer for one file: digit, its probability, all ten and the audio info."""

    path: str
    label: str
    probability: float
    probabilities: np.ndarray
    info: AudioInfo


def predict_recordings(model, settings: FeatureSettings, paths, crop: bool = True
                       ) -> list[Prediction]:
    """The most probable class of each WAV file. Raises ``AudioError`` for a file it can't read.

    ``crop``: a recording longer than ``audio.MAX_SECONDS`` is cropped (the model sees about
    one second anyway) rather than refused.
    """
    results = []
    for path in paths:
        samples, info = read_wav(path, crop=crop)
        probabilities = predict(model, features(samples, settings)[None])[0]
        best = int(probabilities.argmax())
        names = model.class_names or [str(i) for i in range(len(probabilities))]
        results.append(Prediction(str(path), str(names[best]), float(probabilities[best]),
                                  probabilities, info))
    return results


def first_layer_responses(model, x: np.ndarray) -> tuple[Conv2D, np.ndarray]:
    """(first Conv2D, its responses (C, F', T')): the layers up to and including the first
    ReLU applied to one input x (1, F, T), in evaluation mode."""
    layers = list(model.layers)
    conv = next((layer for layer in layers if isinstance(layer, Conv2D)), None)
    if conv is None:
        raise ValueError("the model has no Conv2D layer to show")
    end = next((i for i, layer in enumerate(layers) if isinstance(layer, ReLU)),
               layers.index(conv))
    was_training = model.training
    model.train(False)
    try:
        with no_grad():
            out = Tensor(x[None].astype(np.float32))
            for layer in layers[: end + 1]:
                out = layer(out)
    finally:
        model.train(was_training)
    return conv, np.asarray(out.data[0])


def _frequency_ticks(settings: FeatureSettings, rows: int):
    """(row positions, Hz labels) for a spectrogram axis of ``rows`` rows."""
    if settings.kind == "mfcc":
        return [], []
    hz = np.array([250, 500, 1000, 2000, 3000, 4000])
    hz = hz[hz <= settings.sample_rate / 2]
    if settings.kind == "stft":
        positions = hz * settings.window / settings.sample_rate
    else:  # mel centres are evenly spaced in mel between 0 and the Nyquist frequency
        top = hz_to_mel(settings.sample_rate / 2)
        positions = hz_to_mel(hz) / top * (settings.n_mels + 1) - 1
    scale = rows / settings.bins
    return positions * scale, [f"{h:g}" for h in hz]


def show_recording(model, settings: FeatureSettings, path, out, filters: int = 8):
    """Write the PNG described in the module docstring to ``out``; return (out, Prediction)."""
    import matplotlib.pyplot as plt  # lazy: matplotlib loads slowly

    from cnnlab.plots import save_figure

    samples, _ = read_wav(path, crop=True)
    x = features(samples, settings)
    prediction = predict_recordings(model, settings, [path])[0]
    conv, responses = first_layer_responses(model, x)
    # ranked by their strongest response: a filter that fires on the silence around the word
    # has a high mean but says little
    strongest = np.argsort(responses.reshape(len(responses), -1).max(axis=1))[::-1][:filters]
    kernels = np.asarray(conv.weight.data)[:, 0]  # (C, kh, kw): the input has one channel
    figure = plt.figure(figsize=(12, 7.5))
    grid = figure.add_gridspec(3, filters, height_ratios=(2.2, 1.0, 1.6))
    top = figure.add_subplot(grid[0, :])
    seconds = len(samples) / settings.sample_rate
    top.imshow(x[0], origin="lower", aspect="auto", cmap="magma")
    ticks, labels = _frequency_ticks(settings, x.shape[1])
    top.set_yticks(ticks, labels)
    top.set_ylabel("frequency (Hz)" if labels else "MFCC")
    top.set_xlabel(f"frame ({settings.hop / settings.sample_rate * 1000:g} ms hop)")
    top.set_title(f"{path}: {seconds:.2f} s, {settings.kind} input {x.shape[1:]}; "
                  f"predicted {prediction.label} ({prediction.probability:.3f})")
    for column, channel in enumerate(strongest):
        kernel_axis = figure.add_subplot(grid[1, column])
        kernel_axis.imshow(kernels[channel], origin="lower", aspect="auto", cmap="coolwarm")
        kernel_axis.set_title(f"filter {channel}\n{kernels.shape[1]}×{kernels.shape[2]} kernel",
                              fontsize=8)
        kernel_axis.set_xticks([])
        kernel_axis.set_yticks([])
        response_axis = figure.add_subplot(grid[2, column])
        response_axis.imshow(responses[channel], origin="lower", aspect="auto", cmap="viridis")
        response_axis.set_title(f"response, peak {responses[channel].max():.2f}", fontsize=8)
        response_axis.set_xticks([])
        response_axis.set_yticks([])
    figure.suptitle("the first-layer filters that respond most (kernel: rows = frequency; "
                    "response after batch norm + ReLU)", fontsize=9)
    try:
        save_figure(figure, out)
    finally:
        plt.close(figure)
    return out, prediction

