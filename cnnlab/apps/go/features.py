"""AlphaGo's input features (Silver et al. 2016, Extended Data Table 2), from the side to move's
perspective, in a compact form and expanded to one-hot planes per batch.

``encode(board)`` gives uint8 (9, size, size) *category indices*, one channel per feature
family (0 means "no plane set" except in ``colour``):

=====  ===================  ==========================================================  ======
chan   name                 category                                                    planes
=====  ===================  ==========================================================  ======
0      colour               0 own stone, 1 opponent stone, 2 empty                       3
1      turns_since          stones: 1..8 = moves since it was placed (8 means ≥ 8)      8
2      liberties            stones: 1..8 = liberties of its group (8 means ≥ 8)         8
3      capture_size         legal moves: 1 + opponent stones captured (≥ 7 → 8)         8
4      self_atari_size      legal moves left in atari: own stones in the new group (≤8)  8
5      liberties_after      legal moves: liberties of the new group (8 means ≥ 8)       8
6      ladder_capture       1: the move ataris a group a ladder then captures           1
7      ladder_escape        1: the move saves an own group in atari from every ladder   1
8      sensible             1: legal and not filling one of the mover's true eyes       1
=====  ===================  ==========================================================  ======

``expand(codes)`` turns (N, 9, size, size) codes into float32 (N, 48, size, size) planes in
Table 2's order: colour ×3, ones, turns since ×8, liberties ×8, capture size ×8, self-atari
size ×8, liberties after move ×8, ladder capture, ladder escape, sensibleness, zeros.
``expand(codes, raw=True)`` gives the paper's "raw board" comparison (stone colour ×3, ones,
turns since ×8, liberties ×8: 20 planes) from the same codes (only channels 0–2 are read).

``pack(codes)`` stores a position in 2 bytes per point (uint16 (size, size), 722 bytes on
19×19 instead of 3,249), using that stones carry only colour, turns and liberties and empty
points only the move families; ``unpack`` restores the codes exactly.

Stones placed without a move (handicap) count as ≥ 8 turns old. The 8 board symmetries act
on the codes' last two axes (``transform``) and on move indices (``transform_point``) alike.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numba import njit

from cnnlab.apps.go.board_core import (
    COLOUR,
    EMPTY,
    MOVE_NUMBER,
    PLAYED,
    TO_MOVE,
    analyse_move,
    is_true_eye,
    liberty_count,
)
from cnnlab.apps.go.ladder import (
    DEFAULT_MAX_NODES,
    ladder_capture_at,
    ladder_escape_at,
)

__all__ = ["CHANNELS", "PLANES", "RAW_PLANES", "SYMMETRIES", "encode", "expand", "pack",
           "transform", "transform_point", "unpack"]

CHANNELS = ("colour", "turns_since", "liberties", "capture_size", "self_atari_size",
            "liberties_after", "ladder_capture", "ladder_escape", "sensible")
# (channel, first plane, planes) of each one-hot family after colour (planes 0-2) and ones (3)
_FAMILIES = ((1, 4, 8), (2, 12, 8), (3, 20, 8), (4, 28, 8), (5, 36, 8), (6, 44, 1), (7, 45, 1),
             (8, 46, 1))
_LARGEST = np.array([2, 8, 8, 8, 8, 8, 1, 1, 1], np.uint8)
PLANES = 48
RAW_PLANES = 20
SYMMETRIES = 8


@njit(cache=True)
def _encode(state, libs, meta, neighbours, diagonals, zobrist, max_nodes, workspace, out):
    """Fill ``out`` uint8 (9, n) with the category indices of the module docstring."""
    n = state.shape[1]
    mover = meta[TO_MOVE]
    bits = np.zeros(libs.shape[1], np.uint64)
    heads = np.empty(8, np.int32)
    out[:] = 0
    for point in range(n):
        colour = state[COLOUR, point]
        if colour != EMPTY:
            out[0, point] = 0 if colour == mover else 1
            out[1, point] = min(meta[MOVE_NUMBER] - state[PLAYED, point], 8)
            out[2, point] = min(liberty_count(state, libs, point), 8)
            continue
        out[0, point] = 2
        legal, captured, liberties, size = analyse_move(state, libs, meta, neighbours, point,
                                                        mover, bits, heads)
        if not legal:
            continue
        out[3, point] = min(captured, 7) + 1
        if liberties == 1:
            out[4, point] = min(size, 8)
        out[5, point] = min(liberties, 8)
        # the readers only for moves next to a group they could concern (most points are not)
        two_liberties = atari = False
        for k in range(4):
            q = neighbours[point, k]
            if q < 0:
                break
            if state[COLOUR, q] != EMPTY:
                count = liberty_count(state, libs, q)
                two_liberties |= count == 2 and state[COLOUR, q] != mover
                atari |= count == 1
        if two_liberties:
            out[6, point] = ladder_capture_at(state, libs, meta, neighbours, zobrist, point,
                                              mover, max_nodes, workspace)
        if atari:
            out[7, point] = ladder_escape_at(state, libs, meta, neighbours, zobrist, point,
                                             mover, max_nodes, workspace)
        out[8, point] = not is_true_eye(state, neighbours, diagonals, point, mover)


def encode(board, max_nodes: int = DEFAULT_MAX_NODES) -> np.ndarray:
    """The compact features of ``board`` for its side to move: uint8 (9, size, size).

    Superko is not consulted (the planes follow simple ko, as the paper's rules do).
    """
    out = np.empty((len(CHANNELS), board.points), np.uint8)
    _encode(board.state, board.libs, board.meta, board.neighbours, board.diagonals,
            board.zobrist, int(max_nodes), board.ladder_workspace(), out)
    return out.reshape(len(CHANNELS), board.size, board.size)


def expand(codes, raw: bool = False) -> np.ndarray:
    """One-hot planes from compact codes.

    Args:
        codes: uint8 (N, 9, S, S) from ``encode`` (or (9, S, S) for one position).
        raw: the 20 "raw board" planes instead of the 48.

    Returns:
        float32 (N, 48, S, S), or (N, 20, S, S) with ``raw``.
    """
    codes = np.asarray(codes)
    single = codes.ndim == 3
    if single:
        codes = codes[None]
    codes = _check_codes(codes, "expand")
    if codes.ndim != 4:
        raise ValueError(f"features.expand: codes must be (N, {len(CHANNELS)}, S, S) or "
                         f"({len(CHANNELS)}, S, S), received {codes.shape}")
    batch, _, rows, cols = codes.shape
    out = np.zeros((batch, RAW_PLANES if raw else PLANES, rows, cols), np.float32)
    out[:, 0:3] = codes[:, 0:1] == np.arange(3, dtype=np.uint8)[:, None, None]
    out[:, 3] = 1.0
    for channel, first, planes in _FAMILIES:
        if first + planes > out.shape[1]:
            break
        out[:, first:first + planes] = codes[:, channel:channel + 1] == np.arange(
            1, planes + 1, dtype=np.uint8)[:, None, None]
    return out[0] if single else out


def transform(array, symmetry: int) -> np.ndarray:
    """One of the 8 board symmetries on the last two axes: ``symmetry`` % 4 quarter turns
    (counter-clockwise, as ``np.rot90``), after a left–right mirror when ``symmetry`` ≥ 4.
    Symmetry 0 is the identity."""
    if not 0 <= int(symmetry) < SYMMETRIES:
        raise ValueError(f"features.transform: symmetry must be 0..7, received {symmetry!r}")
    array = np.asarray(array)
    if symmetry >= 4:
        array = array[..., ::-1]
    return np.ascontiguousarray(np.rot90(array, int(symmetry) % 4, axes=(-2, -1)))


def transform_point(point, symmetry: int, size: int):
    """Where flat point(s) ``point`` go under ``transform(…, symmetry)`` on a size×size board
    (an int or an int array; a pass, −1, stays a pass)."""
    destination = _destinations(int(symmetry), int(size))
    points = np.asarray(point, np.int64)
    moved = np.where(points < 0, points, destination[np.clip(points, 0, size * size - 1)])
    return int(moved) if moved.ndim == 0 else moved


@cache
def _destinations(symmetry: int, size: int) -> np.ndarray:
    """int64 (size²,): the flat index each point moves to under the symmetry."""
    moved = transform(np.arange(size * size).reshape(size, size), symmetry).ravel()
    destination = np.empty(size * size, np.int64)
    destination[moved] = np.arange(size * size)
    destination.flags.writeable = False
    return destination


# packed codes: stones 0..127 = colour·64 + (turns − 1)·8 + (liberties − 1); empty points
# 128 + the mixed-radix number of (capture, self-atari, liberties after: 0..8 each; ladder
# capture, ladder escape, sensible: 0..1 each)
_STONE_CODES = 128
_EMPTY_RADICES = (9, 9, 9, 2, 2, 2)
PACKED_CODES = _STONE_CODES + int(np.prod(_EMPTY_RADICES))


def pack(codes) -> np.ndarray:
    """uint16 (..., S, S): each point's 9 categories in one number (``unpack`` inverts it).

    Raises ValueError when a stone has move features or an empty point has stone features
    (codes that ``encode`` never writes)."""
    codes = _check_codes(codes, "pack")
    colour = codes[..., 0, :, :].astype(np.uint16)
    stone = colour < 2
    stone_parts, empty_parts = codes[..., 1:3, :, :], codes[..., 3:, :, :]
    if ((stone[..., None, :, :] & ((stone_parts == 0) | (empty_parts > 0).any(-3, keepdims=True))).any()
            or (~stone[..., None, :, :] & (stone_parts > 0)).any()):
        raise ValueError("features.pack: a stone with move features, or an empty point with "
                         "stone features: not codes from features.encode")
    packed = np.zeros(colour.shape, np.uint16)
    for channel, radix in zip(range(3, 9), _EMPTY_RADICES, strict=True):
        packed = packed * radix + codes[..., channel, :, :]
    packed += _STONE_CODES
    stone_code = (colour * 64 + (codes[..., 1, :, :].astype(np.uint16) - 1) * 8
                  + codes[..., 2, :, :].astype(np.uint16) - 1)
    return np.where(stone, stone_code, packed).astype(np.uint16)


def unpack(packed) -> np.ndarray:
    """uint8 (..., 9, S, S) codes from ``pack``'s uint16 (..., S, S)."""
    packed = np.asarray(packed)
    if packed.dtype != np.uint16 or packed.ndim < 2:
        raise ValueError(f"features.unpack: packed codes must be uint16 (..., S, S), received "
                         f"{packed.dtype} {packed.shape}")
    if packed.size and packed.max() >= PACKED_CODES:
        raise ValueError(f"features.unpack: a packed code is {int(packed.max())}, the largest "
                         f"is {PACKED_CODES - 1}")
    return np.moveaxis(_unpack_table()[packed], -1, -3)


@cache
def _unpack_table() -> np.ndarray:
    """uint8 (PACKED_CODES, 9): the categories of each packed code."""
    table = np.zeros((PACKED_CODES, len(CHANNELS)), np.uint8)
    code = np.arange(_STONE_CODES)
    table[:_STONE_CODES, 0] = code // 64
    table[:_STONE_CODES, 1] = (code // 8) % 8 + 1
    table[:_STONE_CODES, 2] = code % 8 + 1
    rest = np.arange(PACKED_CODES - _STONE_CODES)
    table[_STONE_CODES:, 0] = 2
    for channel, radix in zip(range(8, 2, -1), _EMPTY_RADICES[::-1], strict=True):
        table[_STONE_CODES:, channel] = rest % radix
        rest = rest // radix
    table.flags.writeable = False
    return table


def _check_codes(codes, owner):
    codes = np.asarray(codes)
    if codes.dtype != np.uint8 or codes.ndim < 3 or codes.shape[-3] != len(CHANNELS):
        raise ValueError(f"features.{owner}: codes must be uint8 (..., {len(CHANNELS)}, S, S), "
                         f"received {codes.dtype} {codes.shape}")
    largest = codes.max(axis=tuple(i for i in range(codes.ndim) if i != codes.ndim - 3)) \
        if codes.size else _LARGEST
    if (largest > _LARGEST).any():
        raise ValueError(f"features.{owner}: a category index is out of range for its channel "
                         f"(largest allowed per channel {_LARGEST.tolist()})")
    return codes
