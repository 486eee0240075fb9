"""A Go board: the rules (captures, suicide illegal, simple ko, positional superko as an
option, passes), legal and sensible moves, copy/undo and Tromp–Taylor area scoring.

Points are flat indices ``row · size + col`` with row 0 at the top and column 0 at the left
(SGF's order: ``aa`` is point 0), or ``(row, col)`` pairs; ``PASS`` (−1) or ``None`` is a
pass. Colours are ``BLACK`` (1) and ``WHITE`` (2); ``EMPTY`` is 0.

Groups and liberties are kept up to date incrementally by the compiled kernels in
``board_core`` (see there for the arrays); nothing flood-fills during play.

Example::

    board = Board(9)
    board.play((2, 2))            # black, the side to move
    board.play(board.point(3, 3))  # white
    board.liberties((2, 2))        # 4
"""

from __future__ import annotations

from collections import deque

import numpy as np

from cnnlab._checks import check_int
from cnnlab.apps.go import board_core as core
from cnnlab.apps.go import ladder
from cnnlab.apps.go.board_core import BLACK, EMPTY, WHITE
from cnnlab.errors import CnnlabError

__all__ = ["BLACK", "EMPTY", "PASS", "WHITE", "Board", "IllegalMoveError", "opponent"]

PASS = -1
MIN_SIZE, MAX_SIZE = 2, 25
# setup stones (handicap) count as placed long ago: ≥ 8 turns for the "turns since" planes
SETUP_MOVE_NUMBER = -1000

_TABLES: dict = {}  # per board size: neighbour/diagonal/zobrist tables, the ladder workspace


class IllegalMoveError(CnnlabError, ValueError):
    """A move that the rules forbid (occupied point, suicide, ko, superko); names the reason."""


def opponent(colour: int) -> int:
    return 3 - colour


def _tables(size: int):
    """(neighbours, diagonals, zobrist) of a board size, built once: neighbours and diagonals
    int32 (n, 4), on-board points first then −1; zobrist int64 (n, 3), seeded per size."""
    if size not in _TABLES:
        n = size * size
        neighbours = np.full((n, 4), -1, np.int32)
        diagonals = np.full((n, 4), -1, np.int32)
        for row in range(size):
            for col in range(size):
                for table, steps in ((neighbours, ((-1, 0), (0, -1), (0, 1), (1, 0))),
                                     (diagonals, ((-1, -1), (-1, 1), (1, -1), (1, 1)))):
                    inside = [(row + dr) * size + col + dc for dr, dc in steps
                              if 0 <= row + dr < size and 0 <= col + dc < size]
                    table[row * size + col, :len(inside)] = inside
        rng = np.random.default_rng(size)
        zobrist = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, (n, 3), dtype=np.int64)
        zobrist[:, EMPTY] = 0
        _TABLES[size] = neighbours, diagonals, zobrist
    return _TABLES[size]


class Board:
    """A position and the side to move, with the rules of play.

    Args:
        size: points per side, 2..25 (default 19).
        superko: forbid any move that repeats an earlier whole-board position (positional
            superko), on top of simple ko. Default False (simple ko only, as in most records).
        keep_undo: remember each position so that ``undo`` can step back (GTP's ``undo``);
            off by default so that replaying games stays fast.
    """

    def __init__(self, size: int = 19, superko: bool = False, keep_undo: bool = False):
        self.size = check_int(size, "Board", "size", MIN_SIZE, MAX_SIZE)
        self.superko = bool(superko)
        self.keep_undo = bool(keep_undo)
        n = self.size * self.size
        self.neighbours, self.diagonals, self.zobrist = _tables(self.size)
        self.state = np.zeros((5, n), np.int32)
        self.state[core.HEAD] = -1
        self.libs = np.zeros((n, (n + 63) // 64), np.uint64)
        self.meta = np.zeros(core.META_LENGTH, np.int64)
        self.meta[core.TO_MOVE] = BLACK
        self.meta[core.KO] = -1
        self.history: set[int] = {0}  # hashes of every position so far (superko)
        self._undo: list[tuple] = []

    # --- coordinates -------------------------------------------------------------------
    @property
    def points(self) -> int:
        return self.size * self.size

    def point(self, row: int, col: int) -> int:
        """The flat index of (row, col); ValueError off the board."""
        if not (0 <= row < self.size and 0 <= col < self.size):
            raise ValueError(f"Board: ({row}, {col}) is off a {self.size}×{self.size} board")
        return row * self.size + col

    def as_point(self, move) -> int:
        """A move as a flat index or ``PASS``: accepts an int, a (row, col) pair or None."""
        if move is None:
            return PASS
        if isinstance(move, tuple):
            return self.point(*move)
        move = int(move)
        if move != PASS and not 0 <= move < self.points:
            raise ValueError(f"Board: point {move} is off a {self.size}×{self.size} board")
        return move

    def row_col(self, point: int) -> tuple[int, int]:
        return divmod(int(point), self.size)

    # --- state -------------------------------------------------------------------------
    @property
    def to_move(self) -> int:
        return int(self.meta[core.TO_MOVE])

    @to_move.setter
    def to_move(self, colour: int):
        colour = self._colour(colour)
        if colour != self.meta[core.TO_MOVE]:
            # the ko ban is the other side's, for its next move only: handing the move to the
            # capturer (a record's two moves in a row, GTP's play) lifts it
            self.meta[core.KO] = -1
        self.meta[core.TO_MOVE] = colour

    @property
    def ko_point(self) -> int:
        """The point the side to move may not retake on, or −1."""
        return int(self.meta[core.KO])

    @property
    def move_number(self) -> int:
        return int(self.meta[core.MOVE_NUMBER])

    @property
    def consecutive_passes(self) -> int:
        return int(self.meta[core.PASSES])

    @property
    def hash(self) -> int:
        return int(self.meta[core.HASH])

    def captures(self, colour: int) -> int:
        """Stones captured so far by ``colour``."""
        return int(self.meta[core.CAPTURES + self._colour(colour) - 1])

    def colours(self) -> np.ndarray:
        """int8 (size, size): 0 empty, 1 black, 2 white."""
        return self.state[core.COLOUR].reshape(self.size, self.size).astype(np.int8)

    def colour_at(self, move) -> int:
        return int(self.state[core.COLOUR, self.as_point(move)])

    def liberties(self, move) -> int:
        """Liberties of the group on ``move`` (0 on an empty point)."""
        return int(core.liberty_count(self.state, self.libs, self.as_point(move)))

    def liberty_counts(self) -> np.ndarray:
        """int64 (n,): each point's group liberties (0 on empty points), from the incremental sets."""
        return np.array([core.liberty_count(self.state, self.libs, p) for p in range(self.points)])

    def group(self, move) -> list[int]:
        """The points of the group on ``move``, sorted (empty for an empty point)."""
        point = self.as_point(move)
        head = self.state[core.HEAD, point]
        if head < 0:
            return []
        stones, stone = [], head
        while True:
            stones.append(int(stone))
            stone = self.state[core.NEXT, stone]
            if stone == head:
                return sorted(stones)

    def _colour(self, colour) -> int:
        if colour not in (BLACK, WHITE):
            raise ValueError(f"Board: colour must be BLACK (1) or WHITE (2), received {colour!r}")
        return int(colour)

    # --- play --------------------------------------------------------------------------
    def why_illegal(self, move, colour: int | None = None) -> str | None:
        """None if ``colour`` (default: the side to move) may play ``move``, else the reason."""
        point = self.as_point(move)
        colour = self.to_move if colour is None else self._colour(colour)
        if point == PASS:
            return None
        if self.state[core.COLOUR, point] != EMPTY:
            return "occupied"
        if point == self.ko_point and colour == self.to_move:
            return "ko"
        if not core.is_legal(self.state, self.libs, self.meta, self.neighbours, point, colour):
            return "suicide"
        if self.superko and core.hash_after(self.state, self.libs, self.meta, self.neighbours,
                                            self.zobrist, point, colour) in self.history:
            return "superko"
        return None

    def is_legal(self, move, colour: int | None = None) -> bool:
        return self.why_illegal(move, colour) is None

    def play(self, move, colour: int | None = None) -> int:
        """Play ``move`` for ``colour`` (default: the side to move); returns the stones captured.

        Raises IllegalMoveError (nothing changes) on an occupied point, suicide, ko or superko.
        """
        point = self.as_point(move)
        colour = self.to_move if colour is None else self._colour(colour)
        if self.superko:
            reason = self.why_illegal(point, colour)
            if reason is not None:
                raise IllegalMoveError(f"Board: {self._name(point)} is illegal for "
                                       f"{'black' if colour == BLACK else 'white'} ({reason})")
        if self.keep_undo:
            self._undo.append(self._snapshot())
        if point == PASS:
            self._pass(colour)
            return 0
        captured = core.play(self.state, self.libs, self.meta, self.neighbours, self.zobrist,
                             point, colour)
        if captured < 0:
            if self.keep_undo:
                self._undo.pop()
            raise IllegalMoveError(f"Board: {self._name(point)} is illegal for "
                                   f"{'black' if colour == BLACK else 'white'} "
                                   f"({self.why_illegal(point, colour)})")
        if self.superko:
            self.history.add(self.hash)
        return int(captured)

    def _pass(self, colour: int):
        self.meta[core.KO] = -1
        self.meta[core.PASSES] += 1
        self.meta[core.MOVE_NUMBER] += 1
        self.meta[core.TO_MOVE] = opponent(colour)

    def _name(self, point: int) -> str:
        return "pass" if point == PASS else f"point {point} {self.row_col(point)}"

    def play_sequence(self, moves, colours) -> int:
        """Play many moves in one compiled loop (points or −1 for pass, and their colours);
        returns how many were played before the first illegal one. Superko is not checked."""
        points = np.asarray(moves, np.int64)
        colours = np.asarray(colours, np.int64)
        if points.shape != colours.shape or points.ndim != 1:
            raise ValueError("Board.play_sequence: moves and colours must be 1-D and of one length")
        if points.size and (points.min() < PASS or points.max() >= self.points
                            or not np.isin(colours, (BLACK, WHITE)).all()):
            raise ValueError("Board.play_sequence: a point is off the board or a colour is not 1 or 2")
        return int(core.play_sequence(self.state, self.libs, self.meta, self.neighbours,
                                      self.zobrist, points, colours))

    def place_setup(self, moves, colour: int):
        """Put stones on the board without a move (handicap, SGF AB/AW): no captures are
        expected; a stone left without liberties, or on an occupied point, is an error."""
        colour = self._colour(colour)
        to_move, number = self.meta[core.TO_MOVE], self.meta[core.MOVE_NUMBER]
        for move in moves:
            point = self.as_point(move)
            if point == PASS or self.state[core.COLOUR, point] != EMPTY:
                raise IllegalMoveError(f"Board: setup stone on {self._name(point)} is not on an empty point")
            self.meta[core.MOVE_NUMBER] = SETUP_MOVE_NUMBER
            captured = core.place(self.state, self.libs, self.meta, self.neighbours, self.zobrist,
                                  point, colour)
            if captured or core.liberty_count(self.state, self.libs, point) == 0:
                raise IllegalMoveError(f"Board: setup stone on {self._name(point)} captures or has no liberty")
        self.meta[core.TO_MOVE], self.meta[core.MOVE_NUMBER] = to_move, number
        self.meta[core.KO] = -1
        self.history.add(self.hash)

    # --- copy / undo -------------------------------------------------------------------
    def _snapshot(self):
        return self.state.copy(), self.libs.copy(), self.meta.copy(), set(self.history)

    def copy(self) -> Board:
        """An independent board in the same position (the undo stack is not copied)."""
        other = Board.__new__(Board)
        other.__dict__.update(self.__dict__)
        other.state, other.libs, other.meta, other.history = self._snapshot()
        other._undo = []
        return other

    def undo(self):
        """Step back one move (needs ``keep_undo=True``); IndexError when there is none."""
        if not self._undo:
            raise IndexError("Board.undo: no move to undo")
        self.state, self.libs, self.meta, self.history = self._undo.pop()

    # --- move lists ----------------------------------------------------------------------
    def legal_moves(self, colour: int | None = None) -> np.ndarray:
        """int64: the points ``colour`` (default the side to move) may play (no pass)."""
        return np.flatnonzero(self._mask(colour, False))

    def sensible_moves(self, colour: int | None = None) -> np.ndarray:
        """int64: legal points that do not fill one of the player's own true eyes."""
        return np.flatnonzero(self._mask(colour, True))

    def ladder_capture(self, move, colour: int | None = None,
                       max_nodes: int = ladder.DEFAULT_MAX_NODES) -> bool:
        """Whether ``move`` ataris an opponent group that a ladder then captures (``ladder``)."""
        return self._ladder(ladder.ladder_capture_at, move, colour, max_nodes)

    def ladder_escape(self, move, colour: int | None = None,
                      max_nodes: int = ladder.DEFAULT_MAX_NODES) -> bool:
        """Whether ``move`` saves an own group in atari from every ladder (``ladder``)."""
        return self._ladder(ladder.ladder_escape_at, move, colour, max_nodes)

    def _ladder(self, reader, move, colour, max_nodes):
        point = self.as_point(move)
        colour = self.to_move if colour is None else self._colour(colour)
        max_nodes = check_int(max_nodes, "Board", "max_nodes", 1)
        if point == PASS:
            return False
        return bool(reader(self.state, self.libs, self.meta, self.neighbours, self.zobrist,
                           point, colour, max_nodes, self.ladder_workspace()))

    def ladder_workspace(self):
        """The ladder reader's search stack (3 MB on 19×19), allocated once per board size
        and shared: allocating it per position cost as much as the reading itself."""
        key = ("workspace", self.size)
        if key not in _TABLES:
            _TABLES[key] = ladder.make_workspace(self.state, self.libs, self.meta)
        return _TABLES[key]

    def is_true_eye(self, move, colour: int) -> bool:
        return bool(core.is_true_eye(self.state, self.neighbours, self.diagonals,
                                     self.as_point(move), self._colour(colour)))

    def _mask(self, colour, sensible_only):
        colour = self.to_move if colour is None else self._colour(colour)
        mask = core.legal_mask(self.state, self.libs, self.meta, self.neighbours, self.diagonals,
                               colour, sensible_only)
        if self.superko:
            for point in np.flatnonzero(mask):
                if core.hash_after(self.state, self.libs, self.meta, self.neighbours,
                                   self.zobrist, point, colour) in self.history:
                    mask[point] = False
        return mask

    # --- scoring -------------------------------------------------------------------------
    def area(self, dead=()) -> tuple[int, int]:
        """Tromp–Taylor area (black, white): each colour's stones plus the empty regions that
        reach only that colour. ``dead`` stones (points, settled elsewhere) are taken off
        first; by default every stone is alive."""
        colours = self.state[core.COLOUR].copy()
        for move in dead:
            colours[self.as_point(move)] = EMPTY
        area = [0, int((colours == BLACK).sum()), int((colours == WHITE).sum())]
        seen = np.zeros(self.points, bool)
        for start in np.flatnonzero(colours == EMPTY):
            if seen[start]:
                continue
            region, reaches, queue = 0, set(), deque([start])
            seen[start] = True
            while queue:
                point = queue.popleft()
                region += 1
                for q in self.neighbours[point]:
                    if q < 0:
                        break
                    if colours[q] == EMPTY:
                        if not seen[q]:
                            seen[q] = True
                            queue.append(q)
                    else:
                        reaches.add(int(colours[q]))
            if len(reaches) == 1:
                area[reaches.pop()] += region
        return area[BLACK], area[WHITE]

    def score(self, komi: float = 7.5, dead=()) -> float:
        """Black's area minus white's area minus ``komi`` (positive: black wins)."""
        black, white = self.area(dead)
        return black - white - float(komi)

    def __str__(self) -> str:
        marks = {EMPTY: ".", BLACK: "X", WHITE: "O"}
        return "\n".join(" ".join(marks[int(c)] for c in row) for row in self.colours())

    @classmethod
    def from_rows(cls, rows, to_move: int = BLACK, **options) -> Board:
        """A board from text rows of ``X`` (black), ``O`` (white) and ``.`` (empty), e.g. for
        tests; stones are setup stones, placed without captures."""
        rows = [row.replace(" ", "") for row in rows]
        if any(len(row) != len(rows) or set(row) - set("XO.") for row in rows):
            raise ValueError("Board.from_rows: rows must form a square of 'X', 'O' and '.', "
                             f"received {rows!r}")
        board = cls(len(rows), **options)
        for colour, mark in ((BLACK, "X"), (WHITE, "O")):
            board.place_setup([(r, c) for r, row in enumerate(rows) for c, ch in enumerate(row)
                               if ch == mark], colour)
        board.to_move = to_move
        return board
