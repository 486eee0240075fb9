"""The Go policy's comparisons on one budget: pooling, the raw board, and more games.

Every arm is ``cnnlab go train`` with k = 32, 6 layers, 2 epochs, batch 64, Adam lr 1e-3,
seed 0, on a seeded sample of the Fox training games; it differs from the base arm
(600 games, the 48 planes, no pooling) in one setting only:

- ``pool-600``: one 2×2 max-pooling layer in the middle, upsampled back before the output
  (the lecture's question: what does subsampling cost a board?);
- ``raw-600``: the raw board's 20 planes instead of the 48 (the paper's comparison);
- ``base-150`` … ``base-2400``: 150 to 2,400 games (how accuracy grows with data; each
  run's two epochs say how it grows with time).

    python scripts/go_study.py --runs runs/go-study            # train what is missing, report
    python scripts/go_study.py --runs runs/go-study --only pool-600,raw-600
    python scripts/go_study.py --runs runs/go-study --report-only --out docs/go

A run that stopped part-way is continued from its checkpoint (``--resume``), so the study
can run in pieces. The report (``go_study.md``, ``go_study.json``, ``go_study.png``) is
written from the run folders present: held-out top-1/top-5 on all 204 held-out Fox pro
games, the per-epoch accuracy on the fixed sample of 2,000 of their positions, and top-1/top-5
on the 596 title games (``cnnlab go evaluate``'s measure; kept in each run folder as
``title-results.json``, so it is computed once per run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from cnnlab.atomic import atomic_writer, write_text

#: arm name → the settings it changes from the base
ARMS = {
    "base-600": {"games": 600},
    "pool-600": {"games": 600, "pooling": True},
    "raw-600": {"games": 600, "planes": "raw"},
    "base-150": {"games": 150},
    "base-300": {"games": 300},
    "base-1200": {"games": 1200},
    "base-2400": {"games": 2400},
}
COMMON = ["--k", "32", "--layers", "6", "--epochs", "2", "--batch-size", "64", "--lr",
          "0.001", "--seed", "0"]


def arm_arguments(name: str) -> list[str]:
    """The ``cnnlab go train`` options of an arm beyond ``COMMON``."""
    change = ARMS[name]
    extra = ["--games", str(change["games"])]
    if change.get("pooling"):
        extra.append("--pooling")
    if "planes" in change:
        extra += ["--planes", change["planes"]]
    return extra


def train_arm(runs: Path, name: str, data_root: str) -> None:
    """Train one arm into ``runs/name`` unless it is finished; continue it if it stopped."""
    folder = runs / name
    if (folder / "go-results.json").is_file():
        print(f"{name}: finished, kept", flush=True)
        return
    base = [sys.executable, "-m", "cnnlab", "go", "train", "--verbose", "2"]
    if (folder / "checkpoint.npz").is_file():
        command = base + ["--resume", str(folder), "--epochs", "2", "--data-root", data_root]
    else:
        command = base + COMMON + arm_arguments(name) + [
            "--out", str(runs), "--name", name, "--data-root", data_root]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True)


TITLE_RESULTS = "title-results.json"


def measure_title_games(runs: Path, title_games: Path) -> None:
    """top-1/top-5 on every title game, for each finished arm that lacks them."""
    from cnnlab.apps.go.evaluate import evaluate_files, load_policy

    for name in ARMS:
        folder = runs / name
        if not (folder / "go-results.json").is_file() or (folder / TITLE_RESULTS).is_file():
            continue
        print(f"{name}: measuring the title games in {title_games} ...", flush=True)
        result, _, positions = evaluate_files(load_policy(folder), [title_games])
        write_text(folder / TITLE_RESULTS, json.dumps(
            {"games": positions.games, **result}, indent=1) + "\n")


def collect(runs: Path) -> dict:
    """{arm: the numbers of its finished run} for every arm with a go-results.json."""
    found = {}
    for name in ARMS:
        path = runs / name / "go-results.json"
        if not path.is_file():
            continue
        result = json.loads(path.read_text())
        history = result["history"]
        held = result["held_out_fox_pro"]
        found[name] = {
            "games": result["settings"]["games"],
            "planes": result["settings"]["planes"],
            "pooling": result["settings"]["pooling"],
            "training_positions": result["training_positions"],
            "positions_seen": result["positions_seen"],
            "fit_seconds": result["fit_seconds_this_session"],
            "val_accuracy": history["val_accuracy"],
            "train_accuracy": history["accuracy"],
            "top1": held["top1"] / held["positions"],
            "top5": held["top5"] / held["positions"],
            "held_out_positions": held["positions"],
        }
        title = runs / name / TITLE_RESULTS
        if title.is_file():
            title = json.loads(title.read_text())
            found[name].update(title_top1=title["top1"] / title["positions"],
                               title_top5=title["top5"] / title["positions"],
                               title_positions=title["positions"])
    return found


def table(found: dict) -> str:
    rows = [("| arm | games | planes | pooling | positions seen | held-out top-1 (2,000 sample)"
             " after epoch 1 / 2 | training top-1, epoch 2 | **held-out top-1** | held-out "
             "top-5 | title games top-1 / top-5 | fit s |"),
            "|---|---:|---|---|---:|---|---:|---:|---:|---|---:|"]
    for name, arm in found.items():
        val = " / ".join(f"{100 * v:.1f} %" for v in arm["val_accuracy"])
        title = (f"{100 * arm['title_top1']:.1f} % / {100 * arm['title_top5']:.1f} %"
                 if "title_top1" in arm else "—")
        rows.append(
            f"| {name} | {arm['games']:,} | {arm['planes']} | {'yes' if arm['pooling'] else 'no'}"
            f" | {arm['positions_seen']:,} | {val} | {100 * arm['train_accuracy'][-1]:.1f} % |"
            f" **{100 * arm['top1']:.1f} %** | {100 * arm['top5']:.1f} % | {title} |"
            f" {arm['fit_seconds']:,.0f} |")
    return "\n".join(rows)


def figure(found: dict, path: Path) -> None:
    """Left: held-out top-1 against positions seen, one line per training-set size (time);
    right: the final held-out top-1 against the number of training games (data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    sizes = sorted((arm["games"], name) for name, arm in found.items()
                   if name.startswith("base-"))
    for games, name in sizes:
        left.plot(*_curve(found[name]), "o-", label=f"{games:,} games")
    for name, marker in (("pool-600", "s"), ("raw-600", "^")):
        if name in found:
            left.plot(*_curve(found[name]), marker + "--",
                      label=f"{name} ({'pooling' if found[name]['pooling'] else 'raw board'})")
    _decorate(left, "training positions seen (2 epochs each)",
              "held-out top-1 % (2,000 Fox pro positions)",
              "accuracy with time, per training-set size")
    if sizes:
        right.plot([g for g, _ in sizes], [100 * found[n]["top1"] for _, n in sizes], "o-",
                   label="top-1")
        right.plot([g for g, _ in sizes], [100 * found[n]["top5"] for _, n in sizes], "o-",
                   label="top-5")
    for name, marker in (("pool-600", "s"), ("raw-600", "^")):
        if name in found:
            arm = found[name]
            right.plot([arm["games"]] * 2, [100 * arm["top1"], 100 * arm["top5"]], marker,
                       color="grey", label=name)
    right.axhline(100 / 361, color="black", lw=0.8, ls=":", label="chance top-1")
    _decorate(right, "training games (about 176 positions each)",
              "held-out top-1 / top-5 % (all 204 games)", "accuracy with data, after 2 epochs")
    fig.suptitle("alphago-policy k=32, 6 layers, on held-out Fox pro games")
    fig.tight_layout()
    with atomic_writer(path) as out:
        fig.savefig(out, format="png", dpi=110)
    plt.close(fig)


def _curve(arm: dict):
    """(positions seen, held-out top-1 %) after each epoch of an arm."""
    epochs = range(1, len(arm["val_accuracy"]) + 1)
    return ([arm["training_positions"] * e for e in epochs],
            [100 * v for v in arm["val_accuracy"]])


def _decorate(axes, xlabel: str, ylabel: str, title: str) -> None:
    axes.set_xscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)


def report(runs: Path, out: Path) -> None:
    found = collect(runs)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "go_study.json", json.dumps(found, indent=1) + "\n")
    write_text(out / "go_study.md", "# Go policy study (scripts/go_study.py)\n\n"
               f"k=32, 6 layers, 2 epochs, batch 64, Adam 1e-3, seed 0.\n\n{table(found)}\n")
    if found:
        figure(found, out / "go_study.png")
    print(table(found))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="runs/go-study", help="folder of the arms' runs")
    parser.add_argument("--out", default=None, help="report folder (default: --runs)")
    parser.add_argument("--only", default=None, help="comma-separated arms to train")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--data-root", default="../shared/datasets")
    parser.add_argument("--no-title-games", action="store_true",
                        help="do not measure the title games")
    args = parser.parse_args(argv)
    runs = Path(args.runs)
    names = list(ARMS) if args.only is None else args.only.split(",")
    unknown = [n for n in names if n not in ARMS]
    if unknown:
        parser.error(f"unknown arm(s) {', '.join(unknown)}; the arms: {', '.join(ARMS)}")
    if not args.report_only:
        runs.mkdir(parents=True, exist_ok=True)
        for name in names:
            train_arm(runs, name, args.data_root)
        if not args.no_title_games:
            measure_title_games(runs, Path(args.data_root) / "go-title-games" / "sgf")
    report(runs, Path(args.out) if args.out else runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
