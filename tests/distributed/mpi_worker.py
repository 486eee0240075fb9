"""One rank of a test job: ``mpirun -np N python tests/distributed/mpi_worker.py SCENARIO OUT``.

Scenarios (each trains on the same seeded float64 data; rank 0 writes its weights, buffers
and losses to OUT, an .npz):

- ``plain``: a conv net, per-rank batch ``BATCH``; ``dropout``: the same with dropout;
- ``syncbn``: with batch norm synchronised across the ranks (``synchronize_batch_norm``);
- ``fail``: rank 1 raises at its third step (the job must end, with its message).

``single_process(scenario, batch_size)`` trains the same model in this process, for the
equivalence the test checks.
"""

from __future__ import annotations

import sys

import numpy as np

from cnnlab import distributed, nn
from cnnlab.callbacks import Callback
from cnnlab.training import fit

#: per-rank batch; 69 samples leave a last batch of 5 (3 + 2) for 2 ranks and 9 for 3
BATCH = 4
SAMPLES = 69
EPOCHS = 2


def data():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((SAMPLES, 2, 8, 8))
    y = rng.integers(0, 3, SAMPLES)
    return x, y


def model(scenario: str):
    layers = [nn.Conv2D(4, 3, padding=1)]
    if scenario == "syncbn":
        layers.append(nn.BatchNorm())
    layers += [nn.ReLU(), nn.MaxPool2D(2), nn.Flatten()]
    if scenario == "dropout":
        layers.append(nn.Dropout(0.5))
    layers.append(nn.Dense(3))
    net = nn.Sequential(*layers, seed=3)
    net.build((2, 8, 8))
    return net.astype(np.float64)


class FailOnRankOne(Callback):
    def __init__(self, rank):
        self.rank = rank

    def on_batch_end(self, state, step, logs):
        if self.rank == 1 and step == 2:
            raise RuntimeError("injected failure on rank 1 at step 3")


def train(scenario: str, batch_size: int, group=None):
    net = model(scenario)
    if scenario == "syncbn":
        distributed.synchronize_batch_norm(net, group)
    callbacks = [FailOnRankOne(group.rank)] if scenario == "fail" else []
    history = fit(net, data(), epochs=EPOCHS, batch_size=batch_size, optimizer="adam", lr=0.01,
                  seed=5, verbose=0, callbacks=callbacks, parallel=group)
    return net, history


def result(net, history) -> dict:
    out = {f"state/{k}": v for k, v in net.state_dict().items()}
    out["loss"] = np.array(history["loss"])
    out["accuracy"] = np.array(history["accuracy"])
    return out


def single_process(scenario: str, batch_size: int) -> dict:
    return result(*train(scenario, batch_size))


def main(scenario: str, out: str) -> None:
    group = distributed.world()
    assert group is not None, "run under mpirun with more than one rank"
    if scenario == "plain":  # one bucket per tensor or two: the sums overlap the backward
        group.bucket_bytes = 256
    net, history = distributed.run_or_abort(train, scenario, BATCH, group)
    if group.rank == 0:
        np.savez(out, ranks=group.size, buckets=group.last_buckets,
                 overlapped=group.last_overlapped, **result(net, history))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
