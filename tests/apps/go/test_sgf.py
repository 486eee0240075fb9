"""The SGF reader on real records (tests/apps/go/sgf/SOURCES.md) and hand-made malformed ones.

sgfmill, where it can read a file, is the oracle for main lines and for where a replay
stops being legal.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.apps.go.sgf import Game, SgfError, SgfLimits, parse_game

HERE = Path(__file__).parent / "sgf"
FOX = HERE / "fox-pro"
TITLE = HERE / "title"


def read(path) -> bytes:
    return Path(path).read_bytes()


def recorded_moves(data: bytes) -> list:
    """Every B/W node value in file order (main line only when there are no variations)."""
    return re.findall(rb";\s*([BW])\[([^\]]*)\]", data)


def point(value: bytes):
    value = value.strip()
    return (value[1] - ord("a"), value[0] - ord("a"))


def sgfmill_main_line(data: bytes) -> list:
    sgf = pytest.importorskip("sgfmill.sgf")
    game = sgf.Sgf_game.from_bytes(data)
    moves = []
    for node in game.get_main_sequence():
        colour, move = node.get_move()
        if colour:  # sgfmill counts rows from the bottom
            moves.append((colour, None if move is None else (18 - move[0], move[1])))
    return moves


def test_a_plain_fox_game_with_names_that_are_not_utf8():
    data = read(FOX / "7p/1478874631019999658.sgf")
    with pytest.raises(UnicodeDecodeError):  # the server replaced bytes of names with "?"
        data.decode("utf-8")
    game = parse_game(data, "x.sgf")
    assert (game.size, game.handicap, game.komi, game.result) == (19, 0, 0.0, "W+R")
    assert "\ufffd" in game.black and game.black.startswith("대박")
    assert game.white.startswith("王元")
    assert game.moves[:3] == (("b", (3, 15)), ("w", (3, 3)), ("b", (15, 16)))
    assert [(c.encode(), p) for c, p in game.moves] == [
        (c.lower(), point(v)) for c, v in recorded_moves(data)]
    assert game.truncated == 0 and game.source == "x.sgf"


def test_handicap_stones_in_the_second_node():
    data = read(FOX / "3p/1479092147019999877.sgf")
    sgf_moves = pytest.importorskip("sgfmill.sgf_moves")
    sgf = pytest.importorskip("sgfmill.sgf")
    with pytest.raises(ValueError, match="setup properties after the root node"):
        sgf_moves.get_setup_and_moves(sgf.Sgf_game.from_bytes(data))
    game = parse_game(data)
    assert game.setup_black == ((3, 15), (15, 3)) and game.setup_white == ()
    assert game.handicap == 2 and game.moves[0] == ("w", (15, 15))
    assert len(game.moves) == len(recorded_moves(data))


def test_komi_times_100_is_divided_and_draws_kept():
    game = parse_game(read(FOX / "8p/1448799747019999766.sgf"))
    assert game.komi == 6.5 and game.result == "draw"


@pytest.mark.parametrize("path, why", [
    (FOX / "6p/1414592367019999712.sgf", "occupied point"),
    (FOX / "3p/1443849213019999041.sgf", "suicide"),
    (TITLE / "M-77-2.mgt.sgf", "occupied point"),
])
def test_an_illegal_move_truncates_the_game_there(path, why):
    boards = pytest.importorskip("sgfmill.boards")
    data = read(path)
    game = parse_game(data)
    recorded = recorded_moves(data)
    assert game.truncated_by == why and game.truncated > 0
    assert len(game.moves) + game.truncated == len(recorded)
    # sgfmill's board agrees: every kept move is legal, the next one is not
    board = boards.Board(19)
    for colour, (row, column) in game.moves:
        board.play(18 - row, column, colour)
    colour, value = recorded[len(game.moves)]
    row, column = point(value)
    if why == "occupied point":
        with pytest.raises(ValueError):
            board.play(18 - row, column, colour.decode().lower())
    else:
        board.play(18 - row, column, colour.decode().lower())
        assert board.get(18 - row, column) is None  # sgfmill removes the suicided group


def test_variations_main_line_is_the_first_child():
    data = read(FOX / "9p/1489137028019999134.sgf")
    assert data.count(b"(") > 1
    game = parse_game(data)
    assert list(game.moves) == sgfmill_main_line(data)
    assert len(game.moves) < len(recorded_moves(data))  # the variations are not in it


def test_move_value_wrapped_across_lines():
    data = read(TITLE / "hon-50-2.mgt.sgf")
    assert re.search(rb"W\[[a-s]{2}\r?\n\]", data)
    game = parse_game(data)
    assert ("w", (16, 14)) in game.moves  # W[oq\n]
    assert len(game.moves) == len(recorded_moves(data))
    assert game.black == "Hashimoto Utaro" and game.komi == 4.5


def test_no_size_means_19_and_a_move_in_the_root_counts():
    game = parse_game(read(TITLE / "M-96-1.sgf"))
    assert game.size == 19 and game.black == "Cho Chikun" and game.komi == 5.5
    root_move = parse_game(read(TITLE / "Hon-74-4.sgf"))
    assert root_move.moves[0] == ("b", (3, 15)) and root_move.white == "Ishida"


GAME = b"(;GM[1]FF[4]SZ[19]PB[a]PW[b]KM[6.5];B[pd];W[dd];B[];W[tt];B[aa])"


def test_passes_are_none():
    game = parse_game(GAME)
    assert [p for _, p in game.moves] == [(3, 15), (3, 3), None, None, (0, 0)]


def test_other_sizes_are_skipped_unless_asked_for():
    small = GAME.replace(b"SZ[19]", b"SZ[9]").replace(b"B[pd];W[dd];", b"")
    with pytest.raises(SgfError) as info:
        parse_game(small)
    assert info.value.reason == "board size" and "9×9" in str(info.value)
    # tt is a pass on boards up to 19×19 (FF[4]), a 9×9 board included
    assert [p for _, p in parse_game(small, sizes=(9,)).moves] == [None, None, (0, 0)]
    with pytest.raises(SgfError, match="bad value"):
        parse_game(small.replace(b"B[aa]", b"B[jj]"), sizes=(9,))  # off the 9×9 board


@pytest.mark.parametrize("data, reason", [
    (GAME[: len(GAME) // 2], "truncated"),
    (GAME[:-1], "truncated"),
    (GAME.replace(b"B[aa]", b"B[aa"), "truncated"),
    (b"\x00\xff\x13binary\x89PNG garbage", "not SGF"),
    (b"", "not SGF"),
    (b";GM[1];B[aa])", "not SGF"),
    (b"(;GM[1]SZ[19];B[aa] 12 )", "not SGF"),
    (b"(;GM[1]SZ[19];B[aa] junk [)", "truncated"),
    (b"(" * 5000 + b";B[aa]" + b")" * 5000, "too deep"),
    (GAME.replace(b"SZ[19]", b"SZ[99999999999999999999999]"), "board size"),
    (GAME.replace(b"SZ[19]", b"SZ[19:13]"), "board size"),
    (GAME.replace(b"SZ[19]", b"SZ[nineteen]"), "bad value"),
    (GAME.replace(b"B[pd]", b"B[zz]"), "bad value"),
    (GAME.replace(b"B[pd]", b"B[pd]W[dd]"), "bad value"),
    (GAME.replace(b";B[aa]", b";AB[cc];B[aa]"), "setup after moves"),
    (GAME.replace(b"GM[1]", b"GM[2]"), "not Go"),
    (b"(;GM[1]SZ[19]PB[only a header])", "no moves"),
    (b"(;GM[1]SZ[19]AB[aa];W[aa])", "no moves"),  # the first move is on a stone
    (b"(;GM[1]SZ[19]AB" + b"[aa]" * 1000 + b";B[bb])", "bad value"),
    (b"(;C[" + b"x" * (1 << 20) + b"];B[aa])", "too large"),
    (b"(;GM[1]" + b";B[aa];W[aa]" * 0 + b";B[ab];W[ac]" * 1100 + b")", "too many nodes"),
])
def test_malformed_records_are_refused_with_a_reason(data, reason):
    with pytest.raises(SgfError) as info:
        parse_game(data, "bad.sgf")
    assert info.value.reason == reason
    assert str(info.value).startswith(f"bad.sgf: {reason}: ")


def test_huge_numbers_and_escapes_do_no_harm():
    data = GAME.replace(b"KM[6.5]", b"KM[1e999]HA[99999999999999999999]").replace(
        b"PB[a]", b"PB[Go \\] Seigen\\\nX]")
    game = parse_game(data)
    assert game.komi is None and game.handicap == 0
    assert game.black == "Go ] SeigenX"


def test_names_follow_a_known_charset_and_ignore_an_unknown_one():
    name = "聂卫平".encode("gb2312")
    data = GAME.replace(b"PB[a]", b"CA[GB2312]PB[" + name + b"]")
    assert parse_game(data).black == "聂卫平"
    odd = parse_game(data.replace(b"CA[GB2312]", b"CA[rot13]")).black
    assert "\ufffd" in odd  # read as UTF-8, bad bytes replaced


def test_compressed_point_lists_and_lower_case_identifiers():
    game = parse_game(b"(;GaMe[1]SZ[19]AddBlack[aa:bc]AW[dd];W[ee])")
    assert game.setup_black == ((0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1))
    assert game.setup_white == ((3, 3),) and game.handicap == 0  # white stones: no handicap


def test_limits_are_settable():
    with pytest.raises(SgfError, match="too many nodes"):
        parse_game(GAME, limits=SgfLimits(max_nodes=3))


def test_the_same_game_has_the_same_key_whatever_the_names():
    a = parse_game(GAME)
    b = parse_game(GAME.replace(b"PB[a]", b"PB[someone else]"), "other.sgf")
    c = parse_game(GAME.replace(b"B[aa]", b"B[ab]"))
    assert isinstance(a, Game) and a.key() == b.key() != c.key()


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_refused_or_read_never_crash(data):
    try:
        parse_game(data)
    except SgfError:
        pass


REAL = read(FOX / "3p/1479092147019999877.sgf")


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(REAL) - 1), st.binary(min_size=1, max_size=4),
       st.integers(0, len(REAL)))
def test_a_real_file_mangled_is_refused_or_read_never_crash(at, noise, cut):
    data = (REAL[:at] + noise + REAL[at + len(noise):])[:cut]
    try:
        game = parse_game(data)
    except SgfError:
        return
    assert game.size == 19 and all(0 <= r < 19 and 0 <= c < 19
                                   for _, p in game.moves if p for r, c in [p])
