"""Game sets: duplicates removed within and across sets, a seeded split by whole game."""

from __future__ import annotations

import dataclasses
import importlib.util
import random
import shutil
from pathlib import Path

import pytest

from cnnlab.apps.go.games import (
    OPENING_MOVES,
    build_sets,
    deduplicate,
    load_sets,
    opening_key,
    split_games,
)
from cnnlab.apps.go.sgf import Game, parse_game

HERE = Path(__file__).parent / "sgf"
SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "go_games.py"


def make_game(seed: int, length: int = 80, source: str = "") -> Game:
    rng = random.Random(seed)
    points = rng.sample([(r, c) for r in range(19) for c in range(19)], length)
    moves = tuple(("b" if i % 2 == 0 else "w", p) for i, p in enumerate(points))
    return Game(size=19, setup_black=(), setup_white=(), moves=moves, source=source or f"g{seed}")


def near_copy(game: Game, extra: int = 7) -> Game:
    """The same game recorded with a different ending (past the opening)."""
    moves = game.moves[:OPENING_MOVES + 5] + (("b", (extra, extra)),)
    return dataclasses.replace(game, moves=moves, source=game.source + "-copy")


def positions(games) -> set:
    """Every training example a game gives: (which game, which move)."""
    return {(key, i) for key, g in ((g.key(), g) for g in games) for i in range(len(g.moves))}


def test_the_same_title_game_in_two_files_is_one_game():
    a = parse_game((HERE / "title" / "Hon-70-1.mgt.sgf").read_bytes(), "Hon-70-1.mgt.sgf")
    b = parse_game((HERE / "title" / "Hon-70-2.sgf").read_bytes(), "Hon-70-2.sgf")
    assert a.key() == b.key() and a.source != b.source
    kept, dropped = deduplicate([a, b, make_game(1)])
    assert [g.source for g in kept] == ["Hon-70-1.mgt.sgf", "g1"] and dropped == [b]


def test_split_is_seeded_exact_and_independent_of_order():
    games = [make_game(i) for i in range(200)]
    train, held = split_games(games, 0.1, seed=3)
    assert len(held) == 20 and len(train) == 180
    assert [g.source for g in train + held] != [g.source for g in games]  # not just a prefix
    again = split_games(list(reversed(games)), 0.1, seed=3)[1]
    assert {g.key() for g in again} == {g.key() for g in held}
    other = split_games(games, 0.1, seed=4)[1]
    assert {g.key() for g in other} != {g.key() for g in held}
    # each side keeps the input's order
    assert [g.source for g in train] == [g.source for g in games if g in train]


def test_split_never_puts_a_games_positions_on_both_sides():
    games = [make_game(i) for i in range(300)]
    games += [games[5], games[17]]  # the same game twice
    games += [near_copy(games[i], extra=i) for i in range(0, 300, 3)]  # same opening
    for seed in range(5):
        train, held = split_games(games, 0.2, seed=seed)
        assert not positions(train) & positions(held)
        openings = {opening_key(g) for g in held}
        assert not any(opening_key(g) in openings for g in train)
        assert len(train) + len(held) == 400  # 300 games, 100 near-copies, 2 repeats dropped


def test_build_sets_removes_games_shared_between_sets_and_keeps_the_test_set_whole():
    pro = [make_game(i, source=f"pro{i}") for i in range(100)]
    ninedan = [make_game(i + 50, source=f"9d{i}") for i in range(100)]  # 50 also in pro
    title = [make_game(1000 + i) for i in range(20)] + [make_game(7)]  # one also in pro
    ninedan.append(near_copy(pro[3]))  # shares its opening with a pro game
    sets = build_sets({"fox-pro": pro, "fox-9d": ninedan}, {"title": title}, 0.1, seed=0)
    counts = sets.counts
    assert counts["title"].duplicates_with == {}
    assert counts["fox-pro"].duplicates_with == {"title": 1}
    assert counts["fox-9d"].duplicates_with == {"fox-pro": 50}
    assert counts["fox-9d"].openings_shared_with == {"fox-pro": 1}
    assert len(sets.test["title"]) == 21
    assert len(sets.held_out["fox-pro"]) == 10 and len(sets.held_out["fox-9d"]) == 5
    assert len(sets.train) == 99 - 10 + 51 - 5
    held = [g for games in sets.held_out.values() for g in games]
    tested = sets.test["title"]
    assert not positions(sets.train) & positions(held)
    assert not positions(sets.train) & positions(tested)
    assert not positions(held) & positions(tested)
    text = "\n".join(sets.lines())
    assert "fox-9d: 101 games read, 0 repeated inside, 50 also in fox-pro" in text
    assert "title: 21 games read" in text and "test 21 games" in text


def datasets_layout(root: Path) -> Path:
    """The test records laid out as ../shared/datasets holds the real ones."""
    shutil.copytree(HERE / "fox-pro", root / "go-fox-pro" / "sgf")
    (root / "go-fox-9d").mkdir()
    shutil.copy(HERE / "fox-9d-sample.zip", root / "go-fox-9d" / "games.zip")
    shutil.copytree(HERE / "title", root / "go-title-games" / "sgf")
    return root


def test_load_sets_reads_the_datasets_layout(tmp_path):
    datasets_layout(tmp_path)
    sets = load_sets(tmp_path, held_out_fraction=0.5, seed=1)
    assert sets.counts["title"].duplicates_inside == 1  # Hon-70-1.mgt / Hon-70-2
    assert len(sets.test["title"]) == 5
    assert sets.reports["fox-pro"].games == 6 and sets.reports["fox-9d"].games == 3
    assert len(sets.held_out["fox-pro"]) == 3 and len(sets.held_out["fox-9d"]) == 2
    assert len(sets.train) == 3 + 1
    with pytest.raises(ValueError, match="unknown set"):
        load_sets(tmp_path, names=("kgs",))


def test_fraction_is_checked():
    with pytest.raises(ValueError, match="held_out_fraction"):
        split_games([make_game(0)], 1.5)


def test_the_measuring_script_reads_and_counts(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("go_games", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--root", str(datasets_layout(tmp_path)), "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "files read: 6; games kept: 6" in out and "games/s" in out
    assert "title: 6 games read, 1 repeated inside" in out
    assert "training sets together: 9 games" in out


DATASETS_ROOT = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets"


def test_the_real_title_games_match_their_readme():
    if not (DATASETS_ROOT / "go-title-games" / "sgf").is_dir():
        pytest.skip("needs ../shared/datasets/go-title-games")
    sets = load_sets(DATASETS_ROOT, names=("title",))
    report, counts = sets.reports["title"], sets.counts["title"]
    # the README: 596 records, 129 k moves, 5 hit an occupied point, 590 distinct games
    assert report.games == 596 and not report.skipped
    assert 128_000 < report.moves < 130_000
    assert report.truncated_by == {"occupied point": 5}
    assert counts.duplicates_inside == 6 and len(sets.test["title"]) == 590
