"""Positions: replayed games → compact codes + moves, planes per batch, symmetries, loader."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from cnnlab.apps.go import features
from cnnlab.apps.go import positions as pos
from cnnlab.apps.go.board import BLACK, PASS, WHITE, Board
from cnnlab.apps.go.sgf import Game
from cnnlab.apps.go.sgf_read import read_games

SGF = Path(__file__).parent / "sgf"


@pytest.fixture(scope="module")
def games():
    return list(read_games([SGF / "fox-pro" / "3p", SGF / "fox-9d-sample.zip"]))


def test_positions_match_an_independent_replay(games):
    game = next(g for g in games if g.setup_black)  # a handicap game: setup in node 2
    stored, moves, stopped = pos.game_positions(game, "48")
    played = [(c, p) for c, p in game.moves if p is not None]
    assert stopped == "" and len(moves) == len(played) == len(stored)
    assert stored.shape[1:] == (2, 19, 19) and stored.dtype == np.uint8
    assert moves.tolist() == [r * 19 + c for _, (r, c) in played]
    board = Board(19)
    board.place_setup(game.setup_black, BLACK)
    board.place_setup(game.setup_white, WHITE)
    index = 0
    for colour, point in game.moves:
        board.to_move = BLACK if colour == "b" else WHITE
        if point is not None:
            if index % 7 == 0:  # every 7th position against features computed here
                expected = features.expand(features.encode(board))
                np.testing.assert_array_equal(pos.planes(stored[index:index + 1], "48")[0],
                                              expected)
            index += 1
        board.play(PASS if point is None else point)
    # the move played is always on an empty point (plane 2: empty) and sensible or not,
    # legal (a plane among 36..43, liberties after the move, is set)
    planes = pos.planes(stored, "48")
    rows, cols = moves // 19, moves % 19
    assert (planes[np.arange(len(moves)), 2, rows, cols] == 1).all()
    assert (planes[np.arange(len(moves)), 36:44, rows, cols].sum(axis=1) == 1).all()


def test_raw_encoding_is_the_first_20_planes_in_half_the_bytes(games):
    stored48, moves48, _ = pos.game_positions(games[0], "48")
    raw, moves_raw, _ = pos.game_positions(games[0], "raw")
    np.testing.assert_array_equal(moves48, moves_raw)
    assert raw.shape[1] == 1 and raw[0].nbytes == 361 and stored48[0].nbytes == 722
    np.testing.assert_array_equal(pos.planes(raw, "raw"), pos.planes(stored48, "48")[:, :20])


def test_a_ko_retake_the_reader_let_through_stops_the_game():
    # black takes the ko at E5 (row 14, col 4); white retakes at once: illegal under ko
    moves = [("b", (14, 3)), ("w", (14, 4)), ("b", (15, 4)), ("w", (15, 5)), ("b", (13, 4)),
             ("w", (13, 5)), ("b", None), ("w", (14, 6)), ("b", (14, 5)), ("w", (14, 4)),
             ("b", (0, 0))]
    game = Game(size=19, setup_black=(), setup_white=(), moves=tuple(moves), source="ko")
    _, labels, stopped = pos.game_positions(game, "raw")
    assert stopped == "ko" and len(labels) == 8  # 8 stones before it (one pass)


def test_symmetries_turn_codes_and_moves_together(games):
    positions = pos.encode_games(games[:1], "48")
    rng = np.random.default_rng(5)
    stored, moves = pos.symmetries(positions.stored, positions.moves, rng)
    chosen = np.random.default_rng(5).integers(0, 8, len(moves))
    assert len(set(chosen.tolist())) == 8
    for i in range(len(moves)):
        np.testing.assert_array_equal(stored[i], features.transform(positions.stored[i], chosen[i]))
        assert moves[i] == features.transform_point(int(positions.moves[i]), chosen[i], 19)
    planes = pos.planes(stored, "48")
    assert (planes[np.arange(len(moves)), 2, moves // 19, moves % 19] == 1).all()


def test_loader_is_seeded_per_epoch_and_evaluation_is_untouched(games):
    positions = pos.encode_games(games, "raw")
    assert positions.games == len(games) and positions.nbytes == len(positions) * (361 + 8)

    def epoch(loader, number):
        loader.set_epoch(number)
        return list(loader)

    first = epoch(pos.loader(positions, 64, seed=3), 1)
    again = epoch(pos.loader(positions, 64, seed=3), 1)  # a resumed run sees the same
    other = epoch(pos.loader(positions, 64, seed=3), 2)
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(first[0][1], other[0][1])
    assert first[0][0].shape == (64, 20, 19, 19) and first[0][0].dtype == np.float32
    plain = list(pos.loader(positions, 64, shuffle=False))  # evaluation order: no symmetry
    np.testing.assert_array_equal(plain[0][0], positions.planes(0, 64))
    np.testing.assert_array_equal(np.concatenate([y for _, y in plain]), positions.moves)


def test_bad_input_is_refused_with_a_clear_error(games):
    with pytest.raises(ValueError, match="encoding must be one of"):
        pos.encode_games(games, "64")
    with pytest.raises(ValueError, match="expected uint8"):
        pos.planes(np.zeros((1, 2, 19, 19), np.uint8), "raw")
    with pytest.raises(ValueError, match="above 128"):
        pos.planes(np.full((1, 1, 19, 19), 200, np.uint8), "raw")
    small = dataclasses.replace(games[0], size=9)
    with pytest.raises(ValueError, match="9×9"):
        pos.game_positions(small)
    assert pos.encoding_of_planes(48) == "48" and pos.encoding_of_planes(20) == "raw"
    with pytest.raises(ValueError, match="no encoding gives 7 planes"):
        pos.encoding_of_planes(7)


def test_two_moves_of_one_colour_are_a_pass_between_them():
    # black takes a ko, then black again connects at the ko point: legal (the ban was
    # white's); the record's missing white move counts as a pass
    moves = [("b", (14, 3)), ("w", (14, 4)), ("b", (15, 4)), ("w", (15, 5)), ("b", (13, 4)),
             ("w", (13, 5)), ("b", None), ("w", (14, 6)), ("b", (14, 5)), ("b", (14, 4))]
    game = Game(size=19, setup_black=(), setup_white=(), moves=tuple(moves), source="twice")
    _, labels, stopped = pos.game_positions(game, "raw")
    assert stopped == "" and len(labels) == 9 and labels[-1] == 14 * 19 + 4
    white_first = Game(size=19, setup_black=((3, 3), (15, 15)), setup_white=(),
                       moves=(("w", (3, 15)), ("b", (15, 3))), source="handicap")
    stored, labels, _ = pos.game_positions(white_first, "raw")
    planes = pos.planes(stored, "raw")
    assert planes[0, 1, 3, 3] == 1 and planes[1, 0, 3, 3] == 1  # white's view, then black's
