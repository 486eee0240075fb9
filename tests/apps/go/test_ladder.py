"""The ladder reader: a ladder that works, the same ladder broken by a breaker stone, escapes
by capture, the node bound, and agreement with a plain Python search on random positions."""

import numpy as np
import pytest

from cnnlab.apps.go.board import BLACK, EMPTY, WHITE, Board

# white (4,4) has two liberties; black ataris on (4,5) (white runs down-left) or on (5,4)
# (white runs up-right), and on an empty board both ladders reach the edge
LADDER = [".........",
          ".........",
          ".........",
          "....X....",
          "...XO....",
          ".....X...",
          ".........",
          ".........",
          "........."]


def _with(rows, row, col, mark):
    rows = [list(line) for line in rows]
    rows[row][col] = mark
    return ["".join(line) for line in rows]


def _neighbours(board, point):
    row, col = board.row_col(point)
    return [board.point(row + dr, col + dc) for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1))
            if 0 <= row + dr < board.size and 0 <= col + dc < board.size]


def _liberty_points(board, point):
    return sorted({q for s in board.group(point) for q in _neighbours(board, s)
                   if board.colour_at(q) == EMPTY})


def _oracle(board, target, attacker, defender_to_move, depth=0):
    """The ladder rule read with Board objects only: True if the group on ``target`` is captured."""
    if depth > 80:
        return False
    if defender_to_move:
        moves = set(_liberty_points(board, target))
        for stone in board.group(target):
            for q in _neighbours(board, stone):
                if board.colour_at(q) == attacker and board.liberties(q) == 1:
                    moves.update(_liberty_points(board, q))
        for move in sorted(moves):
            if board.is_legal(move, 3 - attacker):
                after = board.copy()
                after.play(move, 3 - attacker)
                liberties = after.liberties(target)
                if liberties >= 3 or (liberties == 2 and not _oracle(after, target, attacker, False,
                                                                     depth + 1)):
                    return False
        return True
    for move in _liberty_points(board, target):
        if board.is_legal(move, attacker):
            after = board.copy()
            after.play(move, attacker)
            if after.liberties(target) == 1 and _oracle(after, target, attacker, True, depth + 1):
                return True
    return False


def _oracle_capture(board, move, colour):
    if not board.is_legal(move, colour):
        return False
    for q in _neighbours(board, move):
        if board.colour_at(q) == 3 - colour and board.liberties(q) == 2:
            after = board.copy()
            after.play(move, colour)
            if after.liberties(q) == 1 and _oracle(after, q, colour, True):
                return True
    return False


def test_a_ladder_on_an_open_board_works_in_both_directions():
    board = Board.from_rows(LADDER)
    assert board.ladder_capture((4, 5)) and board.ladder_capture((5, 4))
    assert not board.ladder_capture((2, 2))  # no atari there
    after = board.copy()
    after.play((5, 4))
    assert not after.ladder_escape((4, 5))  # running only prolongs the ladder


@pytest.mark.parametrize("breaker, broken", [((2, 6), (5, 4)), ((7, 2), (4, 5))])
def test_a_ladder_breaker_on_the_path_breaks_that_ladder_only(breaker, broken):
    board = Board.from_rows(_with(LADDER, *breaker, "O"))
    other = (4, 5) if broken == (5, 4) else (5, 4)
    assert not board.ladder_capture(broken)
    assert board.ladder_capture(other)
    after = board.copy()
    after.play(broken)
    assert after.ladder_escape(other)  # white's extension now escapes


def test_a_ladder_broken_by_a_defender_stone_is_read_to_the_end():
    # a breaker far up the diagonal: the chase must run several steps before it fails
    board = Board.from_rows(_with(LADDER, 1, 7, "O"))
    assert not board.ladder_capture((5, 4))
    assert not board.ladder_capture((5, 4), max_nodes=1)  # unread: never "captured"
    assert board.ladder_capture((4, 5))
    assert not board.ladder_capture((4, 5), max_nodes=2)


def test_capturing_an_attacker_stone_in_atari_is_a_ladder_escape():
    board = Board.from_rows([".....",
                             ".XOX.",
                             ".OXO.",
                             ".....",
                             "....."], to_move=WHITE)
    assert board.liberties((1, 2)) == 1 and board.liberties((2, 2)) == 1
    assert board.ladder_escape((3, 2))  # takes the black stone: white gets two liberties and more
    assert board.ladder_escape((0, 2)) == (not _oracle(_played(board, (0, 2), WHITE),
                                                        board.point(1, 2), BLACK, False))
    assert not board.ladder_escape((4, 4))


def _played(board, move, colour):
    after = board.copy()
    after.play(move, colour)
    return after


def test_the_reader_agrees_with_a_plain_search_on_random_positions():
    """Counter-ataris, captures during the chase and edges all occur in random play."""
    rng = np.random.default_rng(5)
    compared = positive = 0
    for _ in range(25):
        board = Board(9)
        for ply in range(90):
            legal = board.legal_moves()
            if legal.size == 0:
                break
            if ply % 6 == 5:
                colour = board.to_move
                for move in legal:
                    move = int(move)
                    near_two = any(board.colour_at(q) == 3 - colour and board.liberties(q) == 2
                                   for q in _neighbours(board, move))
                    reader = board.ladder_capture(move, max_nodes=100_000)
                    if not near_two:
                        assert not reader
                        continue
                    assert reader == _oracle_capture(board, move, colour), (str(board), move)
                    # the default bound may leave a ladder unread, never invent one
                    assert board.ladder_capture(move) <= reader
                    compared += 1
                    positive += reader
            board.play(int(rng.choice(legal)))
    assert compared > 300 and positive > 20
