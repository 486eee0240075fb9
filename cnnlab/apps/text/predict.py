"""Predicting sentences with a trained text model, and the n-grams its filters looked at.

The text counterpart of saliency: after max-over-time pooling each filter keeps one value,
the response of one window of h words. Those windows are all the last layer sees. For the
predicted class c, filter k adds pooled_k · W[c, k] to the logit of c; summed per window,
that says which n-grams pushed the decision most.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.apps.text.model import left_pad
from cnnlab.apps.text.tokenize import tokenize
from cnnlab.apps.text.vocabulary import UNK, UNK_ID, Vocabulary
from cnnlab.nn.module import eval_mode
from cnnlab.scoring import softmax
from cnnlab.tensor import Tensor, no_grad

__all__ = ["NGram", "Prediction", "predict_sentences"]


@dataclass
class NGram:
    """A window of words and how much the filters that kept it added to the predicted logit."""

    words: list[str]
    start: int  # index of the first word in the sentence's tokens
    contribution: float
    filters: int  # how many filters' maxima fell on this window


@dataclass
class Prediction:
    sentence: str
    tokens: list[str]
    label: str
    probability: float
    probabilities: np.ndarray
    ngrams: list[NGram]


def predict_sentences(model, vocabulary: Vocabulary, lowercase: bool, sentences,
                      top: int = 3) -> list[Prediction]:
    """Class, probability and the ``top`` n-grams of each sentence (module docstring)."""
    widths = [branch[0].kernel_size[0] for branch in model[2].branches]
    pad = left_pad(widths)
    trained_length = model.input_shape[0]
    predictions = []
    for sentence in sentences:
        tokens = tokenize(sentence, lowercase)
        length = max(trained_length, len(tokens) + 2 * pad)
        ids = vocabulary.encode_padded([tokens], length, pad)
        logits, windows = _forward(model, ids, widths)
        probabilities = softmax(logits)[0]
        label = int(np.argmax(probabilities))
        names = model.class_names or [str(i) for i in range(len(probabilities))]
        ngrams = _ngrams(model, windows, label, ids[0], tokens, vocabulary, pad)
        predictions.append(Prediction(sentence, tokens, str(names[label]),
                                      float(probabilities[label]), probabilities, ngrams[:top]))
    return predictions


def _forward(model, ids, widths):
    """Logits (1, K) and, per branch, (pooled values (F,), argmax positions (F,), width)."""
    embedding, as_channels, parallel, dropout, dense = model.layers
    windows = []
    with no_grad(), eval_mode(model):
        x = as_channels(embedding(Tensor(ids)))
        pooled = []
        for branch, width in zip(parallel.branches, widths):
            response = branch[0](x).data[0]  # (F, positions), after ReLU
            positions = np.argmax(response, axis=1)
            values = response[np.arange(len(positions)), positions]
            windows.append((values, positions, width))
            pooled.append(values)
        features = np.concatenate(pooled)[None].astype(np.float32)
        logits = dense(dropout(Tensor(features))).data
    return logits, windows


def _ngrams(model, windows, label, ids, tokens, vocabulary, pad) -> list[NGram]:
    """The windows the pooled filters kept, as word spans (padding left out; windows of two
    widths covering the same words merged), by their contribution to the logit of ``label``."""
    weights = model[-1].weight.data[label]
    spans: dict[tuple[int, int], list[float]] = {}
    offset = 0
    for values, positions, width in windows:
        for k, (value, position) in enumerate(zip(values, positions)):
            start = max(int(position), pad) - pad
            stop = min(int(position) + width - pad, len(tokens))
            if value > 0 and stop > start:  # zero after ReLU, or padding only: saw nothing
                spans.setdefault((start, stop), []).append(float(value * weights[offset + k]))
        offset += len(values)
    ngrams = [NGram([tokens[i] if ids[pad + i] != UNK_ID else f"{tokens[i]}({UNK})"
                     for i in range(start, stop)], start, sum(parts), len(parts))
              for (start, stop), parts in spans.items()]
    ngrams.sort(key=lambda g: -g.contribution)
    return ngrams
