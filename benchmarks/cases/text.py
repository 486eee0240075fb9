"""text_cnn_step: one SGD step of Kim's (2014) sentence CNN, non-static (the embedding trains).

A (50, 50) batch of word indices → embedding 20,000 × 300 → filters of widths 3, 4, 5 × 100
spanning the 300-d embedding + ReLU → max over time → concatenate (300) → dropout 0.5 →
dense → 2 classes → cross-entropy; SGD lr 0.1. cnnlab's embedding gradient is row-sparse;
PyTorch's ``nn.Embedding`` default (a dense gradient) is the reference.
"""

from __future__ import annotations

import numpy as np
import torch

import cnnlab.functional as F
from benchmarks.cases.data import he_normal
from benchmarks.harness import conv_flops, gflops, report, time_pair
from cnnlab import optim
from cnnlab.apps.text.model import clip_row_norms
from cnnlab.tensor import Tensor

TF = torch.nn.functional
LEARNING_RATE = 0.1
WIDTHS = (3, 4, 5)

#: The filters slide over (N, 300, L) as a Conv1D ("conv1d") or over (N, 1, L, 300) as a
#: Conv2D with (h, 300) kernels ("conv2d"); the same math. cnnlab's step, interleaved medians,
#: 2026-12-02: conv1d 118 ms, conv2d 286 ms (PyTorch 154 / 322 ms), 1 thread, with F.embedding.
LAYOUT = "conv1d"


def text_cnn_weights(vocabulary=20_000, dim=300, filters=100, classes=2, seed=0,
                     dtype=np.float32):
    """Embedding U(−0.25, 0.25) as Kim's, He-normal kernels (filters, dim, h), zero biases."""
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(-0.25, 0.25, (vocabulary, dim)).astype(dtype)]
    for h in WIDTHS:
        weights += [he_normal(rng, (filters, dim, h), dtype), np.zeros(filters, dtype)]
    weights += [(rng.standard_normal((classes, filters * len(WIDTHS))) * 0.01).astype(dtype),
                np.zeros(classes, dtype)]
    return weights


def text_cnn_inputs(batch=50, length=50, vocabulary=20_000, classes=2, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, vocabulary, (batch, length)).astype(np.int64),
            rng.integers(0, classes, batch).astype(np.int64))


def in_layout(weights, layout):
    """The kernels as the layout's convolution takes them: (f, dim, h) or (f, 1, h, dim)."""
    if layout == "conv1d":
        return [w.copy() for w in weights]
    return [w.transpose(0, 2, 1)[:, None].copy() if w.ndim == 3 else w.copy() for w in weights]


def step_conv_flops(batch, length, dim=300, filters=100):
    """Forward, ∂L/∂w and ∂L/∂x (the embedding trains) of the three convolutions."""
    return sum(3 * conv_flops(batch, dim, filters, 1, length - h + 1, 1, h) for h in WIDTHS)


def text_cnn_forward(ops, params, indices, dropout, layout):
    """Logits (N, classes). ``ops``: the framework's embedding, convolutions, relu, max over
    time ((N, C, L) → (N, C)), concat and linear."""
    embedding, *rest = params
    convs, (dense_w, dense_b) = rest[:-2], rest[-2:]
    words = ops.embedding(indices, embedding)  # (N, L, dim)
    n, length, dim = words.shape
    features = []
    for w, b in zip(convs[::2], convs[1::2]):
        if layout == "conv1d":
            y = ops.conv1d(ops.transpose(words, (0, 2, 1)), w, b)  # (N, dim, L) → (N, f, L−h+1)
        else:  # (N, 1, L, dim) → (N, f, L−h+1, 1)
            y = ops.conv2d(ops.reshape(words, (n, 1, length, dim)), w, b)
            y = ops.reshape(y, y.shape[:3])
        features.append(ops.max_over_time(ops.relu(y)))
    return ops.linear(dropout(ops.concat(features, 1)), dense_w, dense_b)


class _CnnlabOps:
    embedding = staticmethod(lambda indices, weight: F.embedding(indices, weight))
    transpose, reshape, conv1d, conv2d = F.transpose, F.reshape, F.conv1d, F.conv2d
    relu, linear, concat = F.relu, F.linear, F.concat
    # the gradient goes to one position per row, as PyTorch's max_pool1d sends it
    max_over_time = staticmethod(F.global_max_pool1d)


class _TorchOps:
    embedding = staticmethod(TF.embedding)
    transpose = staticmethod(lambda x, axes: x.permute(*axes))
    reshape = staticmethod(torch.reshape)
    conv1d, conv2d, relu, linear = TF.conv1d, TF.conv2d, TF.relu, TF.linear
    concat = staticmethod(lambda xs, axis: torch.cat(xs, axis))
    max_over_time = staticmethod(lambda x: x.amax(2))


class CnnlabStep:
    def __init__(self, weights, indices, labels, layout=LAYOUT, dropout=0.5, lr=LEARNING_RATE,
                 seed=2):
        self.params = [Tensor(w, requires_grad=True) for w in in_layout(weights, layout)]
        self.optimizer = optim.SGD(self.params, lr=lr)
        self.indices, self.labels, self.layout = indices, labels, layout
        rng = np.random.default_rng(seed)
        self.dropout = lambda h: F.dropout(h, dropout, training=True, rng=rng)

    def __call__(self):
        logits = text_cnn_forward(_CnnlabOps, self.params, self.indices, self.dropout, self.layout)
        loss = F.cross_entropy(logits, self.labels)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(loss.data)


class TorchStep:
    def __init__(self, weights, indices, labels, layout=LAYOUT, dropout=0.5, lr=LEARNING_RATE):
        self.params = [torch.tensor(w, requires_grad=True) for w in in_layout(weights, layout)]
        self.optimizer = torch.optim.SGD(self.params, lr=lr)
        self.indices, self.labels = torch.from_numpy(indices), torch.from_numpy(labels)
        self.layout = layout
        self.dropout = lambda h: TF.dropout(h, dropout, training=True)

    def __call__(self):
        logits = text_cnn_forward(_TorchOps, self.params, self.indices, self.dropout, self.layout)
        loss = TF.cross_entropy(logits, self.labels)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


def bench_text(settings):
    weights = text_cnn_weights()
    indices, labels = text_cnn_inputs()
    result = time_pair(CnnlabStep(weights, indices, labels), TorchStep(weights, indices, labels),
                       settings)
    flops = step_conv_flops(*indices.shape)
    report("text_cnn_step", result, cnnlab_conv_gflops=gflops(flops, result.ours_ms),
           torch_conv_gflops=gflops(flops, result.theirs_ms), layout=LAYOUT)


#: mr_epoch: Kim's training of one MR fold, the same in both frameworks
MR_BATCH_SIZE, MR_LENGTH, MR_MAX_NORM = 50, 64, 3.0


def mr_training_ids(seed=0):
    """(ids (N, 64) int64, labels (N,), vocabulary size, source) of MR's fold-0 training
    sentences in a seeded order, encoded as ``cnnlab text train`` does (4 padding ids, the words, padding);
    seeded random ids of the same shape where the data set is missing."""
    from cnnlab.apps.text.datasets import (
        TextDataNotFoundError,
        fold_assignment,
        load_corpus,
    )
    from cnnlab.apps.text.vocabulary import Vocabulary

    try:
        corpus = load_corpus("mr")
    except TextDataNotFoundError:
        rng = np.random.default_rng(seed)
        return (rng.integers(0, 18_765, (9_596, MR_LENGTH)), rng.integers(0, 2, 9_596),
                18_765, "random")
    train = np.flatnonzero(fold_assignment(len(corpus), 10) != 0)
    train = train[np.random.default_rng(seed).permutation(len(train))]  # classes mixed, as fit
    sentences = [corpus.sentences[i] for i in train]
    vocabulary = Vocabulary.build(sentences)
    return (vocabulary.encode_padded(sentences, MR_LENGTH, 4), corpus.labels[train],
            len(vocabulary), "mr")


class CnnlabEpoch(CnnlabStep):
    """An epoch of Kim's training: Adadelta (ρ 0.95, ε 1e-6, lr 1), max-norm 3 after each step."""

    def __init__(self, weights, indices, labels):
        super().__init__(weights, indices[:MR_BATCH_SIZE], labels[:MR_BATCH_SIZE])
        self.optimizer = optim.Adadelta(self.params, lr=1.0, rho=0.95, eps=1e-6)
        self.all_indices, self.all_labels = indices, labels

    def __call__(self, batches=None):
        loss = 0.0
        starts = range(0, len(self.all_indices), MR_BATCH_SIZE)
        for start in list(starts)[:batches]:
            self.indices = self.all_indices[start:start + MR_BATCH_SIZE]
            self.labels = self.all_labels[start:start + MR_BATCH_SIZE]
            loss = super().__call__()
            clip_row_norms(self.params[-2].data, MR_MAX_NORM)
        return loss


class TorchEpoch(TorchStep):
    def __init__(self, weights, indices, labels):
        super().__init__(weights, indices[:MR_BATCH_SIZE], labels[:MR_BATCH_SIZE])
        self.optimizer = torch.optim.Adadelta(self.params, lr=1.0, rho=0.95, eps=1e-6)
        self.all_indices, self.all_labels = torch.from_numpy(indices), torch.from_numpy(labels)

    def __call__(self, batches=None):
        loss = 0.0
        starts = range(0, len(self.all_indices), MR_BATCH_SIZE)
        for start in list(starts)[:batches]:
            self.indices = self.all_indices[start:start + MR_BATCH_SIZE]
            self.labels = self.all_labels[start:start + MR_BATCH_SIZE]
            loss = super().__call__()
            with torch.no_grad():
                self.params[-2].copy_(torch.renorm(self.params[-2], 2, 0, MR_MAX_NORM))
        return loss


def bench_mr_epoch(settings):
    """One training epoch of MR's fold 0 (9,596 sentences, batches of 50), Kim's CNN-rand."""
    indices, labels, vocabulary, source = mr_training_ids()
    weights = text_cnn_weights(vocabulary=vocabulary)
    ours, theirs = CnnlabEpoch(weights, indices, labels), TorchEpoch(weights, indices, labels)
    losses = {}

    def run_ours():
        losses["cnnlab"] = ours()

    def run_theirs():
        losses["torch"] = theirs()

    # an epoch lasts tens of seconds: three batches warm each side up, one epoch per block
    result = time_pair(run_ours, run_theirs, settings, warmup=1, repeat=settings.long_repeat,
                       warmup_ours=lambda: ours(3), warmup_theirs=lambda: theirs(3))
    report("mr_epoch", result, sentences=len(indices), data=source,
           cnnlab_sentences_s=f"{len(indices) / result.ours_ms * 1e3:.0f}",
           torch_sentences_s=f"{len(indices) / result.theirs_ms * 1e3:.0f}",
           final_loss_cnnlab=f"{losses['cnnlab']:.4f}", final_loss_torch=f"{losses['torch']:.4f}")
