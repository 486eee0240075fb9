"""The least replay that finds where a game record stops being legal: occupancy and captures.

SGF records hold recording glitches: a move on an occupied point, now and then a suicide.
The reader truncates a game at its first such move. This replay keeps only stones and
captures (no ko, no scoring); the rules engine lives in ``cnnlab.apps.go.board``.
"""

from __future__ import annotations

__all__ = ["replay_until_illegal"]

_EMPTY, _BLACK, _WHITE, _EDGE = 0, 1, 2, 3


def _neighbours(width: int, size: int) -> list:
    """For each point of the bordered board (width = size + 2), its four neighbours."""
    table = [()] * (width * width)
    for row in range(1, size + 1):
        for column in range(1, size + 1):
            p = row * width + column
            table[p] = (p - width, p + width, p - 1, p + 1)
    return table


def _captured_group(board: bytearray, start: int, neighbours: list) -> list:
    """The stones of ``start``'s group if it has no liberty, else [] (stops at the first one)."""
    colour = board[start]
    group, stack, seen = [], [start], {start}
    while stack:
        point = stack.pop()
        group.append(point)
        for n in neighbours[point]:
            value = board[n]
            if value == _EMPTY:
                return []
            if value == colour and n not in seen:
                seen.add(n)
                stack.append(n)
    return group


def replay_until_illegal(size: int, black, white, moves) -> tuple[int, str]:
    """How many of ``moves`` are legal as to occupancy and suicide, from setup stones
    ``black``/``white`` ((row, column) points), and why the next one is not ("occupied
    point", "suicide"; "" when all are); moves are (colour "b"/"w", point or None)."""
    width = size + 2
    board = bytearray([_EDGE]) * (width * width)
    for row in range(size):
        for column in range(size):
            board[(row + 1) * width + column + 1] = _EMPTY
    for stones, colour in ((black, _BLACK), (white, _WHITE)):
        for row, column in stones:
            board[(row + 1) * width + column + 1] = colour
    neighbours = _neighbours(width, size)
    for number, (colour, point) in enumerate(moves):
        if point is None:
            continue
        p = (point[0] + 1) * width + point[1] + 1
        if board[p] != _EMPTY:
            return number, "occupied point"
        own = _BLACK if colour == "b" else _WHITE
        other = _WHITE if own == _BLACK else _BLACK
        board[p] = own
        for n in neighbours[p]:
            if board[n] == other:
                for stone in _captured_group(board, n, neighbours):
                    board[stone] = _EMPTY
        if _captured_group(board, p, neighbours):
            return number, "suicide"  # no liberty left after the captures
    return len(moves), ""
