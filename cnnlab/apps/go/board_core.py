"""Compiled kernels of the Go board (``cnnlab.apps.go.board``): placing a stone with its
captures, legality, and what a move at a point would do (captures, liberties after, size of
the group it would build), all on plain arrays so that numba compiles them once (cached).

The position lives in three arrays (``Board`` wraps them):

- ``state`` int32 (5, n), n = size²; rows ``COLOUR`` (0 empty, 1 black, 2 white), ``HEAD``
  (the group's representative point, −1 on empty points), ``NEXT`` (the next stone of the
  same group: each group is a circular list), ``SIZE`` (stones in the group, valid at its
  head) and ``PLAYED`` (the move number when the stone was placed, for "turns since").
- ``libs`` uint64 (n, words): the group's liberties as a bit set over the n points, valid at
  its head. Placing a stone clears one bit in at most four sets, merging groups ORs their
  sets, a capture sets the captured points in the capturer's adjacent sets: no flood fill.
  Liberty counts are popcounts of at most ``words`` = ⌈n/64⌉ machine words.
- ``meta`` int64: ``TO_MOVE``, ``KO`` (the point retaking is forbidden on, or −1),
  ``MOVE_NUMBER``, ``PASSES`` (consecutive), ``HASH`` (Zobrist hash of the stones),
  ``CAPTURES`` + colour − 1 (stones captured by each colour).

``neighbours`` and ``diagonals`` (int32 (n, 4)) list each point's on-board neighbours first,
padded with −1.
"""

from __future__ import annotations

import numpy as np
from numba import njit

EMPTY, BLACK, WHITE = 0, 1, 2
COLOUR, HEAD, NEXT, SIZE, PLAYED = 0, 1, 2, 3, 4
TO_MOVE, KO, MOVE_NUMBER, PASSES, HASH, CAPTURES = 0, 1, 2, 3, 4, 5
META_LENGTH = 7

_ONE = np.uint64(1)
_SIX = np.uint64(6)
_MASK63 = np.uint64(63)
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_S1, _S2, _S4, _S56 = np.uint64(1), np.uint64(2), np.uint64(4), np.uint64(56)


@njit(cache=True, inline="always")
def _popcount(x):
    """Set bits of a uint64 (the SWAR sum: pairs, nibbles, bytes, then one multiply)."""
    x = x - ((x >> _S1) & _M1)
    x = (x & _M2) + ((x >> _S2) & _M2)
    x = (x + (x >> _S4)) & _M4
    return (x * _H01) >> _S56


@njit(cache=True, inline="always")
def set_bit(bits, point):
    bits[point >> 6] |= _ONE << (np.uint64(point) & _MASK63)


@njit(cache=True, inline="always")
def clear_bit(bits, point):
    bits[point >> 6] &= ~(_ONE << (np.uint64(point) & _MASK63))


@njit(cache=True)
def count_bits(bits):
    """Points in a bit set (a row of ``libs``)."""
    total = np.uint64(0)
    for word in range(bits.shape[0]):
        total += _popcount(bits[word])
    return np.int64(total)


@njit(cache=True)
def at_least_two_bits(bits):
    """Whether a bit set holds two points or more (stops early: the common legality test)."""
    seen = 0
    for word in range(bits.shape[0]):
        value = bits[word]
        if value != 0:
            if value & (value - _ONE) != 0:
                return True
            seen += 1
            if seen >= 2:
                return True
    return False


@njit(cache=True)
def first_bit(bits, skip=-1):
    """The lowest point in a bit set other than ``skip``, or −1 when there is none."""
    for word in range(bits.shape[0]):
        value = bits[word]
        if skip >= 0 and word == skip >> 6:
            value &= ~(_ONE << (np.uint64(skip) & _MASK63))
        if value != 0:
            offset = 0
            while (value >> np.uint64(offset)) & _ONE == 0:
                offset += 1
            return word * 64 + offset
    return -1


@njit(cache=True)
def liberty_count(state, libs, point):
    """Liberties of the group at ``point`` (0 on an empty point)."""
    head = state[HEAD, point]
    if head < 0:
        return 0
    return count_bits(libs[head])


@njit(cache=True)
def is_legal(state, libs, meta, neighbours, point, colour):
    """Whether ``colour`` may play at ``point``: empty, not the ko point (a ban on the side to
    move only), and not suicide (some neighbour is empty, or an own group keeps a liberty, or
    an opponent group is captured)."""
    if state[COLOUR, point] != EMPTY or (point == meta[KO] and colour == meta[TO_MOVE]):
        return False
    for k in range(4):
        q = neighbours[point, k]
        if q < 0:
            break
        cq = state[COLOUR, q]
        if cq == EMPTY:
            return True
        two = at_least_two_bits(libs[state[HEAD, q]])
        if cq == colour and two:
            return True
        if cq != colour and not two:
            return True
    return False


@njit(cache=True)
def _merge(state, libs, keep, other):
    """Join group ``other`` into group ``keep`` (the caller passes the larger as ``keep``)."""
    stone = other
    while True:
        state[HEAD, stone] = keep
        stone = state[NEXT, stone]
        if stone == other:
            break
    after_keep = state[NEXT, keep]
    state[NEXT, keep] = state[NEXT, other]
    state[NEXT, other] = after_keep
    state[SIZE, keep] += state[SIZE, other]
    for word in range(libs.shape[1]):
        libs[keep, word] |= libs[other, word]


@njit(cache=True)
def _remove_group(state, libs, meta, neighbours, zobrist, head):
    """Take the group at ``head`` off the board; its points become liberties of the adjacent
    groups. Returns the number of stones removed."""
    colour = state[COLOUR, head]
    removed = 0
    stone = head
    while True:
        state[COLOUR, stone] = EMPTY
        meta[HASH] ^= zobrist[stone, colour]
        removed += 1
        stone = state[NEXT, stone]
        if stone == head:
            break
    stone = head
    while True:
        for k in range(4):
            q = neighbours[stone, k]
            if q < 0:
                break
            if state[COLOUR, q] != EMPTY:
                set_bit(libs[state[HEAD, q]], stone)
        following = state[NEXT, stone]
        state[HEAD, stone] = -1
        stone = following
        if stone == head:
            break
    return removed


@njit(cache=True)
def place(state, libs, meta, neighbours, zobrist, point, colour):
    """Put a ``colour`` stone on ``point`` (legality already checked): merge the adjacent own
    groups, capture the adjacent opponent groups left without liberties, set the ko point and
    the side to move. Returns the number of stones captured."""
    state[COLOUR, point] = colour
    state[HEAD, point] = point
    state[NEXT, point] = point
    state[SIZE, point] = 1
    state[PLAYED, point] = meta[MOVE_NUMBER]
    meta[HASH] ^= zobrist[point, colour]
    for word in range(libs.shape[1]):
        libs[point, word] = 0
    for k in range(4):
        q = neighbours[point, k]
        if q < 0:
            break
        if state[COLOUR, q] == EMPTY:
            set_bit(libs[point], q)
        else:
            clear_bit(libs[state[HEAD, q]], point)
    for k in range(4):
        q = neighbours[point, k]
        if q < 0:
            break
        if state[COLOUR, q] == colour:
            mine, theirs = state[HEAD, point], state[HEAD, q]
            if mine != theirs:
                if state[SIZE, mine] >= state[SIZE, theirs]:
                    _merge(state, libs, mine, theirs)
                else:
                    _merge(state, libs, theirs, mine)
    captured = 0
    last_captured = -1
    for k in range(4):
        q = neighbours[point, k]
        if q < 0:
            break
        if state[COLOUR, q] == 3 - colour and count_bits(libs[state[HEAD, q]]) == 0:
            captured += _remove_group(state, libs, meta, neighbours, zobrist, state[HEAD, q])
            last_captured = q
    own = state[HEAD, point]
    # simple ko: one stone taken by a lone stone that is itself left in atari
    if captured == 1 and state[SIZE, own] == 1 and count_bits(libs[own]) == 1:
        meta[KO] = last_captured
    else:
        meta[KO] = -1
    meta[CAPTURES + colour - 1] += captured
    meta[TO_MOVE] = 3 - colour
    meta[MOVE_NUMBER] += 1
    meta[PASSES] = 0
    return captured


@njit(cache=True)
def play(state, libs, meta, neighbours, zobrist, point, colour):
    """``place`` after ``is_legal``: the stones captured, or −1 (nothing changed) if illegal."""
    if not is_legal(state, libs, meta, neighbours, point, colour):
        return -1
    return place(state, libs, meta, neighbours, zobrist, point, colour)


@njit(cache=True)
def play_sequence(state, libs, meta, neighbours, zobrist, points, colours):
    """Play moves in order (point −1 = pass); returns how many were played before the first
    illegal one (all of them when every move is legal)."""
    for i in range(points.shape[0]):
        if points[i] < 0:
            meta[KO] = -1
            meta[PASSES] += 1
            meta[MOVE_NUMBER] += 1
            meta[TO_MOVE] = 3 - colours[i]
        elif play(state, libs, meta, neighbours, zobrist, points[i], colours[i]) < 0:
            return i
    return points.shape[0]


@njit(cache=True)
def _add_unique(values, count, value):
    for i in range(count):
        if values[i] == value:
            return count
    values[count] = value
    return count + 1


@njit(cache=True)
def analyse_move(state, libs, meta, neighbours, point, colour, bits, heads):
    """What ``colour`` playing at empty ``point`` would do, without playing it.

    Returns (legal, stones captured, liberties of the new group, stones in the new group).
    The new group's liberties are the empty neighbours, the liberties of the joined own
    groups and the captured stones touching the new group, minus ``point`` itself
    (``bits`` is scratch space of one ``libs`` row).
    """
    if not is_legal(state, libs, meta, neighbours, point, colour):
        return False, 0, 0, 0
    own_heads = heads[:4]
    taken_heads = heads[4:]
    own_count = 0
    taken_count = 0
    for word in range(bits.shape[0]):
        bits[word] = 0
    for k in range(4):
        q = neighbours[point, k]
        if q < 0:
            break
        cq = state[COLOUR, q]
        if cq == EMPTY:
            set_bit(bits, q)
        elif cq == colour:
            own_count = _add_unique(own_heads, own_count, state[HEAD, q])
        elif not at_least_two_bits(libs[state[HEAD, q]]):
            taken_count = _add_unique(taken_heads, taken_count, state[HEAD, q])
    size = 1
    for i in range(own_count):
        head = own_heads[i]
        size += state[SIZE, head]
        for word in range(bits.shape[0]):
            bits[word] |= libs[head, word]
    clear_bit(bits, point)
    captured = 0
    for i in range(taken_count):
        head = taken_heads[i]
        captured += state[SIZE, head]
        stone = head
        while True:
            for k in range(4):
                r = neighbours[stone, k]
                if r < 0:
                    break
                touches = r == point
                if not touches and state[COLOUR, r] == colour:
                    for j in range(own_count):
                        if state[HEAD, r] == own_heads[j]:
                            touches = True
                if touches:
                    set_bit(bits, stone)
                    break
            stone = state[NEXT, stone]
            if stone == head:
                break
    return True, captured, count_bits(bits), size


@njit(cache=True)
def hash_after(state, libs, meta, neighbours, zobrist, point, colour):
    """The Zobrist hash of the stones after ``colour`` plays a legal move at ``point``."""
    value = meta[HASH] ^ zobrist[point, colour]
    seen = np.empty(4, np.int32)
    count = 0
    for k in range(4):
        q = neighbours[point, k]
        if q < 0:
            break
        if state[COLOUR, q] == 3 - colour and not at_least_two_bits(libs[state[HEAD, q]]):
            before = count
            count = _add_unique(seen, count, state[HEAD, q])
            if count > before:
                stone = state[HEAD, q]
                while True:
                    value ^= zobrist[stone, 3 - colour]
                    stone = state[NEXT, stone]
                    if stone == state[HEAD, q]:
                        break
    return value


@njit(cache=True)
def is_true_eye(state, neighbours, diagonals, point, colour):
    """Pachi's eye rule (AlphaGo's sensibleness): every neighbour is a ``colour`` stone, and
    fewer than two diagonals are the opponent's, where any off-board diagonal counts as one."""
    if state[COLOUR, point] != EMPTY:
        return False
    for k in range(4):
        q = neighbours[point, k]
        if q < 0:
            break
        if state[COLOUR, q] != colour:
            return False
    hostile = 0
    on_board = 0
    for k in range(4):
        q = diagonals[point, k]
        if q < 0:
            break
        on_board += 1
        if state[COLOUR, q] == 3 - colour:
            hostile += 1
    if on_board < 4:
        hostile += 1
    return hostile < 2


@njit(cache=True)
def legal_mask(state, libs, meta, neighbours, diagonals, colour, sensible_only):
    """bool (n,): the points ``colour`` may play (and, if ``sensible_only``, that do not fill
    one of its own true eyes)."""
    n = state.shape[1]
    mask = np.zeros(n, np.bool_)
    for point in range(n):
        if (state[COLOUR, point] == EMPTY and is_legal(state, libs, meta, neighbours, point, colour)
                and not (sensible_only and is_true_eye(state, neighbours, diagonals, point, colour))):
            mask[point] = True
    return mask
