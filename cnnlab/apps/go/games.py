"""Game sets for the policy network: whole games held out, duplicates removed across sets.

A position's neighbours in the same game are nearly the same position, so held-out data
must be whole games that no training position came from (the issue's leakage warning:
above 60 % top-1 on held-out games means something leaked). ``build_sets``:

1. removes repeated games inside each set (``Game.key()``: a hash of size, setup and moves,
   not of names or file names, so one game saved twice is caught);
2. removes from each set the games already in a set named before it: the test sets first
   (title games: never trained on, never held out), then the training sets in order (a game
   both in Fox pro and Fox 9d stays in Fox pro only), counting each pair of sets;
3. splits each training set by game: games are grouped by their first
   ``OPENING_MOVES`` moves (``opening_key``), the groups ordered by a hash of (seed, group)
   and the first groups, ``held_out_fraction`` of the games, held out. The split is seeded,
   does not depend on file order, a game is on one side only, and so are near-copies of it
   (the same game recorded with a different ending: Fox pro has a few, the title games 3).

``SetCounts.openings_shared_with`` counts the games of a set whose first
``OPENING_MOVES`` moves are also those of a different game in an earlier set: not removed
(different games may share a long opening), shown so leakage can be judged.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from cnnlab._checks import check_int
from cnnlab.apps.go.sgf import Game
from cnnlab.apps.go.sgf_read import ReadReport, read_games

__all__ = ["DATASETS", "OPENING_MOVES", "GameSets", "SetCounts", "build_sets", "deduplicate",
           "load_sets", "opening_key", "split_games"]

#: games that agree on this many first moves are kept on the same side of a split
OPENING_MOVES = 50

#: name → (folder under the datasets root, what to read there, a test set?)
DATASETS = {
    "title": ("go-title-games", "sgf", True),
    "fox-pro": ("go-fox-pro", "sgf", False),
    "fox-9d": ("go-fox-9d", "games.zip", False),
}


def deduplicate(games, seen: set | None = None) -> tuple[list[Game], list[Game]]:
    """(kept, dropped): the first game of each key is kept; ``seen`` (keys already taken
    elsewhere) drops those too, and gains the kept keys."""
    seen = set() if seen is None else seen
    kept, dropped = [], []
    for game in games:
        key = game.key()
        if key in seen:
            dropped.append(game)
        else:
            seen.add(key)
            kept.append(game)
    return kept, dropped


def _check_fraction(fraction: float) -> float:
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"held_out_fraction must be in [0, 1], received {fraction}")
    return fraction


def opening_key(game: Game, moves: int = OPENING_MOVES) -> str:
    """A hash of the size, the setup and the first ``moves`` moves (all of a shorter game)."""
    text = f"{game.size} {game.setup_black} {game.setup_white} {list(game.moves[:moves])}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def split_games(games, held_out_fraction: float, seed: int = 0) -> tuple[list[Game], list[Game]]:
    """(train, held_out) by whole game: about ``held_out_fraction`` of the games held out.

    Duplicates are removed first; games sharing their first ``OPENING_MOVES`` moves form a
    group that stays together. Groups are ordered by a hash of (seed, opening) and taken
    until round(fraction × n) games are held out. Each side keeps the input's order.
    """
    fraction = _check_fraction(held_out_fraction)
    seed = check_int(seed, "split_games", "seed", minimum=0)
    games, _ = deduplicate(games)
    groups: dict[str, list] = {}
    for index, game in enumerate(games):
        groups.setdefault(opening_key(game), []).append(index)

    def rank(opening: str) -> bytes:
        return hashlib.blake2b(f"{seed}:{opening}".encode(), digest_size=16).digest()

    target, held = round(fraction * len(games)), set()
    for opening in sorted(groups, key=rank):
        if len(held) >= target:
            break
        held.update(groups[opening])
    return ([g for i, g in enumerate(games) if i not in held],
            [g for i, g in enumerate(games) if i in held])


@dataclasses.dataclass
class SetCounts:
    """Per set: games read, duplicates dropped (inside it, and shared with each earlier set),
    games sharing an opening with a different game of an earlier set (kept), then games and
    moves on each side (a test set's games count as held out)."""

    read: int = 0
    duplicates_inside: int = 0
    duplicates_with: dict = dataclasses.field(default_factory=dict)
    openings_shared_with: dict = dataclasses.field(default_factory=dict)
    train_games: int = 0
    train_moves: int = 0
    held_out_games: int = 0
    held_out_moves: int = 0


@dataclasses.dataclass
class GameSets:
    """``train``: games of every training set; ``held_out[name]``: whole held-out games of
    training set ``name``; ``test[name]``: whole test sets; ``counts[name]``: ``SetCounts``;
    ``reports[name]``: the ``ReadReport`` when the games were read from files."""

    train: list
    held_out: dict
    test: dict
    counts: dict
    reports: dict = dataclasses.field(default_factory=dict)

    def lines(self) -> list[str]:
        """A table of the counts, one line per set."""
        lines = []
        for name, c in self.counts.items():
            shared = [f"{n} also in {other}" for other, n in c.duplicates_with.items()]
            if len(lines) and not c.duplicates_with:
                shared.append("none in an earlier set")
            shared += [f"{n} share their first {OPENING_MOVES} moves with a game in {other}"
                       for other, n in c.openings_shared_with.items()]
            held = "test" if name in self.test else "held out"
            lines.append(
                f"{name}: {c.read:,} games read, {c.duplicates_inside:,} repeated inside"
                + "".join(f", {text}" for text in shared)
                + f"; train {c.train_games:,} games ({c.train_moves:,} moves), "
                f"{held} {c.held_out_games:,} games ({c.held_out_moves:,} moves)")
        return lines


def build_sets(training: dict, test: dict | None = None, held_out_fraction: float = 0.05,
               seed: int = 0) -> GameSets:
    """Training sets split by whole game, test sets kept whole, no game in two places.

    Args:
        training: name → list of games (earlier names win a shared game).
        test: name → list of games never trained on (they win over every training set).
        held_out_fraction: share of each training set's games held out.
        seed: the split's seed.
    """
    fraction = _check_fraction(held_out_fraction)
    seen_by: dict[str, set] = {}
    openings_by: dict[str, set] = {}
    counts, sets = {}, {}
    for name, games in [*(test or {}).items(), *training.items()]:
        games = list(games)
        kept, repeated = deduplicate(games)
        count = SetCounts(read=len(games), duplicates_inside=len(repeated))
        for other, keys in seen_by.items():
            before = len(kept)
            kept = [g for g in kept if g.key() not in keys]
            if before - len(kept):
                count.duplicates_with[other] = before - len(kept)
        for other, openings in openings_by.items():
            shared = sum(opening_key(g) in openings for g in kept)
            if shared:
                count.openings_shared_with[other] = shared
        seen_by[name] = {g.key() for g in kept}
        openings_by[name] = {opening_key(g) for g in kept}
        counts[name], sets[name] = count, kept
    train, held_out, tests = [], {}, {}
    for name, games in sets.items():
        if test and name in test:
            tests[name] = games
            part_train, part_held = [], games
        else:
            part_train, part_held = split_games(games, fraction, seed)
            train += part_train
            held_out[name] = part_held
        c = counts[name]
        c.train_games, c.train_moves = len(part_train), sum(len(g.moves) for g in part_train)
        c.held_out_games, c.held_out_moves = len(part_held), sum(len(g.moves) for g in part_held)
    return GameSets(train=train, held_out=held_out, test=tests, counts=counts)


def load_sets(root, names=("fox-pro", "fox-9d", "title"), held_out_fraction: float = 0.05,
              seed: int = 0) -> GameSets:
    """Read ``names`` (keys of ``DATASETS``) from the datasets folder ``root`` (e.g.
    ``../shared/datasets``) and ``build_sets`` them; ``GameSets.reports`` holds each read's
    ``ReadReport`` (skips, truncations)."""
    unknown = [name for name in names if name not in DATASETS]
    if unknown:
        raise ValueError(f"load_sets: unknown set(s) {unknown}; known: {list(DATASETS)}")
    training, test, reports = {}, {}, {}
    for name in names:
        folder, inside, is_test = DATASETS[name]
        reports[name] = ReadReport()
        games = list(read_games(Path(root, folder, inside), reports[name]))
        (test if is_test else training)[name] = games
    sets = build_sets(training, test, held_out_fraction, seed)
    sets.reports = reports
    return sets
