"""Speed of the Go board and features on real games (issue 12): moves/s replayed one call per
move (``Board.play``) and in one compiled loop (``Board.play_sequence``), positions/s of the
48-plane compact encoding (``features.encode``) and of the one-hot expansion per batch
(``features.expand``), bytes per position (codes and packed) and what 4 M positions need.

Usage: python benchmarks/go_board.py [--games 200] [--data ../shared/datasets/go-fox-pro/sgf]
Games are read with sgfmill (main line, setup stones of the first two nodes); a game is cut at
its first illegal move, as the data pipeline does.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from cnnlab.apps.go import features
from cnnlab.apps.go.board import BLACK, WHITE, Board

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "go-fox-pro" / "sgf"


def read_games(folder: Path, count: int):
    """[(setup, moves)] of the first ``count`` 19×19 games (sorted paths): setup is
    [(colour, point)], moves [(colour, point or −1)]."""
    from sgfmill import sgf

    games = []
    for path in sorted(folder.rglob("*.sgf")):
        if len(games) >= count:
            break
        try:
            game = sgf.Sgf_game.from_bytes(path.read_bytes())
        except ValueError:
            continue
        if game.get_size() != 19:
            continue
        setup, moves = [], []
        nodes = game.get_main_sequence()
        for index, node in enumerate(nodes):
            if index < 2:
                for colour, key in ((BLACK, "AB"), (WHITE, "AW")):
                    if node.has_property(key):
                        setup += [(colour, (18 - r) * 19 + c) for r, c in node.get(key)]
            colour, move = node.get_move()
            if colour is not None:
                moves.append((BLACK if colour == "b" else WHITE,
                              -1 if move is None else (18 - move[0]) * 19 + move[1]))
        games.append((setup, moves))
    return games


def fresh_board(setup):
    board = Board(19)
    for colour in (BLACK, WHITE):
        board.place_setup([p for c, p in setup if c == colour], colour)
    return board


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=200)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    games = read_games(args.data, args.games)
    if not games:
        raise SystemExit(f"go_board: no SGF games under {args.data}")
    fresh_board([]).play_sequence([60], [BLACK])  # compile outside the timings
    features.encode(fresh_board([]))

    start, played = time.perf_counter(), 0
    for setup, moves in games:
        board = fresh_board(setup)
        for colour, point in moves:
            try:
                board.play(point, colour)
            except ValueError:
                break
            played += 1
    per_call = played / (time.perf_counter() - start)

    start, sequenced = time.perf_counter(), 0
    for setup, moves in games:
        board = fresh_board(setup)
        sequenced += board.play_sequence([p for _, p in moves], [c for c, _ in moves])
    compiled = sequenced / (time.perf_counter() - start)

    codes, encode_time = [], 0.0
    for setup, moves in games:
        board = fresh_board(setup)
        for colour, point in moves:
            board.to_move = colour
            start = time.perf_counter()
            codes.append(features.encode(board))
            encode_time += time.perf_counter() - start
            try:
                board.play(point, colour)
            except ValueError:
                break
    codes = np.stack(codes)
    batch = codes[:256]
    start = time.perf_counter()
    repeats = 10
    for _ in range(repeats):
        features.expand(batch)
    expand_rate = repeats * len(batch) / (time.perf_counter() - start)
    per_position = codes[0].nbytes
    packed = features.pack(codes)
    start = time.perf_counter()
    for _ in range(repeats):
        features.expand(features.unpack(packed[:256]))
    unpack_rate = repeats * 256 / (time.perf_counter() - start)
    print(f"games: {len(games)}, moves replayed: {played}")
    print(f"Board.play (one call per move): {per_call:,.0f} moves/s")
    print(f"Board.play_sequence (compiled loop): {compiled:,.0f} moves/s")
    print(f"features.encode (48 planes, compact): {len(codes) / encode_time:,.0f} positions/s "
          f"({len(codes)} positions)")
    print(f"features.expand (batch 256 -> float32 48x19x19): {expand_rate:,.0f} positions/s")
    print(f"features.unpack + expand (batch 256 from uint16): {unpack_rate:,.0f} positions/s")
    print(f"compact codes: {per_position} bytes/position, 4 M positions {4e6 * per_position / 1e9:.1f} GB;"
          f" packed: {packed[0].nbytes} bytes/position, 4 M positions "
          f"{4e6 * packed[0].nbytes / 1e9:.1f} GB (expanded float32: "
          f"{4e6 * 48 * 361 * 4 / 1e9:.0f} GB)")
    ladders = codes[:, 6].sum(), codes[:, 7].sum()
    print(f"ladder-capture points: {ladders[0]}, ladder-escape points: {ladders[1]}")


if __name__ == "__main__":
    main()
