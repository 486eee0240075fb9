"""The spatial transformer study over several seeds: mean ± standard deviation per cell.

``scripts/stn_study.py --seed S --out DIR_S`` writes one folder of cells per seed; this reads
them all and prints (and with ``--out``, writes) one table: for each dataset, distortion and
arm, the test error's mean ± sample standard deviation over the seeds, the number of seeds and
the per-seed errors. A cell is matched by (data, distortion, arm label), so every seed's ST-CNN
must have been run with the same configuration; cells scored on validation data are left out.
``--chosen R=ARM,RTS=ARM,...`` keeps, besides plain and augment, only the ST-CNN configuration
chosen for each distortion, in one row ("st-cnn (chosen)").

``--selection`` reads selection folders instead (``stn_study.py --validation F --seed S``): the
selection rule's score of each cell (its mean validation error over the last 5 epochs),
averaged over the seeds, and per dataset and distortion the ST-CNN configuration with the
lowest average: the rule of one seed, made steadier by several.

Usage:
    python scripts/stn_seeds.py runs/stn_seed0 runs/stn_seed1 ... [--chosen R=st-cnn-rst,...]
        [--out seeds.md]
    python scripts/stn_seeds.py --selection runs/stn_select_seed0 runs/stn_select_seed1 ...
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from cnnlab.atomic import write_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stn_study_report import DATASETS, KINDS, arm_labels, selection_mean


def collect(folders, scored_on: str = "test") -> dict:
    """{(data, kind, arm): {seed: score}} from the cells of every folder: the test error, or
    for ``scored_on="validation"`` the selection rule's score."""
    errors: dict = defaultdict(dict)
    for folder in folders:
        for path in sorted((Path(folder) / "cells").glob("*.json")):
            try:
                cell = json.loads(path.read_text())
                if cell.get("scored_on", "test") != scored_on:
                    continue
                key = (cell["data"], cell["kind"], cell["arm"])
                seed = int(cell["seed"])
                error = (float(cell["test_error"]) if scored_on == "test"
                         else selection_mean(cell))
            except (OSError, ValueError, KeyError, TypeError) as problem:
                print(f"skipping {path}: {problem}")
                continue
            if seed in errors[key] and errors[key][seed] != error:
                raise SystemExit(f"{path}: seed {seed} of {key} appears twice with different "
                                 "errors; give each seed its own folder once")
            errors[key][seed] = error
    return dict(errors)


CHOSEN = "st-cnn (chosen)"


def keep_chosen(errors: dict, chosen: dict) -> dict:
    """plain, augment and, per distortion, the chosen ST-CNN arm (renamed ``CHOSEN``)."""
    kept = {}
    for (data, kind, arm), by_seed in errors.items():
        if arm in ("plain", "augment"):
            kept[(data, kind, arm)] = by_seed
        elif chosen.get(kind) == arm:
            kept[(data, kind, CHOSEN)] = by_seed
    return kept


def parse_chosen(text: str) -> dict:
    chosen = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, sep, arm = item.partition("=")
        if not sep or kind not in KINDS or not arm.startswith("st-cnn"):
            raise argparse.ArgumentTypeError(f"--chosen: expected KIND=st-cnn..., with KIND one "
                                             f"of {', '.join(KINDS)}; received {item!r}")
        chosen[kind] = arm
    return chosen


def table(errors: dict) -> str:
    """Markdown: mean ± std (n seeds) of the test error in %, then the per-seed values."""
    lines = ["| data | model | " + " | ".join(KINDS) + " |",
             "|---|---|" + "---|" * len(KINDS)]
    for data in DATASETS:
        for arm in arm_labels(errors, data):
            row = []
            for kind in KINDS:
                by_seed = errors.get((data, kind, arm))
                if not by_seed:
                    row.append("–")
                    continue
                values = 100 * np.array([by_seed[s] for s in sorted(by_seed)])
                spread = f" ± {values.std(ddof=1):.2f}" if len(values) > 1 else ""
                row.append(f"{values.mean():.2f}{spread} ({len(values)})")
            lines.append(f"| {data} | {arm} | " + " | ".join(row) + " |")
    lines += ["", "Per seed (test error %, seeds in order):", ""]
    for key in sorted(errors):
        by_seed = errors[key]
        values = ", ".join(f"{s}: {100 * by_seed[s]:.2f}" for s in sorted(by_seed))
        lines.append(f"- {' '.join(key)}: {values}")
    return "\n".join(lines) + "\n"


def choices(scores: dict) -> str:
    """Per dataset and distortion, the ST-CNN arm with the lowest score averaged over seeds
    (only arms scored on every seed of the best-covered arm compete)."""
    lines = []
    for data, kind in sorted({key[:2] for key in scores}):
        arms = {arm: by_seed for (d, k, arm), by_seed in scores.items()
                if (d, k) == (data, kind) and arm.startswith("st-cnn")}
        if not arms:
            continue
        most = max(len(by_seed) for by_seed in arms.values())
        means = {arm: float(np.mean(list(by_seed.values()))) for arm, by_seed in arms.items()
                 if len(by_seed) == most}
        best = min(means, key=means.get)
        lines.append(f"Chosen for {data} {kind} over {most} seed(s): **{best}** "
                     f"({100 * means[best]:.2f} %)")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="study folders (each with cells/)")
    parser.add_argument("--chosen", type=parse_chosen, default=None,
                        help="KIND=ARM,...: keep only this ST-CNN arm per distortion")
    parser.add_argument("--selection", action="store_true",
                        help="read validation cells: average the selection rule over the seeds "
                        "and name the configuration it chooses")
    parser.add_argument("--out", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    errors = collect(args.folders, "validation" if args.selection else "test")
    if args.chosen:
        errors = keep_chosen(errors, args.chosen)
    if not errors:
        print("no cells found")
        return 1
    text = table(errors)
    if args.selection:
        text = ("Selection score (mean validation error % over the last 5 epochs) per seed\n\n"
                + text + "\n" + choices(errors))
    if args.out:
        write_text(Path(args.out), text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
