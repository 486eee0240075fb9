"""A GTP version 2 engine (Go Text Protocol, Farnebäck 2002) around a move policy.

``Engine.handle(line)`` answers one command line with ``=[id] result\\n\\n`` or
``?[id] message\\n\\n`` (or None for an empty or comment line), ``Engine.run(stdin,
stdout)`` serves until ``quit`` or the end of input. Nothing a controller sends can crash
it: every malformed or illegal command gets a ``?`` answer.

Vertices: GTP's ``D4`` is column D (letters A–T without I) and row 4 counted from the
bottom; the board and the policy count rows from the top, so ``point_of_vertex`` and
``vertex_of_point`` are the one place where that conversion happens (the referee uses
them too).

genmove: the policy's most probable legal, sensible move (``Board.sensible_moves``: legal
and not filling the mover's own true eye), or one sampled from p^(1/T) with a temperature
T > 0 (seeded). It passes when no sensible move is left, and also when the opponent has
just passed and the Tromp–Taylor count (every stone alive) already wins for the mover (a
policy network alone never sees that the game is over). It resigns when ``resign_below``
> 0 and the best sensible move's probability is below it.
"""

from __future__ import annotations

import sys

import numpy as np

from cnnlab.apps.go.board import BLACK, PASS, WHITE, Board, IllegalMoveError

__all__ = ["COMMANDS", "Engine", "gtp_command", "point_of_vertex", "vertex_of_point"]

COLUMNS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"
SIZE = 19
COMMANDS = ("protocol_version", "name", "version", "known_command", "list_commands", "quit",
            "boardsize", "clear_board", "komi", "play", "genmove", "undo", "showboard",
            "final_score")
_COLOURS = {"b": BLACK, "black": BLACK, "w": WHITE, "white": WHITE}
MAX_LINE = 10_000  # a longer command line is answered with an error, not parsed


class GtpError(ValueError):
    """A command that gets a ``?`` answer; the message is the answer's text."""


def point_of_vertex(vertex: str, size: int = SIZE) -> int:
    """A GTP vertex (``D4``, ``pass``) as a flat point (row from the top) or ``PASS``."""
    text = vertex.strip().upper()
    if text == "PASS":
        return PASS
    if len(text) < 2 or text[0] not in COLUMNS[:size] or not text[1:].isdigit():
        raise GtpError("invalid coordinate")
    number = int(text[1:])
    if not 1 <= number <= size:
        raise GtpError("invalid coordinate")
    return (size - number) * size + COLUMNS.index(text[0])


def vertex_of_point(point: int, size: int = SIZE) -> str:
    """The GTP vertex of a flat point (``pass`` for ``PASS``)."""
    if point == PASS:
        return "pass"
    row, col = divmod(int(point), size)
    return f"{COLUMNS[col]}{size - row}"


def colour_of(text: str) -> int:
    colour = _COLOURS.get(text.lower())
    if colour is None:
        raise GtpError("invalid color")
    return colour


class Engine:
    """GTP state (board, komi) and the answers.

    Args:
        policy: ``probabilities(board) -> (361,)`` for the side to move, e.g.
            ``evaluate.Policy``; None answers genmove with an error.
        temperature: 0 plays the most probable sensible move; > 0 samples.
        seed: the sampling's seed.
        resign_below: resign when the best sensible move's probability is below this.
    """

    def __init__(self, policy=None, temperature: float = 0.0, seed: int = 0,
                 resign_below: float = 0.0, name: str = "cnnlab", version: str | None = None):
        if version is None:
            import cnnlab

            version = cnnlab.__version__
        self.policy = policy
        self.temperature = float(temperature)
        self.resign_below = float(resign_below)
        self.rng = np.random.default_rng(seed)
        self.name, self.version = name, version
        self.komi = 7.5
        self.board = Board(SIZE, keep_undo=True)
        self.finished = False

    # --- protocol ----------------------------------------------------------------------
    def handle(self, line: str) -> str | None:
        """The full answer to one command line (None: nothing to answer)."""
        line = "".join(c for c in line if c in "\t\n" or ord(c) >= 32 and ord(c) != 127)
        line = line.split("#", 1)[0].replace("\t", " ").strip()
        if not line:
            return None
        words = line.split()
        ident = ""
        if words[0].isdigit():
            ident = words.pop(0)
        if not words:
            return f"?{ident} syntax error\n\n"
        command, arguments = words[0], words[1:]
        try:
            if command not in COMMANDS:
                raise GtpError("unknown command")
            result = getattr(self, "cmd_" + command)(arguments)
        except GtpError as error:
            return f"?{ident} {error}\n\n"
        return f"={ident}{' ' + result if result else ''}\n\n"

    def run(self, stdin=None, stdout=None) -> None:
        """Answer commands from ``stdin`` until ``quit`` or the end of input."""
        stdin = sys.stdin if stdin is None else stdin
        stdout = sys.stdout if stdout is None else stdout
        while True:
            line = stdin.readline(MAX_LINE + 1)  # bounded: a huge line never sits in memory
            if not line:
                return
            if len(line) > MAX_LINE and not line.endswith("\n"):
                while True:  # drop the rest of the over-long line, answer it once
                    rest = stdin.readline(MAX_LINE + 1)
                    if not rest or rest.endswith("\n"):
                        break
                answer = "? command too long\n\n"
            else:
                answer = self.handle(line)
            if answer is not None:
                stdout.write(answer)
                stdout.flush()
            if self.finished:
                return

    # --- commands ----------------------------------------------------------------------
    @staticmethod
    def _count(arguments, count: int):
        if len(arguments) != count:
            raise GtpError("syntax error")

    def cmd_protocol_version(self, arguments):
        return "2"

    def cmd_name(self, arguments):
        return self.name

    def cmd_version(self, arguments):
        return self.version

    def cmd_known_command(self, arguments):
        self._count(arguments, 1)
        return "true" if arguments[0] in COMMANDS else "false"

    def cmd_list_commands(self, arguments):
        return "\n".join(COMMANDS)

    def cmd_quit(self, arguments):
        self.finished = True
        return ""

    def cmd_boardsize(self, arguments):
        self._count(arguments, 1)
        if not arguments[0].isdigit():
            raise GtpError("boardsize not an integer")
        if int(arguments[0]) != SIZE:
            raise GtpError("unacceptable size")
        self.board = Board(SIZE, keep_undo=True)
        return ""

    def cmd_clear_board(self, arguments):
        self.board = Board(SIZE, keep_undo=True)
        return ""

    def cmd_komi(self, arguments):
        self._count(arguments, 1)
        try:
            komi = float(arguments[0])
        except ValueError:
            raise GtpError("komi not a float") from None
        if not np.isfinite(komi):
            raise GtpError("komi not a float")
        self.komi = komi
        return ""

    def cmd_play(self, arguments):
        self._count(arguments, 2)
        colour = colour_of(arguments[0])
        point = point_of_vertex(arguments[1])
        if point != PASS and self.board.why_illegal(point, colour) is not None:
            raise GtpError("illegal move")
        try:
            self.board.play(point, colour)
        except IllegalMoveError:
            raise GtpError("illegal move") from None
        return ""

    def cmd_genmove(self, arguments):
        self._count(arguments, 1)
        colour = colour_of(arguments[0])
        if self.policy is None:
            raise GtpError("no policy to generate a move with")
        point = self.choose(colour)
        if point is None:
            return "resign"
        self.board.play(point, colour)
        return vertex_of_point(point)

    def cmd_undo(self, arguments):
        try:
            self.board.undo()
        except IndexError:
            raise GtpError("cannot undo") from None
        return ""

    def cmd_showboard(self, arguments):
        board = self.board
        letters = "   " + " ".join(COLUMNS[:SIZE])
        marks = {0: ".", BLACK: "X", WHITE: "O"}
        rows = [letters]
        for row, colours in enumerate(board.colours()):
            number = SIZE - row
            rows.append(f"{number:2d} " + " ".join(marks[int(c)] for c in colours)
                        + f" {number:2d}")
        rows.append(letters)
        rows.append(f"{'Black' if board.to_move == BLACK else 'White'} to move; captured by "
                    f"black {board.captures(BLACK)}, by white {board.captures(WHITE)}")
        return "\n" + "\n".join(rows)

    def cmd_final_score(self, arguments):
        return score_text(self.board.score(self.komi))

    # --- move choice -------------------------------------------------------------------
    def choose(self, colour: int) -> int | None:
        """The move for ``colour``: a point, ``PASS``, or None to resign."""
        board = self.board
        board.to_move = colour
        sensible = board.sensible_moves(colour)
        if not len(sensible):
            return PASS
        sign = 1 if colour == BLACK else -1
        if board.consecutive_passes and sign * board.score(self.komi) > 0:
            return PASS  # the opponent passed and the count already wins
        probabilities = np.asarray(self.policy.probabilities(board), np.float64)[sensible]
        best = int(np.argmax(probabilities))
        if self.resign_below > 0 and probabilities[best] < self.resign_below:
            return None
        if self.temperature > 0:
            weights = np.power(np.maximum(probabilities, 1e-300), 1 / self.temperature)
            if weights.sum() > 0 and np.isfinite(weights).all():
                return int(sensible[self.rng.choice(len(sensible), p=weights / weights.sum())])
        return int(sensible[best])


def score_text(score: float) -> str:
    """GTP's result form: ``B+3.5``, ``W+0.5`` or ``0``."""
    if score == 0:
        return "0"
    return f"{'B' if score > 0 else 'W'}+{abs(score):g}"


def gtp_command(args) -> int:
    """``cnnlab go gtp [MODEL]``: serve GTP on stdin/stdout."""
    from cnnlab.apps.go.evaluate import load_policy

    policy = load_policy(args.model)
    Engine(policy, args.temperature, args.seed, args.resign_below).run()
    return 0
