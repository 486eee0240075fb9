"""Top-1/top-5 of a Go policy on the held-out Fox pro games (all) and every EVERY-th title game.

    python scripts/go_measure.py [EVERY] [MODEL]     # default: every title game, the shipped model

Run from the repository root (the datasets are read from ../shared/datasets).
"""

from __future__ import annotations

import sys

from cnnlab.apps.go import positions as pos
from cnnlab.apps.go.evaluate import load_policy
from cnnlab.apps.go.games import load_sets
from cnnlab.apps.go.train import accuracy_lines, measure


def main() -> None:
    every = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    policy = load_policy(sys.argv[2]) if len(sys.argv) > 2 else load_policy()
    sets = load_sets("../shared/datasets", seed=0)
    for name, games in (("held-out Fox pro", sets.held_out["fox-pro"]),
                        ("title", sets.test["title"][::every])):
        result = measure(policy.model, pos.encode_games(games, policy.encoding))
        print(name, len(games), *accuracy_lines(result, ""))


if __name__ == "__main__":
    main()
