"""cnnlab against PyTorch (CPU) on the same inputs and initial weights, in the same process.

Usage:
    python benchmarks/run.py                       # every part (about 10 minutes, quiet machine)
    python benchmarks/run.py conv pool go          # some parts
    python benchmarks/run.py --threads 1 --repeat 15

Parts: conv, pool, dense, vgg, lenet, go, text, mr, speech, fashion, memory, sampling. Each case prints
    bench case=<name> cnnlab_ms=<median> torch_ms=<median> ratio=<cnnlab/torch> cnnlab_iqr=…
    torch_iqr=… load=<foreign cores busy, median> discarded=<blocks redone under load> …
How it measures: benchmarks/harness.py and benchmarks/README.md.

It runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (re-executing itself without them
when they are set), so that NumPy's OpenBLAS picks the kernel a user's machine would.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

# Run as a script, the repository root is not on the path: `benchmarks` is imported as a package
# from it. Appended, so an installed cnnlab still wins over the checkout, as before.
sys.path.append(str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import BLAS_OVERRIDES, Settings, cleaned_environment

REMOVED_FLAG = "--blas-env-removed"


def reexec_without_blas_overrides() -> None:
    """OpenBLAS reads the variables when NumPy loads it: start afresh without them, before that."""
    environment = cleaned_environment(os.environ)
    if environment is None:
        return
    removed = ",".join(f"{name}={os.environ[name]}" for name in BLAS_OVERRIDES
                       if name in os.environ)
    argv = [sys.executable, *sys.orig_argv[1:], REMOVED_FLAG, removed]
    os.execve(sys.executable, argv, environment)


# name: (module under benchmarks.cases, function); each function takes the Settings.
PARTS = {
    "conv": ("kernels", "bench_conv"),
    "pool": ("kernels", "bench_pool"),
    "dense": ("kernels", "bench_dense"),
    "vgg": ("kernels", "bench_vgg"),
    "lenet": ("lenet", "bench_lenet"),
    "go": ("go", "bench_go"),
    "text": ("text", "bench_text"),
    "mr": ("text", "bench_mr_epoch"),
    "fashion": ("fashion", "bench_fashion"),
    "memory": ("memory", "bench_memory"),
    "sampling": ("sampling", "bench_sampling"),
    "speech": ("speech", "bench_speech"),
}


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", help=f"parts to run (default: all of {list(PARTS)})")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for PyTorch and for NumPy's BLAS, both (default 2)")
    parser.add_argument("--repeat", type=int, default=Settings.repeat,
                        help="timed blocks per side for the short cases (default %(default)s)")
    parser.add_argument("--repeat-long", type=int, default=Settings.long_repeat,
                        help="timed blocks per side for lenet, go and fashion "
                        "(default %(default)s)")
    parser.add_argument("--min-block", type=float, default=Settings.min_block_s,
                        help="seconds a timed block lasts at least (default %(default)s)")
    parser.add_argument("--max-load", type=float, default=Settings.max_foreign,
                        help="foreign cores busy above which a block is redone "
                        "(default %(default)s)")
    parser.add_argument("--memory-child", choices=("cnnlab", "torch"), help=argparse.SUPPRESS)
    parser.add_argument(REMOVED_FLAG, default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [part for part in args.parts if part not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {list(PARTS)}")
    return args


def blas_description() -> str:
    from threadpoolctl import threadpool_info

    libraries = [
        f"{Path(info['filepath']).parent.name}/{info['internal_api']} {info.get('version')} "
        f"architecture={info.get('architecture')} threads={info['num_threads']}"
        for info in threadpool_info() if info["user_api"] == "blas"
    ]
    return "; ".join(libraries) or "no BLAS found by threadpoolctl"


def print_header(args) -> None:
    import numpy as np
    import torch

    import cnnlab
    from benchmarks.harness import LoadProbe, sgemm_peak

    removed = args.blas_env_removed or "none were set"
    print(f"# cnnlab {cnnlab.__version__} vs torch {torch.__version__}, numpy {np.__version__}, "
          f"python {sys.version.split()[0]}, threads {args.threads} (torch and NumPy's BLAS), "
          f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}", flush=True)
    print(f"# blas: {blas_description()}; unset for this run: {removed}", flush=True)
    probe = LoadProbe()
    start = probe.snapshot()
    ours_best, ours_median = sgemm_peak()
    theirs_best, theirs_median = sgemm_peak(convert=torch.from_numpy, multiply=torch.mm)
    load = LoadProbe.foreign(start, probe.snapshot())
    print(f"# sgemm 2048², {args.threads} threads: sgemm_gflops={ours_best:.1f} "
          f"(numpy, best; median {ours_median:.1f}) torch_sgemm_gflops={theirs_best:.1f} "
          f"(median {theirs_median:.1f}) load={'n/a' if load is None else f'{load:.2f}'}",
          flush=True)
    if load is not None and load > args.max_load:
        print(f"# warning: other processes kept {load:.2f} cores busy during the sgemm: "
              f"this machine is not quiet, expect blocks redone and unreliable ratios", flush=True)
    print(f"# timing: blocks of >= {args.min_block} s, {args.repeat} a side "
          f"({args.repeat_long} for steps and epochs), "
          f"cnnlab and torch alternating; a block with > {args.max_load} foreign cores busy is "
          f"redone (at most {Settings.max_discards} per case, nor more than its repeat); "
          f"ms are medians, iqr Q3-Q1",
          flush=True)


def main(argv=None) -> int:
    reexec_without_blas_overrides()
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    # Imported after the re-exec: NumPy loads OpenBLAS, which reads the environment once.
    import importlib

    import numpy  # noqa: F401 (loads OpenBLAS now, so that threadpool_limits finds and limits it)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(args.threads, user_api="blas"):
        if args.memory_child:  # before cnnlab or torch is loaded: the child loads only its own
            from benchmarks.cases.memory import memory_child

            memory_child(args.memory_child, args.threads)
            return 0
        import cnnlab

        # What fit and `cnnlab train` switch on: freed buffers stay in the process between batches.
        cnnlab.keep_freed_memory(True)
        import torch

        torch.set_num_threads(args.threads)
        torch.manual_seed(0)  # the dropout masks of the torch side
        settings = Settings(repeat=args.repeat, long_repeat=args.repeat_long,
                            min_block_s=args.min_block,
                            max_foreign=args.max_load)
        print_header(args)
        failed = []
        for part in args.parts or PARTS:
            module_name, function_name = PARTS[part]
            # Each part's module loads its frameworks when chosen (a memory child loads one).
            module = importlib.import_module(f"benchmarks.cases.{module_name}")
            try:
                if part == "memory":
                    module.bench_memory(args.threads)
                else:
                    getattr(module, function_name)(settings)
            # one broken case must not cost the rest of the run
            except Exception as error:  # noqa: BLE001
                traceback.print_exc()
                print(f"bench part={part} failed: {type(error).__name__}: {error}", flush=True)
                failed.append(part)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
