"""AlphaGo's feature planes: a hand-checked position (every family), the same planes
recomputed by playing each move on a copy, the one-hot layout, and the 8 symmetries."""

import numpy as np
import pytest

from cnnlab.apps.go import features
from cnnlab.apps.go.board import BLACK, EMPTY, WHITE, Board

from .test_ladder import _oracle_capture


def _hand_position():
    """White to move; white's (4,4) was played two moves ago, black's (0,4) one move ago."""
    board = Board.from_rows([".X...",
                             "XO...",
                             ".XO..",
                             "..O..",
                             "....."], to_move=WHITE)
    board.play((4, 4), WHITE)
    board.play((0, 4), BLACK)
    return board


HAND_EXPECTED = {
    # from white's side: 0 own, 1 opponent, 2 empty
    "colour": [[2, 1, 2, 2, 1],
               [1, 0, 2, 2, 2],
               [2, 1, 0, 2, 2],
               [2, 2, 0, 2, 2],
               [2, 2, 2, 2, 0]],
    # setup stones are ≥ 8 turns old; (4,4) two turns, (0,4) one
    "turns_since": [[0, 8, 0, 0, 1],
                    [8, 8, 0, 0, 0],
                    [0, 8, 8, 0, 0],
                    [0, 0, 8, 0, 0],
                    [0, 0, 0, 0, 2]],
    "liberties": [[0, 2, 0, 0, 2],
                  [2, 1, 0, 0, 0],
                  [0, 2, 5, 0, 0],
                  [0, 0, 5, 0, 0],
                  [0, 0, 0, 0, 2]],
    # nothing can be captured (category 1 = zero stones); (0,0) is suicide for white
    "capture_size": [[0, 0, 1, 1, 0],
                     [0, 0, 1, 1, 1],
                     [1, 0, 0, 1, 1],
                     [1, 1, 0, 1, 1],
                     [1, 1, 1, 1, 0]],
    # only (2,0) leaves white in atari, with one stone
    "self_atari_size": [[0, 0, 0, 0, 0],
                        [0, 0, 0, 0, 0],
                        [1, 0, 0, 0, 0],
                        [0, 0, 0, 0, 0],
                        [0, 0, 0, 0, 0]],
    # e.g. (1,2) joins (1,1) and (2,2)-(3,2): (0,2) (1,3) (2,3) (3,1) (3,3) (4,2)
    "liberties_after": [[0, 0, 2, 2, 0],
                        [0, 0, 6, 4, 2],
                        [1, 0, 0, 6, 3],
                        [3, 6, 0, 6, 3],
                        [2, 3, 6, 3, 0]],
    # black's (0,4) (two liberties) is captured by a ladder whichever side white ataris from
    "ladder_capture": [[0, 0, 0, 1, 0],
                       [0, 0, 0, 0, 1],
                       [0, 0, 0, 0, 0],
                       [0, 0, 0, 0, 0],
                       [0, 0, 0, 0, 0]],
    # (1,1) in atari extends to six liberties
    "ladder_escape": [[0, 0, 0, 0, 0],
                      [0, 0, 1, 0, 0],
                      [0, 0, 0, 0, 0],
                      [0, 0, 0, 0, 0],
                      [0, 0, 0, 0, 0]],
    # white has no eye here: sensible = legal
    "sensible": [[0, 0, 1, 1, 0],
                 [0, 0, 1, 1, 1],
                 [1, 0, 0, 1, 1],
                 [1, 1, 0, 1, 1],
                 [1, 1, 1, 1, 0]],
}


def test_every_channel_of_a_hand_checked_position():
    codes = features.encode(_hand_position())
    assert codes.dtype == np.uint8 and codes.shape == (9, 5, 5)
    for index, name in enumerate(features.CHANNELS):
        assert codes[index].tolist() == HAND_EXPECTED[name], name


def test_the_hand_position_ladders_agree_with_a_plain_search():
    board = _hand_position()
    codes = features.encode(board)
    for point in range(board.points):
        if board.colour_at(point) == EMPTY:
            assert codes[6].ravel()[point] == _oracle_capture(board, point, WHITE)


def test_expand_lays_the_planes_out_as_table_2():
    codes = features.encode(_hand_position())
    planes = features.expand(codes[None])
    assert planes.shape == (1, 48, 5, 5) and planes.dtype == np.float32
    planes = planes[0]
    assert np.array_equal(planes[0:3].sum(0), np.ones((5, 5)))  # exactly one colour plane
    assert planes[1, 0, 4] == 1 and planes[0, 4, 4] == 1 and planes[2, 0, 0] == 1
    assert np.all(planes[3] == 1) and np.all(planes[47] == 0)
    assert planes[4, 0, 4] == 1 and planes[5, 4, 4] == 1 and planes[11, 1, 1] == 1  # turns 1, 2, ≥8
    assert planes[12 + 1 - 1, 1, 1] == 1 and planes[12 + 5 - 1, 2, 2] == 1  # 1 and 5 liberties
    assert planes[20, 0, 2] == 1 and planes[20:28, 0, 0].sum() == 0  # captures 0 stones / illegal
    assert planes[28, 2, 0] == 1 and planes[28:36].sum() == 1  # self-atari of one stone
    assert planes[36 + 6 - 1, 1, 2] == 1 and planes[36 + 1 - 1, 2, 0] == 1
    assert planes[44].sum() == 2 and planes[45, 1, 2] == 1 and planes[46].sum() == 16
    # each family's planes are one-hot where its category is set, empty where it is 0
    for channel, first, count in ((1, 4, 8), (2, 12, 8), (3, 20, 8), (4, 28, 8), (5, 36, 8)):
        assert np.array_equal(planes[first:first + count].sum(0), codes[channel] > 0)
    raw = features.expand(codes, raw=True)
    assert raw.shape == (20, 5, 5) and np.array_equal(raw, planes[:20])


def test_large_categories_are_capped_at_the_last_plane():
    board = Board.from_rows(["XXXXO..",
                             "XXXXO..",
                             "OOO....",
                             ".......",
                             "..XXX..",
                             ".......",
                             "......."], to_move=WHITE)
    codes = features.encode(board)
    assert board.liberties((0, 0)) == 1 and board.liberties((4, 2)) == 8
    assert codes[3, 2, 3] == 8  # captures eight stones: the "≥ 7" plane
    assert codes[5, 2, 3] == 8  # nine liberties after the capture: the "≥ 8" plane
    assert codes[2, 4, 3] == 8  # a group with eight liberties
    assert codes[3, 3, 3] == 1  # (3,3) captures nothing


def _reference_codes(board):
    """The planes' categories computed by playing each move on a copy of the board."""
    colour = board.to_move
    size = board.size
    codes = np.zeros((9, size * size), np.uint8)
    for point in range(board.points):
        stone = board.colour_at(point)
        if stone != EMPTY:
            codes[0, point] = 0 if stone == colour else 1
            codes[1, point] = min(board.move_number - board.state[4, point], 8)
            codes[2, point] = min(board.liberties(point), 8)
            continue
        codes[0, point] = 2
        if not board.is_legal(point):
            continue
        after = board.copy()
        captured = after.play(point)
        liberties = after.liberties(point)
        codes[3, point] = min(captured, 7) + 1
        codes[4, point] = min(len(after.group(point)), 8) if liberties == 1 else 0
        codes[5, point] = min(liberties, 8)
        codes[6, point] = board.ladder_capture(point)
        codes[7, point] = board.ladder_escape(point)
        codes[8, point] = not board.is_true_eye(point, colour)
    return codes.reshape(9, size, size)


def test_random_positions_match_planes_computed_by_playing_each_move():
    rng = np.random.default_rng(8)
    large = set()
    for game in range(12):
        board = Board(7 if game % 2 else 9)
        for ply in range(int(rng.integers(20, 140))):
            legal = board.sensible_moves()
            if legal.size == 0:
                break
            board.play(int(rng.choice(legal)))
            if ply % 7 == 6:
                codes = features.encode(board)
                assert np.array_equal(codes, _reference_codes(board))
                large.update(int(c) for c in np.flatnonzero(codes.reshape(9, -1).max(1) == 8))
    assert {1, 2, 5} <= large  # the ≥ 8 planes were exercised


def _asymmetric_board():
    board = Board.from_rows(["......",
                             ".XO...",
                             "..XO..",
                             "..X...",
                             "...O..",
                             "......"], to_move=BLACK)
    return board


def _transformed_board(board, symmetry):
    grid = features.transform(board.colours(), symmetry)
    marks = {EMPTY: ".", BLACK: "X", WHITE: "O"}
    return Board.from_rows(["".join(marks[int(c)] for c in row) for row in grid],
                           to_move=board.to_move)


@pytest.mark.parametrize("symmetry", range(8))
def test_a_move_and_the_planes_transform_together(symmetry):
    board = _asymmetric_board()
    move = board.point(2, 1)
    codes = features.encode(board)
    rotated = _transformed_board(board, symmetry)
    moved = features.transform_point(move, symmetry, board.size)
    assert np.array_equal(features.encode(rotated), features.transform(codes, symmetry))
    assert np.array_equal(features.transform(codes, symmetry)[:, moved // 6, moved % 6],
                          codes[:, 2, 1])
    one_hot = np.zeros(board.points)
    one_hot[move] = 1
    assert features.transform(one_hot.reshape(6, 6), symmetry).ravel()[moved] == 1
    after, after_rotated = board.copy(), rotated.copy()
    after.play(move)
    after_rotated.play(moved)
    assert np.array_equal(features.transform(after.colours(), symmetry), after_rotated.colours())
    assert features.transform_point(-1, symmetry, 6) == -1


def test_the_eight_symmetries_of_an_asymmetric_position_are_distinct():
    codes = features.encode(_asymmetric_board())
    images = {features.transform(codes, s).tobytes() for s in range(8)}
    assert len(images) == 8
    assert np.array_equal(features.transform(codes, 0), codes)
    moved = features.transform_point(np.arange(36), 3, 6)
    assert sorted(moved.tolist()) == list(range(36))


def test_bad_codes_and_symmetries_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        features.expand(np.zeros((1, 9, 5, 5), np.int64))
    bad = np.zeros((1, 9, 5, 5), np.uint8)
    bad[0, 6, 0, 0] = 2
    with pytest.raises(ValueError, match="out of range"):
        features.expand(bad)
    with pytest.raises(ValueError, match="symmetry"):
        features.transform(np.zeros((5, 5)), 8)


def test_packing_keeps_every_category_in_two_bytes_a_point():
    rng = np.random.default_rng(2)
    positions = []
    for _ in range(6):
        board = Board(9)
        for _ in range(int(rng.integers(30, 120))):
            legal = board.sensible_moves()
            if legal.size == 0:
                break
            board.play(int(rng.choice(legal)))
            positions.append(features.encode(board))
    codes = np.stack(positions)
    packed = features.pack(codes)
    assert packed.dtype == np.uint16 and packed.shape == (len(codes), 9, 9)
    assert np.array_equal(features.unpack(packed), codes)
    assert np.array_equal(features.unpack(features.pack(codes[0])), codes[0])
    hand = features.encode(_hand_position())
    assert np.array_equal(features.unpack(features.pack(hand)), hand)
    # every packed code decodes to categories that pack back to the same code
    every = np.arange(features.PACKED_CODES, dtype=np.uint16).reshape(1, -1)
    assert np.array_equal(features.pack(features.unpack(every)), every)


def test_packing_refuses_codes_encode_never_writes():
    codes = features.encode(_hand_position())
    stone_with_move = codes.copy()
    stone_with_move[3, 0, 1] = 1  # (0,1) is a black stone
    empty_with_turns = codes.copy()
    empty_with_turns[1, 0, 0] = 2
    for bad in (stone_with_move, empty_with_turns):
        with pytest.raises(ValueError, match="not codes from features.encode"):
            features.pack(bad)
    with pytest.raises(ValueError, match="largest"):
        features.unpack(np.full((5, 5), features.PACKED_CODES, np.uint16))
