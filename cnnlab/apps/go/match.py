"""A referee for two GTP engines: ``cnnlab go match --black CMD --white CMD --games N``.

Each engine runs as a subprocess (its command line split like a shell's, never run by a
shell) and gets ``boardsize 19``, ``clear_board`` and ``komi`` before each game. Colours
alternate: the engine given as ``--black`` plays black in games 1, 3, 5, … and white in
the others. The referee keeps its own ``Board`` and applies the rules (simple ko, suicide
illegal): an engine whose answer is not a vertex, whose move is illegal, which does not
answer within the timeout or which dies loses the game, and the reason is reported. A
game ends after two passes in a row, a resignation or ``max_moves`` moves (then it is
scored as it stands).

Scoring is Tromp–Taylor area (``Board.score``) with komi. Dead stones are settled by
asking an engine that lists ``final_status_list`` in ``list_commands`` (GNU Go does):
``final_status_list dead``, the first such engine in the order black, white; when neither
supports it, every stone is assumed alive. The reports say which was done.

Every game is written as an SGF file (atomically) when ``sgf_dir`` is given, and the match
reports the first engine's win rate with a 95 % Wilson score interval.
"""

from __future__ import annotations

import dataclasses
import math
import queue
import shlex
import subprocess
import threading
import time
from pathlib import Path

from cnnlab.apps.go.board import BLACK, PASS, WHITE, Board
from cnnlab.apps.go.gtp import GtpError, point_of_vertex, score_text, vertex_of_point
from cnnlab.atomic import write_text
from cnnlab.errors import CnnlabError

__all__ = ["EngineError", "GameResult", "GtpClient", "play_game", "play_match", "wilson",
           "write_sgf"]

MAX_ANSWER_LINES = 1_000
MAX_LINE_CHARS = 100_000


class EngineError(CnnlabError):
    """An engine that did not answer, died, or answered something unusable."""


class GtpClient:
    """One GTP engine as a subprocess: ``ask(command)`` → the answer's text (raises
    ``GtpError`` on a ``?`` answer, ``EngineError`` on a timeout or a dead engine)."""

    def __init__(self, command: str, timeout: float = 60.0):
        self.command = command
        self.timeout = float(timeout)
        words = shlex.split(command)
        if not words:
            raise CnnlabError("an engine's command line is empty")
        try:
            self.process = subprocess.Popen(words, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=subprocess.DEVNULL, text=True, bufsize=1)
        except OSError as error:
            raise CnnlabError(f"cannot start engine {command!r}: {error.strerror or error}") from None
        self.lines: queue.Queue = queue.Queue(maxsize=4 * MAX_ANSWER_LINES)  # bounded memory
        threading.Thread(target=self._read, daemon=True).start()
        self.name = self._optional("name") or words[0]
        self.commands = set((self._optional("list_commands") or "").split())

    def _read(self):
        stream = self.process.stdout
        while True:
            line = stream.readline(MAX_LINE_CHARS)
            self.lines.put(line)
            if not line:
                return

    def _optional(self, command: str) -> str | None:
        try:
            return self.ask(command)
        except GtpError:
            return None

    def ask(self, command: str) -> str:
        if self.process.poll() is not None:
            raise EngineError(f"engine {self.command!r} has exited")
        try:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        except OSError:
            raise EngineError(f"engine {self.command!r} has exited") from None
        deadline = time.monotonic() + self.timeout
        answer = []
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                self.process.kill()  # its late answer would be taken for the next one's
                self.process.wait()
                raise EngineError(f"engine {self.command!r} gave no answer to {command!r} "
                                  f"within {self.timeout:g} s") from None
            if not line:
                raise EngineError(f"engine {self.command!r} exited during {command!r}")
            line = line.rstrip("\r\n")
            if not answer and not line.strip():
                continue  # blank lines before an answer
            if answer and not line.strip():
                break
            answer.append(line)
            if len(answer) > MAX_ANSWER_LINES:
                raise EngineError(f"engine {self.command!r}: an answer of over "
                                  f"{MAX_ANSWER_LINES} lines")
        first = answer[0]
        if first[:1] not in "=?":
            raise EngineError(f"engine {self.command!r}: not a GTP answer: {first[:80]!r}")
        text = "\n".join([first[1:].lstrip("0123456789").strip(), *answer[1:]]).strip()
        if first[0] == "?":
            raise GtpError(text)
        return text

    def close(self):
        try:
            if self.process.poll() is None:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclasses.dataclass
class GameResult:
    """One game: who played which colour, the moves (points, PASS), the winner (BLACK,
    WHITE or 0 for a draw), the score (black − white − komi; None after a resignation or
    a forfeit), why it ended and how dead stones were settled."""

    black: str
    white: str
    moves: list
    winner: int
    score: float | None
    reason: str
    dead_stones: str
    komi: float

    @property
    def result(self) -> str:
        """SGF's RE: ``B+3.5``, ``W+R``, ``B+F`` (forfeit), ``0`` (draw)."""
        if self.winner == 0:
            return "0"
        letter = "B" if self.winner == BLACK else "W"
        if self.score is not None:
            return score_text(self.score)
        return f"{letter}+{'R' if self.reason.endswith('resigned') else 'F'}"


def _forfeit(black, white, moves, loser: int, why: str, komi) -> GameResult:
    return GameResult(black.name, white.name, moves, WHITE if loser == BLACK else BLACK, None,
                      why, "not scored", komi)


def play_game(black: GtpClient, white: GtpClient, komi: float = 7.5,
              max_moves: int = 400, ask_dead: bool = True) -> GameResult:
    """One game between two engines (already started) with the referee's rules;
    ``ask_dead`` False assumes every stone alive without asking the engines."""
    engines = {BLACK: black, WHITE: white}
    for engine in engines.values():
        for command in ("boardsize 19", "clear_board", f"komi {komi:g}"):
            engine.ask(command)
    board, moves, reason = Board(19), [], f"{max_moves} moves played"
    for number in range(max_moves):
        colour = BLACK if number % 2 == 0 else WHITE
        engine, other = engines[colour], engines[3 - colour]
        side = "black" if colour == BLACK else "white"
        try:
            answer = engine.ask(f"genmove {side}")
        except (GtpError, EngineError) as error:
            return _forfeit(black, white, moves, colour, f"{side} ({engine.name}) failed: {error}",
                            komi)
        if answer.lower() == "resign":
            return GameResult(black.name, white.name, moves, 3 - colour, None,
                              f"{side} resigned", "not scored", komi)
        try:
            point = point_of_vertex(answer)
        except GtpError:
            return _forfeit(black, white, moves, colour,
                            f"{side} ({engine.name}) answered {answer[:40]!r}, not a move", komi)
        why = board.why_illegal(point, colour)
        if why is not None:
            return _forfeit(black, white, moves, colour, f"{side} ({engine.name}) played "
                            f"{vertex_of_point(point)}, illegal ({why})", komi)
        board.play(point, colour)
        moves.append(point)
        try:
            other.ask(f"play {side} {vertex_of_point(point)}")
        except (GtpError, EngineError) as error:
            return _forfeit(black, white, moves, 3 - colour, f"{'white' if colour == BLACK else 'black'} "
                            f"({other.name}) refused {side}'s {vertex_of_point(point)}: {error}",
                            komi)
        if point == PASS and len(moves) >= 2 and moves[-2] == PASS:
            reason = "two passes"
            break
    dead, settled = settle_dead(board, (black, white) if ask_dead else ())
    score = board.score(komi, dead)
    winner = 0 if score == 0 else (BLACK if score > 0 else WHITE)
    return GameResult(black.name, white.name, moves, winner, score, reason, settled, komi)


def settle_dead(board: Board, engines) -> tuple[list, str]:
    """(dead stones, how they were settled): from the first of ``engines`` that supports
    ``final_status_list``, else none (every stone alive)."""
    failures = []
    for engine in engines:
        if "final_status_list" not in engine.commands:
            continue
        try:
            dead = [point_of_vertex(v) for v in engine.ask("final_status_list dead").split()]
        except (GtpError, EngineError) as error:
            failures.append(f"{engine.name}'s final_status_list failed: {error}")
            continue
        dead = [p for p in dead if p != PASS and board.colour_at(p) != 0]
        return dead, f"dead stones from {engine.name}'s final_status_list ({len(dead)})"
    why = "; ".join(failures) if failures else (
        "not asked" if not engines else "no engine has final_status_list")
    return [], f"every stone assumed alive ({why})"


def wilson(wins: float, games: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a win rate (95 % with the default z)."""
    if games == 0:
        return 0.0, 1.0
    p = wins / games
    centre = (p + z * z / (2 * games)) / (1 + z * z / games)
    half = z / (1 + z * z / games) * math.sqrt(p * (1 - p) / games + z * z / (4 * games * games))
    return max(0.0, centre - half), min(1.0, centre + half)


def _sgf_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("]", "\\]")


def write_sgf(path, game: GameResult) -> None:
    """The game as an SGF file (main line only; the end's reason in the root comment)."""
    letters = "abcdefghijklmnopqrs"
    nodes = []
    for number, point in enumerate(game.moves):
        colour = "B" if number % 2 == 0 else "W"
        if point == PASS:
            nodes.append(f";{colour}[]")
        else:
            row, col = divmod(point, 19)
            nodes.append(f";{colour}[{letters[col]}{letters[row]}]")
    root = (f"(;GM[1]FF[4]CA[UTF-8]AP[cnnlab go match]SZ[19]RU[Tromp-Taylor]"
            f"KM[{game.komi:g}]PB[{_sgf_text(game.black)}]PW[{_sgf_text(game.white)}]"
            f"RE[{game.result}]C[{_sgf_text(game.reason + '; ' + game.dead_stones)}]")
    lines = [root]
    for start in range(0, len(nodes), 12):
        lines.append("".join(nodes[start:start + 12]))
    write_text(path, "\n".join(lines) + ")\n")


def play_match(first: str, second: str, games: int, komi: float = 7.5, max_moves: int = 400,
               timeout: float = 60.0, sgf_dir=None, report=print, ask_dead: bool = True) -> dict:
    """``games`` games between two engine command lines, colours alternating (``first`` is
    black in the odd games); returns the counts and the first engine's win rate."""
    engines = [GtpClient(first, timeout), GtpClient(second, timeout)]
    wins, draws, results = [0, 0], 0, []
    try:
        for number in range(games):
            order = (0, 1) if number % 2 == 0 else (1, 0)
            for index in order:  # an engine that died in the last game gets a fresh process
                if engines[index].process.poll() is not None:
                    engines[index] = GtpClient((first, second)[index], timeout)
            game = play_game(engines[order[0]], engines[order[1]], komi, max_moves, ask_dead)
            if game.winner == 0:
                draws += 1
            else:
                wins[order[0] if game.winner == BLACK else order[1]] += 1
            results.append(game)
            if sgf_dir is not None:
                Path(sgf_dir).mkdir(parents=True, exist_ok=True)
                write_sgf(Path(sgf_dir, f"game-{number + 1:03d}.sgf"), game)
            report(f"game {number + 1}: black {game.black}, white {game.white}: {game.result} "
                   f"after {len(game.moves)} moves ({game.reason}; {game.dead_stones})")
    finally:
        for engine in engines:
            engine.close()
    rate = (wins[0] + draws / 2) / games
    low, high = wilson(wins[0] + draws / 2, games)
    names = [engines[0].name, engines[1].name]
    report(f"{names[0]} ({first}): {wins[0]} wins, {names[1]} ({second}): {wins[1]} wins, "
           f"{draws} draws in {games} games")
    report(f"win rate of {names[0]}: {100 * rate:.1f}% (95% Wilson interval "
           f"{100 * low:.1f}%-{100 * high:.1f}%)")
    return {"games": games, "wins": wins, "draws": draws, "win_rate": rate,
            "interval": (low, high), "results": results}


def match_command(args) -> int:
    """``cnnlab go match``."""
    play_match(args.black, args.white, args.games, args.komi, args.max_moves, args.timeout,
               args.sgf_dir, ask_dead=args.dead_stones == "ask")
    return 0
