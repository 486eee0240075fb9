"""Training positions from whole games: compact codes per point, expanded per batch.

Every move of a game that is not a pass gives one position: the board before the move, from
the mover's side (``features.encode``), and the move as the policy's index ``row · 19 + col``
(the board, the SGF reader and the policy share the same (row, col) from the top left, so
no conversion is needed anywhere). Positions are stored compactly as uint8 "images"
(N, C, 19, 19), so that a ``cnnlab.data.ArrayDataset`` holds them and ``cnnlab.training.fit``
trains from them with checkpoints and ``resume``:

==========  ==  ====================================================================  ========
encoding    C   per point                                                             planes
==========  ==  ====================================================================  ========
``"48"``    2   ``features.pack``'s uint16 code, low byte then high byte (lossless)    48
``"raw"``   1   the packed code of a stone (0..127: colour, turns since, liberties),    20
                128 for an empty point (the raw board needs nothing else)
==========  ==  ====================================================================  ========

So the 48-plane positions take 722 bytes each and the raw ones 361: the ~3.6 M training
positions of Fox pro + 9-dan fit in memory (2.6 GB / 1.3 GB); the float planes exist for
one batch at a time (``PlaneTransform``, the DataLoader's ``transform``), with one of the 8
board symmetries drawn per sample (seeded per epoch) for training and none for evaluation.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from cnnlab.apps.go import features
from cnnlab.apps.go.board import BLACK, PASS, WHITE, Board, IllegalMoveError
from cnnlab.data import ArrayDataset, DataLoader

__all__ = [
    "BOARD_SIZE",
    "ENCODINGS",
    "PlaneTransform",
    "Positions",
    "encode_games",
    "game_positions",
    "loader",
    "planes",
    "policy_index",
]

BOARD_SIZE = 19
POINTS = BOARD_SIZE * BOARD_SIZE
#: encoding → (stored channels per point, input planes of the network)
ENCODINGS = {"48": (2, features.PLANES), "raw": (1, features.RAW_PLANES)}
_EMPTY_RAW = 128  # features' first packed code of an empty point, with no move features
_COLOURS = {"b": BLACK, "w": WHITE}


def _check_encoding(encoding) -> str:
    encoding = str(encoding)
    if encoding not in ENCODINGS:
        raise ValueError(f"positions: encoding must be one of {sorted(ENCODINGS)}, "
                         f"received {encoding!r}")
    return encoding


def encoding_of_planes(planes: int) -> str:
    """The encoding whose expansion gives ``planes`` input planes (48 → "48", 20 → "raw")."""
    for name, (_, count) in ENCODINGS.items():
        if count == planes:
            return name
    raise ValueError(f"positions: no encoding gives {planes} planes "
                     f"(known: {[count for _, count in ENCODINGS.values()]})")


def policy_index(point) -> int:
    """The policy's output index of a (row, col) point: ``row · 19 + col``."""
    row, col = point
    return int(row) * BOARD_SIZE + int(col)


def compact(codes: np.ndarray, encoding: str) -> np.ndarray:
    """uint8 (N, C, 19, 19) stored form of ``features.encode`` codes (N, 9, 19, 19)."""
    packed = features.pack(codes)
    if encoding == "raw":
        return np.minimum(packed, _EMPTY_RAW).astype(np.uint8)[:, None]
    return np.stack([(packed & 0xFF).astype(np.uint8), (packed >> 8).astype(np.uint8)], axis=1)


def planes(stored, encoding: str) -> np.ndarray:
    """float32 (N, 48 or 20, 19, 19) input planes from stored uint8 (N, C, 19, 19)."""
    encoding = _check_encoding(encoding)
    stored = np.asarray(stored)
    channels = ENCODINGS[encoding][0]
    if stored.dtype != np.uint8 or stored.ndim != 4 or stored.shape[1] != channels:
        raise ValueError(f"positions.planes: expected uint8 (N, {channels}, S, S) for encoding "
                         f"{encoding!r}, received {stored.dtype} {stored.shape}")
    packed = stored[:, 0].astype(np.uint16)
    if encoding == "48":
        packed |= stored[:, 1].astype(np.uint16) << 8
    elif packed.size and packed.max() > _EMPTY_RAW:
        raise ValueError("positions.planes: a raw-board code above 128")
    return features.expand(features.unpack(packed), raw=encoding == "raw")


def board_planes(board: Board, encoding: str) -> np.ndarray:
    """float32 (1, planes, 19, 19) of one board for its side to move (GTP, show)."""
    encoding = _check_encoding(encoding)
    return planes(compact(features.encode(board)[None], encoding), encoding)


def game_positions(game, encoding: str = "48") -> tuple[np.ndarray, np.ndarray, str]:
    """(stored uint8 (M, C, 19, 19), moves int64 (M,), why the replay stopped or "").

    Setup stones are placed first; each side plays as recorded (two moves of one colour
    in a row: ``play_in_turn``). A move the rules forbid that the reader let through (a
    ko retake) ends the game there. Raw positions skip the ladder search (not used).
    """
    encoding = _check_encoding(encoding)
    board = Board(game.size)
    if game.size != BOARD_SIZE:
        raise ValueError(f"positions: {game.source}: a {game.size}×{game.size} board; the "
                         f"policy network needs {BOARD_SIZE}×{BOARD_SIZE}")
    stopped = ""
    try:
        board.place_setup(game.setup_black, BLACK)
        board.place_setup(game.setup_white, WHITE)
    except IllegalMoveError:
        return _empty(encoding), np.zeros(0, np.int64), "bad setup"
    max_nodes = 1 if encoding == "raw" else features.DEFAULT_MAX_NODES
    codes, moves = [], []
    for number, (colour, point) in enumerate(game.moves):
        play_in_turn(board, _COLOURS[colour], first=number == 0)
        if point is None:
            board.play(PASS)
            continue
        stopped = board.why_illegal(point) or ""
        if stopped:
            break
        codes.append(features.encode(board, max_nodes))
        moves.append(policy_index(point))
        board.play(point)
    if not codes:
        return _empty(encoding), np.zeros(0, np.int64), stopped
    return compact(np.stack(codes), encoding), np.asarray(moves, np.int64), stopped


def play_in_turn(board: Board, colour: int, first: bool = False) -> None:
    """Make ``colour`` the side to move. Records hold two moves of one colour in a row now
    and then: the missing move is taken as a pass (which also lifts a ko ban, as it should:
    the ban was the other side's), except before the first move (white starts a handicap
    game), where the side to move is just set."""
    if board.to_move != colour:
        if first:
            board.to_move = colour
        else:
            board.play(PASS)


def _empty(encoding):
    return np.zeros((0, ENCODINGS[encoding][0], BOARD_SIZE, BOARD_SIZE), np.uint8)


@dataclasses.dataclass
class Positions:
    """Positions of some games: ``stored`` uint8 (N, C, 19, 19), ``moves`` int64 (N,),
    ``encoding``, the number of ``games``, games stopped early by reason, encoding time."""

    stored: np.ndarray
    moves: np.ndarray
    encoding: str
    games: int = 0
    stopped: dict = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.moves)

    @property
    def nbytes(self) -> int:
        return int(self.stored.nbytes + self.moves.nbytes)

    def dataset(self, name: str = "go positions") -> ArrayDataset:
        """An ArrayDataset of the stored codes (classes: the 361 points)."""
        return ArrayDataset(self.stored, self.moves, [str(i) for i in range(POINTS)], name,
                            mean=0.0, std=1.0)

    def planes(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        return planes(self.stored[start:stop], self.encoding)


def encode_games(games, encoding: str = "48", progress=None) -> Positions:
    """All positions of ``games`` (whole games, in order); ``progress(done, total)`` is
    called after each game when given."""
    encoding = _check_encoding(encoding)
    games = list(games)
    start = time.perf_counter()
    stored, moves, stopped = [], [], {}
    for number, game in enumerate(games):
        codes, labels, why = game_positions(game, encoding)
        stored.append(codes)
        moves.append(labels)
        if why:
            stopped[why] = stopped.get(why, 0) + 1
        if progress is not None:
            progress(number + 1, len(games))
    return Positions(np.concatenate(stored) if stored else _empty(encoding),
                     np.concatenate(moves) if moves else np.zeros(0, np.int64), encoding,
                     len(games), stopped, time.perf_counter() - start)


class PlaneTransform:
    """A DataLoader ``transform``: stored codes → float planes, with a random one of the 8
    board symmetries per sample (codes and move together) when the loader gives an ``rng``
    (training) and ``augment`` is on; none in evaluation."""

    def __init__(self, encoding: str, augment: bool = True):
        self.encoding = _check_encoding(encoding)
        self.augment = bool(augment)

    def __call__(self, stored, moves, rng):
        stored, moves = np.asarray(stored), np.asarray(moves, np.int64)
        if rng is not None and self.augment:
            stored, moves = symmetries(stored, moves, rng)
        return planes(stored, self.encoding), moves

    def __repr__(self) -> str:
        return f"PlaneTransform({self.encoding!r}, augment={self.augment})"


def symmetries(stored, moves, rng) -> tuple[np.ndarray, np.ndarray]:
    """Each sample turned/mirrored by its own random symmetry (``features.transform``)."""
    chosen = rng.integers(0, features.SYMMETRIES, len(moves))
    stored, moves = stored.copy(), moves.copy()
    size = stored.shape[-1]
    for symmetry in range(1, features.SYMMETRIES):
        picked = np.flatnonzero(chosen == symmetry)
        if len(picked):
            stored[picked] = features.transform(stored[picked], symmetry)
            moves[picked] = features.transform_point(moves[picked], symmetry, size)
    return stored, moves


def loader(positions: Positions, batch_size: int = 64, seed: int = 0, shuffle: bool = True,
           augment: bool = True) -> DataLoader:
    """A DataLoader over ``positions`` that ``fit`` trains from (and ``resume``s: epoch e's
    order and symmetries depend only on (seed, e))."""
    return DataLoader(positions.dataset(), batch_size=batch_size, shuffle=shuffle, seed=seed,
                      transform=PlaneTransform(positions.encoding, augment))


def top_k(logits: np.ndarray, moves: np.ndarray, ks=(1, 5)) -> dict:
    """{k: how many moves are among the k largest logits} for logits (N, 361)."""
    order = np.argsort(-logits, axis=1)
    return {k: int((order[:, :k] == moves[:, None]).any(axis=1).sum()) for k in ks}
