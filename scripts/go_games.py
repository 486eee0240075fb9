"""Read the Go datasets, time the SGF reader, and count the game sets (docs/go-data.md).

    python scripts/go_games.py                      # ../shared/datasets, all three sets
    python scripts/go_games.py --root DIR --sets fox-pro fox-9d --held-out-fraction 0.05

Prints, per set: files, games kept and skipped (by reason), moves, truncations, the read's
wall and CPU time and games/s; then the de-duplication and the split (``load_sets``'s
rule, rebuilt from the games already read). Nothing is written.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from cnnlab.apps.go.games import DATASETS, build_sets
from cnnlab.apps.go.sgf_read import ReadReport, read_games

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="the datasets folder")
    parser.add_argument("--sets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--held-out-fraction", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def timed_read(path: Path):
    """(games, report, wall seconds, CPU seconds) of one read."""
    report = ReadReport()
    wall, cpu = time.perf_counter(), time.process_time()
    games = list(read_games(path, report))
    return games, report, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None) -> int:
    args = parse_arguments(argv)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    training, test = {}, {}
    total_games = total_moves = 0
    total_wall = total_cpu = 0.0
    for name in args.sets:
        folder, inside, is_test = DATASETS[name]
        path = args.root / folder / inside
        if not path.exists():
            print(f"{name}: {path} is missing; skipped", file=sys.stderr)
            continue
        games, report, wall, cpu = timed_read(path)
        (test if is_test else training)[name] = games
        print(f"\n## {name} ({path})")
        print("\n".join(report.lines()))
        print(f"read in {wall:.1f} s wall, {cpu:.1f} s CPU: {report.games / wall:,.0f} games/s, "
              f"{report.moves / wall:,.0f} moves/s (wall); {report.games / cpu:,.0f} games/s CPU")
        if not is_test:
            total_games += report.games
            total_moves += report.moves
            total_wall += wall
            total_cpu += cpu
    if total_wall:
        print(f"\ntraining sets together: {total_games:,} games, {total_moves:,} moves in "
              f"{total_wall:.1f} s wall ({total_games / total_wall:,.0f} games/s), "
              f"{total_cpu:.1f} s CPU ({total_games / total_cpu:,.0f} games/s)")
    start = time.perf_counter()
    sets = build_sets(training, test, args.held_out_fraction, args.seed)
    print(f"\n## sets (held-out fraction {args.held_out_fraction}, seed {args.seed}; "
          f"built in {time.perf_counter() - start:.1f} s)")
    print("\n".join(sets.lines()))
    print(f"training games: {len(sets.train):,} ({sum(len(g.moves) for g in sets.train):,} "
          f"positions)")
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
