"""GTP engine: a scripted session answered byte for byte, vertices, move choice."""

import io

import numpy as np
import pytest

from cnnlab.apps.go.board import BLACK, PASS, WHITE, Board
from cnnlab.apps.go.gtp import (
    COMMANDS,
    Engine,
    GtpError,
    point_of_vertex,
    vertex_of_point,
)


class PreferPoints:
    """A stand-in policy: probability falling with a fixed order of points."""

    def __init__(self, order):
        self.order = list(order)

    def probabilities(self, board):
        p = np.full(361, 1e-6)
        for rank, point in enumerate(self.order):
            p[point] = 1.0 / (rank + 1)
        return p / p.sum()


def test_vertices_are_counted_from_the_bottom_and_skip_i():
    assert point_of_vertex("A19") == 0
    assert point_of_vertex("T19") == 18
    assert point_of_vertex("a1") == 18 * 19
    assert point_of_vertex("J10") == 9 * 19 + 8  # I is skipped: J is the 9th column
    assert point_of_vertex("PASS") == PASS
    for point in range(361):
        assert point_of_vertex(vertex_of_point(point)) == point
    for bad in ("I5", "Z1", "A0", "A20", "A", "55", "", "A-1"):
        with pytest.raises(GtpError):
            point_of_vertex(bad)


SCRIPT = """\
1 protocol_version
name
known_command genmove
known_command fly
2 frobnicate
boardsize 9
boardsize x
# a comment line
komi 6.5 # trailing comment
play black D4
play white D4
play purple D5
play white Z99
3 play w\tQ16
undo
undo
undo
play b Q16
showboard
play w D4
final_score
10 genmove b
genmove w
list_commands
quit
play b A1
"""

EXPECTED = (
    "=1 2\n\n"
    "= cnnlab\n\n"
    "= true\n\n"
    "= false\n\n"
    "?2 unknown command\n\n"
    "? unacceptable size\n\n"
    "? boardsize not an integer\n\n"
    "=\n\n"
    "=\n\n"
    "? illegal move\n\n"
    "? invalid color\n\n"
    "? invalid coordinate\n\n"
    "=3\n\n"
    "=\n\n"
    "=\n\n"
    "? cannot undo\n\n"
    "=\n\n"
    "= \n"
    "   A B C D E F G H J K L M N O P Q R S T\n"
    + "".join(
        f"{n:2d} " + " ".join("X" if (n, c) == (16, "Q") else "." for c in "ABCDEFGHJKLMNOPQRST")
        + f" {n:2d}\n" for n in range(19, 0, -1))
    + "   A B C D E F G H J K L M N O P Q R S T\n"
    "White to move; captured by black 0, by white 0\n\n"
    "=\n\n"
    "= W+6.5\n\n"  # one stone each, the rest neutral: 1 - 1 - 6.5
    "=10 K10\n\n"
    "= C3\n\n"
    "= " + "\n".join(COMMANDS) + "\n\n"
    "=\n\n"
)


def test_scripted_session_is_answered_byte_for_byte():
    # genmove prefers K10, then D4 (occupied), then C3
    engine = Engine(PreferPoints([point_of_vertex(v) for v in ("K10", "D4", "C3")]),
                    version="test")
    out = io.StringIO()
    engine.run(io.StringIO(SCRIPT), out)
    assert out.getvalue() == EXPECTED
    assert engine.finished  # the line after quit was never read as a command


def test_illegal_moves_ko_and_suicide_are_refused_without_change():
    engine = Engine()
    # a ko: black captures at E5... build with plays
    for colour, vertex in (("b", "D5"), ("w", "E5"), ("b", "E4"), ("w", "F4"), ("b", "E6"),
                           ("w", "F6"), ("b", "pass"), ("w", "G5"), ("b", "F5")):
        assert engine.handle(f"play {colour} {vertex}") == "=\n\n", vertex
    # white E5 was captured by F5; white may not retake at E5 at once (ko)
    before = engine.board.colours().copy()
    assert engine.handle("play w E5") == "? illegal move\n\n"
    assert (engine.board.colours() == before).all()
    # suicide: A1 surrounded by black B1 and A2
    engine.handle("play b A2")
    engine.handle("play b B1")
    assert engine.handle("play w A1") == "? illegal move\n\n"
    assert engine.handle("play b A2") == "? illegal move\n\n"  # occupied
    assert engine.handle("genmove b") == "? no policy to generate a move with\n\n"
    for garbage in ("play", "play b", "komi", "komi abc", "komi nan", "known_command",
                    "\x00\x01", "play b A1 A2", "12", "genmove x"):
        answer = engine.handle(garbage)
        assert answer is None or answer.startswith("?"), garbage


def test_genmove_passes_without_sensible_moves_and_resigns_when_asked():
    rows = ["X" * 19] * 19
    rows[5] = rows[12] = "X" * 9 + "." + "X" * 9
    engine = Engine(PreferPoints(range(361)))
    engine.board = Board.from_rows(rows, keep_undo=True)
    # black's only empty points are its own true eyes: nothing sensible, pass
    assert engine.handle("genmove b") == "= pass\n\n"
    resigning = Engine(PreferPoints([]), resign_below=0.5)
    assert resigning.handle("genmove w") == "= resign\n\n"


def test_genmove_passes_after_a_pass_when_the_count_wins():
    engine = Engine(PreferPoints([point_of_vertex("K10")]))
    engine.handle("komi 0.5")
    engine.handle("play b D4")
    engine.handle("play w pass")
    assert engine.handle("genmove b") == "= pass\n\n"  # black owns the whole board
    assert engine.handle("genmove w") == "= K10\n\n"   # white is behind: it plays


def test_sampling_is_seeded_and_only_picks_sensible_moves():
    order = [point_of_vertex(v) for v in ("K10", "D4", "C3", "Q16")]
    moves = []
    for seed in (1, 1, 2):
        engine = Engine(PreferPoints(order), temperature=1.0, seed=seed)
        moves.append([engine.handle(f"genmove {'b' if i % 2 == 0 else 'w'}") for i in range(12)])
    assert moves[0] == moves[1]
    assert moves[0] != moves[2]
    board = Board(19)
    engine = Engine(PreferPoints(order), temperature=1.0, seed=3)
    for i in range(20):
        answer = engine.handle(f"genmove {'b' if i % 2 == 0 else 'w'}")
        point = point_of_vertex(answer[2:].strip())
        assert board.why_illegal(point, BLACK if i % 2 == 0 else WHITE) is None
        board.play(point, BLACK if i % 2 == 0 else WHITE)


def test_an_over_long_line_is_answered_once_and_skipped():
    engine = Engine()
    out = io.StringIO()
    engine.run(io.StringIO("name " + "x" * 50_000 + "\n1 protocol_version\n"), out)
    assert out.getvalue() == "? command too long\n\n=1 2\n\n"
