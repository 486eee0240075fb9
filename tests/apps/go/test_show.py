"""cnnlab go show: the PNG of a position with the policy's heat map; bad input, one line."""

from pathlib import Path

import pytest

from cnnlab.apps.go.sgf_read import read_games
from cnnlab.apps.go.show import board_before
from cnnlab.cli import main
from cnnlab.errors import CnnlabError

SGF = Path(__file__).parent / "sgf"
HANDICAP = SGF / "fox-pro" / "3p" / "1479092147019999877.sgf"


def test_show_writes_a_png_of_the_position(tmp_path, capsys):
    out = tmp_path / "figures" / "move.png"
    assert main(["go", "show", str(SGF / "title" / "M-96-1.sgf"), "--move", "20",
                 "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    text = capsys.readouterr().out
    assert "move 20 of 61; played" in text and "first choice" in text


def test_board_before_replays_setup_and_moves():
    game = next(read_games([HANDICAP]))
    board = board_before(game, 1)
    assert int((board.colours() == 1).sum()) == len(game.setup_black) == 2
    assert board.to_move == (1 if game.moves[0][0] == "b" else 2)
    later = board_before(game, 5)
    assert int((later.colours() != 0).sum()) == 2 + 4
    with pytest.raises(CnnlabError, match="--move must be 1..18"):
        board_before(game, 19)


@pytest.mark.parametrize("content, message", [
    (b"not a game record", "no usable game"),
    (b"(;GM[1]SZ[9];B[aa])", "board size"),
    (b"(;GM[1]SZ[19];B[dd]", "truncated"),
])
def test_bad_sgf_gives_one_line_error(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.sgf"
    bad.write_bytes(content)
    assert main(["go", "show", str(bad), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab go: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_show_refuses_a_move_out_of_range(tmp_path, capsys):
    assert main(["go", "show", str(HANDICAP), "--move", "0", "--out",
                 str(tmp_path / "x.png")]) == 2
    assert "--move must be 1..18" in capsys.readouterr().err
