"""The ladder reader (AlphaGo's "ladder capture" and "ladder escape" planes), by search.

A ladder is read as a two-player search on copies of the board arrays (``board_core``):

- the defender's group is in atari and the defender moves: it may extend at its one
  liberty or capture an adjacent attacker group that is itself in atari (a counter-atari
  such as a ladder breaker's, or an attacker stone left in atari by the chase). With three
  liberties or more afterwards it has escaped; with one it is lost; with two the attacker
  moves next;
- the attacker, facing a group with two liberties, tries each of them as an atari.

The group is captured when every defender answer loses against some attacker atari. The
search stops after ``max_nodes`` positions and then says "not captured": an unread ladder
is never reported as working.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from cnnlab.apps.go.board_core import (
    COLOUR,
    EMPTY,
    HEAD,
    NEXT,
    analyse_move,
    first_bit,
    is_legal,
    liberty_count,
    place,
)

DEFAULT_MAX_NODES = 200
MAX_DEPTH = 128  # plies: a ladder crossing a 19×19 board diagonally takes about 72


@njit(cache=True)
def _add_unique(values, count, value):
    for i in range(count):
        if values[i] == value:
            return count
    if count < values.shape[0]:
        values[count] = value
        return count + 1
    return count


@njit(cache=True)
def _candidates(state, libs, neighbours, target, attacker, defender_to_move, out):
    """The moves read at a node; returns how many were written to ``out``. The defender (its
    group in atari) extends or captures an adjacent attacker group in atari; the attacker
    plays on either of the group's two liberties."""
    head = state[HEAD, target]
    count = 0
    if defender_to_move:
        count = _add_unique(out, count, first_bit(libs[head]))
        stone = head
        while True:
            for k in range(4):
                q = neighbours[stone, k]
                if q < 0:
                    break
                if state[COLOUR, q] == attacker and liberty_count(state, libs, q) == 1:
                    count = _add_unique(out, count, first_bit(libs[state[HEAD, q]]))
            stone = state[NEXT, stone]
            if stone == head:
                break
    else:
        first = first_bit(libs[head])
        second = first_bit(libs[head], first)
        if first >= 0:
            count = _add_unique(out, count, first)
        if second >= 0:
            count = _add_unique(out, count, second)
        # block the wider exit first (the liberty with more empty neighbours, then the one
        # farther from the edge): a working ladder is then read in about one position per
        # move instead of a tree
        if count == 2 and _exit_width(state, neighbours, out[1]) > _exit_width(
                state, neighbours, out[0]):
            out[0], out[1] = out[1], out[0]
    return count


@njit(cache=True)
def _exit_width(state, neighbours, point):
    """8 × empty neighbours + on-board neighbours: how good an escape route a point is."""
    total = 0
    for k in range(4):
        q = neighbours[point, k]
        if q < 0:
            break
        total += 1 + 8 * (state[COLOUR, q] == EMPTY)
    return total


@njit(cache=True)
def make_workspace(state, libs, meta):
    """The search stack for ``MAX_DEPTH`` plies (positions, moves to try, progress), allocated
    once and reused by every read (``_encode`` reads up to a few hundred per position)."""
    return (np.empty((MAX_DEPTH,) + state.shape, state.dtype),
            np.empty((MAX_DEPTH,) + libs.shape, libs.dtype),
            np.empty((MAX_DEPTH, meta.shape[0]), meta.dtype),
            np.empty((MAX_DEPTH, 16), np.int64),
            np.zeros(MAX_DEPTH, np.int64),
            np.zeros(MAX_DEPTH, np.int64))


@njit(cache=True)
def _captured(workspace, neighbours, zobrist, target, attacker, defender_to_move, max_nodes):
    """Whether the group on ``target`` in the workspace's position 0 is captured by ladder
    (see the module docstring).

    With ``defender_to_move`` the group has one liberty, else two and the attacker moves.
    An AND/OR search with an explicit stack (numba cannot cache recursive functions): a
    defender node is captured when every answer is, an attacker node when one atari is.
    At most ``max_nodes`` positions and ``MAX_DEPTH`` plies are read; beyond, "not captured".
    """
    states, libsets, metas, moves, counts, tried = workspace
    counts[0] = _candidates(states[0], libsets[0], neighbours, target, attacker,
                            defender_to_move, moves[0])
    tried[0] = 0
    level = 0
    nodes = 1
    while True:
        defends = defender_to_move == (level % 2 == 0)
        if tried[level] >= counts[level]:
            value = defends  # every answer captured / no atari worked
        else:
            move = moves[level, tried[level]]
            tried[level] += 1
            mover = 3 - attacker if defends else attacker
            if not is_legal(states[level], libsets[level], metas[level], neighbours, move, mover):
                continue
            child = level + 1
            if child >= MAX_DEPTH or nodes >= max_nodes:
                return False
            states[child], libsets[child], metas[child] = states[level], libsets[level], metas[level]
            place(states[child], libsets[child], metas[child], neighbours, zobrist, move, mover)
            liberties = liberty_count(states[child], libsets[child], target)
            if (defends and liberties == 2) or (not defends and liberties == 1):
                nodes += 1
                counts[child] = _candidates(states[child], libsets[child], neighbours, target,
                                            attacker, not defends, moves[child])
                tried[child] = 0
                level = child
                continue
            value = defends and liberties <= 1
            # a child's value decides its parent when it is what the parent looks for
            if value == defends:
                continue
        # ``value`` is the node at ``level``'s result: pass it up while it decides each parent
        while True:
            level -= 1
            if level < 0:
                return value
            if value == (defender_to_move == (level % 2 == 0)):
                break  # not decided: the parent reads its next move


@njit(cache=True)
def _load(workspace, state, libs, meta):
    workspace[0][0], workspace[1][0], workspace[2][0] = state, libs, meta


@njit(cache=True)
def _empty_besides(state, neighbours, point, besides):
    total = 0
    for k in range(4):
        q = neighbours[point, k]
        if q < 0:
            break
        total += state[COLOUR, q] == EMPTY and q != besides
    return total


@njit(cache=True)
def ladder_capture_at(state, libs, meta, neighbours, zobrist, point, colour, max_nodes,
                      workspace):
    """Whether ``colour`` playing ``point`` ataris an opponent group (two liberties before)
    that it then captures by ladder, whatever the defender does (``workspace`` from
    ``make_workspace``)."""
    if not is_legal(state, libs, meta, neighbours, point, colour):
        return False
    for k in range(4):
        q = neighbours[point, k]
        if q < 0:
            break
        if state[COLOUR, q] != 3 - colour or liberty_count(state, libs, q) != 2:
            continue
        if _empty_besides(state, neighbours, first_bit(libs[state[HEAD, q]], point), point) >= 3:
            continue  # the defender extends into the open: three liberties at least
        _load(workspace, state, libs, meta)
        place(workspace[0][0], workspace[1][0], workspace[2][0], neighbours, zobrist, point,
              colour)
        if (workspace[0][0][COLOUR, q] != EMPTY
                and liberty_count(workspace[0][0], workspace[1][0], q) == 1
                and _captured(workspace, neighbours, zobrist, q, colour, True, max_nodes)):
            return True
    return False


@njit(cache=True)
def ladder_escape_at(state, libs, meta, neighbours, zobrist, point, colour, max_nodes,
                     workspace):
    """Whether ``colour`` playing ``point`` saves one of its groups in atari (by extending it
    or by capturing an attacker group next to it) so that no ladder captures it."""
    if not is_legal(state, libs, meta, neighbours, point, colour):
        return False
    rescued = np.empty(16, np.int64)
    count = 0
    extended = False
    for k in range(4):
        q = neighbours[point, k]
        if q < 0:
            break
        if state[COLOUR, q] == colour and liberty_count(state, libs, q) == 1:
            count = _add_unique(rescued, count, state[HEAD, q])
            extended = True
        elif state[COLOUR, q] == 3 - colour and liberty_count(state, libs, q) == 1:
            head = state[HEAD, q]
            stone = head
            while True:
                for j in range(4):
                    r = neighbours[stone, j]
                    if r < 0:
                        break
                    if state[COLOUR, r] == colour and liberty_count(state, libs, r) == 1:
                        count = _add_unique(rescued, count, state[HEAD, r])
                stone = state[NEXT, stone]
                if stone == head:
                    break
    if count == 0:
        return False
    # the extension's own liberties, without playing it: three or more is an escape
    if extended and analyse_move(state, libs, meta, neighbours, point, colour,
                                 libs[0].copy(), np.empty(8, np.int32))[2] >= 3:
        return True
    for i in range(count):
        _load(workspace, state, libs, meta)
        place(workspace[0][0], workspace[1][0], workspace[2][0], neighbours, zobrist, point,
              colour)
        liberties = liberty_count(workspace[0][0], workspace[1][0], rescued[i])
        if liberties >= 3:
            return True
        if liberties == 2 and not _captured(workspace, neighbours, zobrist, rescued[i],
                                            3 - colour, False, max_nodes):
            return True
    return False
