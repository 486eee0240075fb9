"""benchmarks/go_board.py runs on a few real games and reports every figure the docs quote."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
GAMES = REPO / ".." / "shared" / "datasets" / "go-fox-pro" / "sgf"


def test_the_board_benchmark_runs_on_real_games():
    pytest.importorskip("sgfmill", reason="the benchmark reads SGF with sgfmill")
    if not GAMES.is_dir():
        pytest.skip(f"needs the Fox pro games in {GAMES}")
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "go_board.py"), "--games", "3"],
                            capture_output=True, text=True, timeout=300, check=False,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    for line in ("games: 3, moves replayed:", "Board.play (one call per move):",
                 "Board.play_sequence (compiled loop):", "features.encode", "packed: 722 bytes/position"):
        assert line in result.stdout
