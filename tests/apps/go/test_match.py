"""The referee: rules applied to engines' moves, forfeits, scoring, dead stones, SGF, Wilson."""

import shutil
import sys
from pathlib import Path

import pytest

from cnnlab.apps.go.board import BLACK, PASS, WHITE
from cnnlab.apps.go.gtp import point_of_vertex
from cnnlab.apps.go.match import GtpClient, play_game, play_match, wilson, write_sgf
from cnnlab.apps.go.sgf import parse_game
from cnnlab.cli import main

# A scripted GTP engine: plays the moves given (then passes), lists dead stones if asked.
FAKE = r'''
import sys
moves = sys.argv[1].split(",") if sys.argv[1] else []
dead = sys.argv[2] if len(sys.argv) > 2 else None
played = 0
for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    if words[0] == "name":
        out = "fake"
    elif words[0] == "list_commands":
        out = "name\nlist_commands\ngenmove\nplay" + ("\nfinal_status_list" if dead else "")
    elif words[0] == "genmove":
        out = moves[played] if played < len(moves) else "pass"
        played += 1
    elif words[0] == "final_status_list":
        out = dead
    elif words[0] == "sleep":
        import time; time.sleep(10); out = ""
    elif words[0] == "quit":
        print("=\n", flush=True)
        break
    else:
        out = ""
    print("= " + out + "\n", flush=True)
'''


@pytest.fixture()
def fake(tmp_path):
    script = tmp_path / "fake_engine.py"
    script.write_text(FAKE)

    def command(moves, dead=None):
        return f"{sys.executable} {script} {','.join(moves) or chr(34) * 2}" + (
            f" {dead}" if dead else "")
    return command


def _game(fake, black_moves, white_moves, dead=None, **options):
    black, white = GtpClient(fake(black_moves, dead)), GtpClient(fake(white_moves))
    try:
        return play_game(black, white, **options)
    finally:
        black.close()
        white.close()


def test_an_illegal_move_loses_the_game(fake):
    game = _game(fake, ["D4", "D4"], ["Q16"])
    assert game.moves == [point_of_vertex("D4"), point_of_vertex("Q16")]
    assert game.winner == WHITE and game.result == "W+F"
    assert "black (fake) played D4, illegal (occupied)" in game.reason
    nonsense = _game(fake, ["D4"], ["hello"])
    assert nonsense.winner == BLACK and "answered 'hello', not a move" in nonsense.reason


def test_two_passes_end_and_dead_stones_come_from_final_status_list(fake):
    alive = _game(fake, ["D4"], [], komi=7.5)
    assert alive.moves == [point_of_vertex("D4"), PASS, PASS]
    assert alive.reason == "two passes" and alive.result == "B+353.5"  # 361 − 7.5
    assert "no engine has final_status_list" in alive.dead_stones
    settled = _game(fake, ["D4"], [], dead="D4")
    assert settled.result == "W+7.5"  # D4 dead: nobody's area, komi decides
    assert "final_status_list (1)" in settled.dead_stones
    not_asked = _game(fake, ["D4"], [], dead="D4", ask_dead=False)
    assert not_asked.result == "B+353.5" and "not asked" in not_asked.dead_stones
    capped = _game(fake, ["D4", "E5", "F6"], ["Q16", "R17", "S18"], max_moves=3)
    assert len(capped.moves) == 3 and capped.reason == "3 moves played"


def test_a_silent_engine_times_out_and_loses(fake):
    client = GtpClient(fake([]), timeout=0.5)
    try:
        with pytest.raises(Exception, match="no answer"):
            client.ask("sleep")
        assert client.process.poll() is not None  # killed: never read out of step
    finally:
        client.close()


def test_sgf_written_reads_back(tmp_path, fake):
    game = _game(fake, ["D4", "pass", "C3"], ["Q16", "R4", "pass"])
    write_sgf(tmp_path / "g.sgf", game)
    back = parse_game((tmp_path / "g.sgf").read_bytes(), "g.sgf")
    expected = [("b", (15, 3)), ("w", (3, 15)), ("b", None), ("w", (15, 16)), ("b", (16, 2)),
                ("w", None)]
    assert list(back.moves[:6]) == expected
    assert back.result == game.result and back.black == "fake"


def test_wilson_interval_known_values():
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    assert wilson(0, 10)[0] == 0 and wilson(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson(10, 10)[1] == pytest.approx(1) and wilson(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)


def test_match_alternates_colours_and_counts(tmp_path, fake):
    lines = []
    result = play_match(fake(["D4"]), fake([]), games=2, sgf_dir=tmp_path, report=lines.append,
                        ask_dead=False)
    # game 1: the first engine is black and plays D4: B+353.5; game 2: it is white and
    # passes, the second engine (black) passes too: W+7.5 for the first engine
    assert result["wins"] == [2, 0] and result["draws"] == 0
    assert sorted(p.name for p in tmp_path.glob("*.sgf")) == ["game-001.sgf", "game-002.sgf"]
    assert "win rate of fake: 100.0%" in lines[-1]


GNUGO = shutil.which("gnugo") or ("/usr/games/gnugo" if Path("/usr/games/gnugo").is_file()
                                  else None)


@pytest.mark.skipif(GNUGO is None, reason="needs GNU Go (gnugo), which is not installed")
def test_a_short_match_against_gnu_go_runs_to_the_end(tmp_path, capsys):
    ours = f"{sys.executable} -m cnnlab go gtp"
    status = main(["go", "match", "--black", ours, "--white", f"{GNUGO} --mode gtp --level 1",
                   "--games", "1", "--max-moves", "6", "--dead-stones", "alive",
                   "--sgf-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "game 1: black cnnlab, white GNU Go" in out and "after 6 moves" in out
    game = parse_game((tmp_path / "game-001.sgf").read_bytes(), "game-001.sgf")
    assert len(game.moves) == 6 and game.white == "GNU Go"
