"""The Go board's rules on known positions, and its incremental liberties against a flood fill
over a few hundred seeded random games."""

import numpy as np
import pytest
from numba import njit

from cnnlab.apps.go import board_core
from cnnlab.apps.go.board import BLACK, EMPTY, PASS, WHITE, Board, IllegalMoveError


def test_a_lone_stone_in_the_centre_is_captured():
    board = Board.from_rows([".....",
                             "..X..",
                             ".XO..",
                             "..X..",
                             "....."])
    assert board.liberties((2, 2)) == 1
    assert board.play((2, 3), BLACK) == 1
    assert board.colour_at((2, 2)) == EMPTY
    assert board.captures(BLACK) == 1 and board.captures(WHITE) == 0
    assert board.liberties((1, 2)) == 4  # the captured point is a liberty again
    assert board.to_move == WHITE


def test_a_multi_stone_edge_group_is_captured_and_its_points_become_liberties():
    board = Board.from_rows(["OOO.X",
                             "XXXX.",
                             ".....",
                             ".....",
                             "....."])
    assert board.group((0, 0)) == [0, 1, 2]
    assert board.liberties((0, 1)) == 1
    assert board.play((0, 3), BLACK) == 3
    assert board.colours()[0].tolist() == [EMPTY, EMPTY, EMPTY, BLACK, BLACK]
    # three freed points on row 0, (1, 4), and (2, 0)..(2, 3) below
    assert board.liberties((1, 0)) == 8
    assert board.group((0, 3)) == [3, 4, 5, 6, 7, 8]


def test_a_corner_stone_is_captured_with_two_stones_around_it():
    board = Board.from_rows(["O....", "X....", ".....", ".....", "....."])
    board.play((0, 1), BLACK)
    assert board.colour_at((0, 0)) == EMPTY


def test_one_move_can_capture_four_groups_at_once():
    board = Board.from_rows(["..X..",
                             ".XOX.",
                             "XO.OX",
                             ".XOX.",
                             "..X.."])
    assert board.play((2, 2), BLACK) == 4
    assert board.liberties((2, 2)) == 4
    assert board.captures(BLACK) == 4


def test_suicide_is_illegal_for_one_stone_and_for_a_group():
    board = Board.from_rows([".X...",
                             "X....",
                             ".....",
                             "...XX",
                             "..XO."], to_move=WHITE)
    assert board.why_illegal((0, 0)) == "suicide"
    with pytest.raises(IllegalMoveError, match="suicide"):
        board.play((0, 0))
    assert board.colour_at((0, 0)) == EMPTY and board.to_move == WHITE  # nothing changed
    # white (4,4) would join (4,3) into a group without liberties
    assert board.why_illegal((4, 4)) == "suicide"
    # ... but a move without liberties that captures is legal
    board = Board.from_rows([".XO..", "XO...", "O....", ".....", "....."], to_move=WHITE)
    assert board.why_illegal((0, 0)) is None
    assert board.play((0, 0)) == 2


def test_simple_ko_forbids_the_immediate_retake_only():
    board = Board.from_rows([".XO..",
                             "XO.O.",
                             ".XO..",
                             ".....",
                             "....."])
    assert board.play((1, 2), BLACK) == 1
    assert board.ko_point == board.point(1, 1)
    assert board.why_illegal((1, 1), WHITE) == "ko"
    with pytest.raises(IllegalMoveError, match="ko"):
        board.play((1, 1), WHITE)
    board.play((4, 4), WHITE)  # a ko threat elsewhere
    board.play((4, 0), BLACK)
    assert board.ko_point == -1
    assert board.play((1, 1), WHITE) == 1  # the retake, now legal, is a ko again
    assert board.ko_point == board.point(1, 2)


def test_the_ko_ban_is_only_the_other_sides_next_move():
    board = Board.from_rows([".XO..",
                             "XO.O.",
                             ".XO..",
                             ".....",
                             "....."])
    board.play((1, 2), BLACK)
    assert board.why_illegal((1, 1), WHITE) == "ko"
    assert board.why_illegal((1, 1), BLACK) is None  # the capturer may fill the point
    board.to_move = BLACK  # the move handed back to the capturer: no ban left for anyone
    assert board.ko_point == -1
    board.to_move = WHITE
    assert board.why_illegal((1, 1), WHITE) is None


def test_capturing_two_stones_makes_no_ko():
    board = Board.from_rows([".OOX.",
                             "OXX..",
                             ".....",
                             ".....",
                             "....."])
    assert board.play((0, 0), BLACK) == 2
    assert board.ko_point == -1
    assert board.liberties((0, 0)) == 1
    assert board.play((0, 1), WHITE) == 1  # taking back one stone is no ko retake


def test_positional_superko_forbids_repeating_a_position_that_simple_ko_allows():
    rows = [".XO..", "XO.O.", ".XO..", ".....", "....."]
    for superko, expected in ((False, None), (True, "superko")):
        board = Board.from_rows(rows, superko=superko)
        board.play((1, 2), BLACK)
        board.play(PASS, WHITE)  # a pass clears simple ko ...
        board.play(PASS, BLACK)
        # ... so retaking would recreate the starting position
        assert board.why_illegal((1, 1), WHITE) == expected
        assert (board.point(1, 1) in board.legal_moves(WHITE)) == (expected is None)


def test_occupied_points_and_bad_arguments_are_refused():
    board = Board(5)
    board.play((2, 2))
    assert board.why_illegal((2, 2)) == "occupied"
    with pytest.raises(ValueError, match="off a 5×5 board"):
        board.play((5, 0))
    with pytest.raises(ValueError, match="colour"):
        board.play((0, 0), 3)
    with pytest.raises(ValueError, match="size"):
        Board(1)
    with pytest.raises(ValueError, match="square"):
        Board.from_rows(["X.", "..."])
    with pytest.raises(IllegalMoveError, match="not on an empty point"):
        Board(5).place_setup([(1, 1), (1, 1)], BLACK)


def test_undo_and_copy_restore_and_isolate_positions():
    board = Board(9, keep_undo=True)
    board.play((2, 2))
    before = board.copy()
    board.play((2, 3))
    board.play(PASS)
    board.undo()
    board.undo()
    assert np.array_equal(board.state, before.state) and np.array_equal(board.meta, before.meta)
    assert np.array_equal(board.libs, before.libs)
    before.play((5, 5))
    assert board.colour_at((5, 5)) == EMPTY
    with pytest.raises(IndexError):
        Board(9).undo()


def test_passes_are_counted_and_the_turn_changes():
    board = Board(9)
    board.play(None)
    board.play(PASS)
    assert board.consecutive_passes == 2 and board.to_move == BLACK and board.move_number == 2
    board.play((0, 0))
    assert board.consecutive_passes == 0


def test_sensible_moves_exclude_true_eyes_but_not_false_ones():
    board = Board.from_rows([".X.X.",
                             "X.X..",
                             ".X...",
                             ".....",
                             "....."])
    sensible = set(board.sensible_moves(BLACK).tolist())
    legal = set(board.legal_moves(BLACK).tolist())
    assert board.is_true_eye((1, 1), BLACK) and board.is_true_eye((0, 0), BLACK)
    assert board.point(1, 1) not in sensible and board.point(0, 0) not in sensible
    assert board.point(1, 1) in legal and board.point(0, 0) in legal
    assert board.is_true_eye((0, 2), BLACK)  # an edge eye with no white diagonal
    # a white stone on a diagonal makes the edge eye false (one is enough off the centre)
    board.play((1, 3), WHITE)
    assert not board.is_true_eye((0, 2), BLACK)
    # in the centre one hostile diagonal is allowed, two are not
    centre = Board.from_rows([".....", "..X..", ".X.X.", "..X..", "....."])
    assert centre.is_true_eye((2, 2), BLACK)
    centre.play((1, 1), WHITE)
    assert centre.is_true_eye((2, 2), BLACK)
    centre.play((3, 3), WHITE)
    assert not centre.is_true_eye((2, 2), BLACK)


def test_tromp_taylor_area_counts_stones_and_single_colour_regions():
    board = Board.from_rows([".X.O.",
                             "XX.OO",
                             "..XO.",
                             "XXO.O",
                             ".XOO."])
    # black: 7 stones + (0,0) + (2,0),(2,1) + (4,0) = 11; white: 8 stones + (0,4), (2,4),
    # (3,3), (4,4) = 12; (0,2),(1,2) touch both colours: neutral
    assert board.area() == (11, 12)
    assert board.score(komi=0.5) == pytest.approx(-1.5)
    # with the white stone on (0,3) dead, its point and (0,4) join the neutral region
    # (it touches black and white): white loses a stone and a point
    assert board.area(dead=[(0, 3)]) == (11, 10)


def test_scoring_an_empty_board_gives_nobody_anything():
    assert Board(9).area() == (0, 0)


def test_play_sequence_matches_play_one_move_at_a_time():
    rng = np.random.default_rng(3)
    board, moves, colours = Board(9), [], []
    for _ in range(60):
        legal = board.legal_moves()
        move = int(rng.choice(legal)) if legal.size else PASS
        moves.append(move)
        colours.append(board.to_move)
        board.play(move)
    replay = Board(9)
    assert replay.play_sequence(moves, colours) == len(moves)
    assert np.array_equal(replay.state, board.state) and np.array_equal(replay.meta, board.meta)
    assert Board(9).play_sequence([0, 0], [BLACK, WHITE]) == 1  # stops at the illegal move


@njit(cache=True)
def _flood_liberties(colours, neighbours):
    """Liberties of the group at each stone by flood fill from scratch (int64 (n,), 0 on empty
    points): the slow reference the incremental counts are tested against."""
    n = colours.shape[0]
    result = np.zeros(n, np.int64)
    group = np.full(n, -1, np.int64)
    stack = np.empty(n, np.int64)
    members = np.empty(n, np.int64)
    marked = np.zeros(n, np.bool_)
    for start in range(n):
        if colours[start] == 0 or group[start] >= 0:
            continue
        top = 0
        stack[0] = start
        group[start] = start
        count = 0
        liberties = 0
        while top >= 0:
            stone = stack[top]
            top -= 1
            members[count] = stone
            count += 1
            for k in range(4):
                q = neighbours[stone, k]
                if q < 0:
                    break
                if colours[q] == 0 and not marked[q]:
                    marked[q] = True
                    liberties += 1
                elif colours[q] == colours[start] and group[q] < 0:
                    group[q] = start
                    top += 1
                    stack[top] = q
        for i in range(count):
            result[members[i]] = liberties
            for k in range(4):
                q = neighbours[members[i], k]
                if q >= 0:
                    marked[q] = False
    return result


def _reference_play(colours, size, point, colour, previous):
    """A flood-fill Go rule for one move: the new colours, or None if suicide or a ko retake
    (recreating the position before the opponent's last move)."""
    grid = colours.reshape(size, size).copy()
    row, col = divmod(point, size)
    grid[row, col] = colour

    def group_and_liberties(r, c):
        seen, stack, liberties = {(r, c)}, [(r, c)], set()
        while stack:
            y, x = stack.pop()
            for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                ny, nx = y + dy, x + dx
                if 0 <= ny < size and 0 <= nx < size:
                    if grid[ny, nx] == EMPTY:
                        liberties.add((ny, nx))
                    elif grid[ny, nx] == grid[r, c] and (ny, nx) not in seen:
                        seen.add((ny, nx))
                        stack.append((ny, nx))
        return seen, liberties

    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        ny, nx = row + dy, col + dx
        if 0 <= ny < size and 0 <= nx < size and grid[ny, nx] == 3 - colour:
            stones, liberties = group_and_liberties(ny, nx)
            if not liberties:
                for y, x in stones:
                    grid[y, x] = EMPTY
    if not group_and_liberties(row, col)[1]:
        return None
    if previous is not None and np.array_equal(grid.ravel(), previous):
        return None
    return grid.ravel()


def test_random_games_keep_incremental_liberties_equal_to_a_flood_fill():
    rng = np.random.default_rng(12)
    checked = 0
    for game in range(300):
        size = 9 if game % 3 else int(rng.integers(2, 8))
        board = Board(size)
        history = [board.state[board_core.COLOUR].copy()]
        for _ in range(int(rng.integers(20, 130))):
            legal = board.legal_moves()
            if legal.size == 0:
                break
            colour = board.to_move
            # a few random points: the board and the reference agree on their legality
            for point in rng.integers(0, size * size, 3):
                if board.colour_at(int(point)) == EMPTY:
                    expected = _reference_play(history[-1], size, int(point), colour,
                                               history[-2] if len(history) > 1 else None)
                    assert board.is_legal(int(point)) == (expected is not None)
            move = int(rng.choice(legal))
            expected = _reference_play(history[-1], size, move, colour,
                                       history[-2] if len(history) > 1 else None)
            board.play(move)
            colours = board.state[board_core.COLOUR]
            assert expected is not None and np.array_equal(colours, expected)
            flood = _flood_liberties(colours.copy(), board.neighbours)
            assert np.array_equal(board.liberty_counts(), flood)
            history.append(colours.copy())
            checked += 1
    assert checked > 10000
