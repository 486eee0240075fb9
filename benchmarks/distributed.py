"""Data-parallel scaling on this machine, and what it means for N machines on a network.

    python benchmarks/distributed.py                  # fashion and go nets at 1, 2, 4 ranks
    python benchmarks/distributed.py --ranks 1 2 --steps 10 --nets fashion

For each net, the same training step (``cnnlab.training.fit``: forward, backward, gradient
sum over the ranks, Adam step) runs with ``--batch`` images per rank, at 1 rank (one plain
process, no MPI: the reference of the same run) and under ``mpirun -np N``, each rank with one
BLAS thread. It prints images/s over all ranks, the scaling efficiency (images/s ÷ N × the
1-rank images/s), and per step: the compute time, the time in the gradient reduction
(``MPIGroup.last_reduce_seconds``, packing included) and the bytes reduced.

Then a model for N machines on a 10 Gb/s network (no overlap of communication with compute):
a ring allreduce of S bytes costs 2(N − 1)/N · S / bandwidth + 2(N − 1) · latency, so with a
fixed batch per rank (as Horovod scales) the efficiency is T / (T + that), T the measured
1-rank step. The machine is shared: compare ratios within one run, and repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BANDWIDTH = 10e9 / 8  # 10 Gb/s in bytes/s
LATENCY = 50e-6  # s per message on a commodity 10 GbE network (TCP); RDMA is ~10× lower


def build(net: str, k: int):
    """The benchmarked model and its (C, H, W) input: the zoo's fashion net, or AlphaGo's
    13-layer policy net (5×5 then 11 3×3 convolutions of k filters, a 1×1 convolution and a
    bias per point; no pooling) over 48 planes of a 19×19 board."""
    from cnnlab import models, nn

    if net == "fashion":
        return models.get("fashion", seed=0), (1, 28, 28), 10
    layers = [nn.Conv2D(k, 5, padding=2), nn.ReLU()]
    for _ in range(11):
        layers += [nn.Conv2D(k, 3, padding=1), nn.ReLU()]
    layers += [nn.Conv2D(1, 1, use_bias=False), nn.PositionalBias(), nn.Flatten()]
    model = nn.Sequential(*layers, seed=0)
    return model, (48, 19, 19), 361


def worker(args) -> None:
    """One rank (or the 1-rank reference): train ``steps`` timed steps, print a JSON line."""
    from cnnlab import distributed
    from cnnlab.callbacks import Callback
    from cnnlab.threads import BlasThreads
    from cnnlab.training import fit

    group = distributed.world()
    ranks = 1 if group is None else group.size
    if group is not None:
        group.overlap = not args.no_overlap
    model, shape, classes = build(args.net, args.k)
    model.build(shape)
    rng = np.random.default_rng(0)
    count = args.batch * ranks * (args.steps + args.warmup)
    x = rng.standard_normal((count, *shape)).astype(np.float32)
    y = rng.integers(0, classes, count)

    class Clock(Callback):
        def __init__(self):
            self.marks, self.reduce = [], []

        def on_batch_end(self, state, step, logs):
            self.marks.append(time.perf_counter())
            if group is not None:
                self.reduce.append(group.last_reduce_seconds)

    clock = Clock()
    with BlasThreads(1):
        fit(model, (x, y), epochs=1, batch_size=args.batch, lr=1e-3, verbose=0,
            callbacks=[clock], parallel=group)
    timed = np.diff(clock.marks[args.warmup - 1:])
    step = float(np.median(timed))
    grads = sum(p.data.size * p.data.itemsize for p in model.parameters())
    if group is None or group.rank == 0:
        print(json.dumps({
            "net": args.net, "ranks": ranks, "overlap": not args.no_overlap, "step_s": step,
            "images_per_s": args.batch * ranks / step,
            "reduce_s": float(np.median(clock.reduce[args.warmup:])) if clock.reduce else 0.0,
            "bytes": grads, "parameters": model.num_parameters()}), flush=True)


def launch(net: str, ranks: int, args, overlap: bool = True) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", PYTHONPATH=str(ROOT))
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    own = [sys.executable, __file__, "--worker", "--net", net, "--k", str(args.k),
           "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if not overlap:
        own.append("--no-overlap")
    if ranks > 1:
        if shutil.which("mpirun") is None:
            sys.exit("mpirun not found: apt-get install openmpi-bin libopenmpi-dev")
        own = ["mpirun", "-np", str(ranks), *own]
    done = subprocess.run(own, check=False, capture_output=True, text=True, env=env, timeout=3600,
                          stdin=subprocess.DEVNULL)
    # under mpirun's pseudo-terminal a line may carry a terminal escape before the JSON
    lines = [line[line.index("{"):] for line in done.stdout.splitlines() if "{" in line]
    if done.returncode or not lines:
        sys.exit(f"{' '.join(own)} failed:\n{done.stdout}\n{done.stderr}")
    return json.JSONDecoder().raw_decode(lines[-1])[0]  # terminal escapes may follow it too


def ring_seconds(size_bytes: float, machines: int) -> float:
    """A ring allreduce: 2(N − 1) messages of S/N bytes each way round."""
    if machines == 1:
        return 0.0
    return (2 * (machines - 1) / machines * size_bytes / BANDWIDTH
            + 2 * (machines - 1) * LATENCY)


def report(results: list[dict]) -> None:
    print(f"\n{'net':8} {'ranks':>5} {'overlap':>7} {'img/s':>8} {'efficiency':>10} {'step ms':>8} "
          f"{'reduce ms':>9} {'reduce %':>8} {'MB/step':>8}")
    for net in dict.fromkeys(r["net"] for r in results):
        rows = [r for r in results if r["net"] == net]
        base = next(r for r in rows if r["ranks"] == 1)
        for r in rows:
            efficiency = r["images_per_s"] / (r["ranks"] * base["images_per_s"])
            print(f"{net:8} {r['ranks']:5d} {'yes' if r['overlap'] else 'no':>7} "
                  f"{r['images_per_s']:8.1f} {efficiency:10.2f} "
                  f"{1e3 * r['step_s']:8.1f} {1e3 * r['reduce_s']:9.2f} "
                  f"{100 * r['reduce_s'] / r['step_s']:8.1f} {r['bytes'] / 1e6:8.2f}")
    print(f"\nN machines on {BANDWIDTH * 8 / 1e9:g} Gb/s, {LATENCY * 1e6:g} µs latency, fixed "
          "batch per rank, no overlap: efficiency T / (T + ring allreduce)")
    machines = (2, 8, 64, 512)
    print(f"{'net':8} {'T ms':>7} {'MB':>7} " + " ".join(f"{'N=' + str(n):>7}" for n in machines)
          + "  N where efficiency < 50%")
    for net in dict.fromkeys(r["net"] for r in results):
        base = next(r for r in results if r["net"] == net and r["ranks"] == 1)
        step, size = base["step_s"], base["bytes"]
        cells = " ".join(f"{step / (step + ring_seconds(size, n)):7.2f}" for n in machines)
        half = next((n for n in range(2, 1 << 20) if ring_seconds(size, n) > step), None)
        print(f"{net:8} {1e3 * step:7.1f} {size / 1e6:7.2f} {cells}  {half or 'never'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", nargs="+", default=["fashion", "go"], choices=["fashion", "go"])
    parser.add_argument("--ranks", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--batch", type=int, default=32, help="images per rank (default 32)")
    parser.add_argument("--k", type=int, default=64, help="filters of the go net (default 64)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps (default 8)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--compare-overlap", action="store_true",
                        help="also run each multi-rank case with the gradient sums after the "
                        "backward instead of overlapped with it")
    parser.add_argument("--no-overlap", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--net", default="fashion", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if 1 not in args.ranks:
        args.ranks = [1, *args.ranks]
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}; batch {args.batch} per rank, 1 BLAS thread per rank")
    results = []
    for net in args.nets:
        for ranks in args.ranks:
            results.append(launch(net, ranks, args))
            if args.compare_overlap and ranks > 1:
                results.append(launch(net, ranks, args, overlap=False))
    report(results)


if __name__ == "__main__":
    main()
