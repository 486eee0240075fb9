"""A toy corpus the text tests train on in a second or two."""

from __future__ import annotations

import numpy as np

from cnnlab.apps.text.datasets import Corpus

#: settings that train a toy corpus quickly
TINY = {"epochs": 6, "embedding_dim": 12, "filters": 6, "optimizer": "adam", "lr": 0.02,
        "batch_size": 20}


def toy_corpus(count=90, seed=0) -> Corpus:
    """Two classes told apart by one word among noise words."""
    rng = np.random.default_rng(seed)
    noise = [f"w{i}" for i in range(30)]
    sentences, labels = [], []
    for i in range(count):
        label = i % 2
        words = list(rng.choice(noise, size=rng.integers(3, 9)))
        words.insert(int(rng.integers(0, len(words))), ("awful", "superb")[label])
        sentences.append(words)
        labels.append(label)
    return Corpus("toy", sentences, np.array(labels), ["neg", "pos"], None)
