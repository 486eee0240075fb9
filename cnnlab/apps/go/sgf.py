"""A bounded, robust SGF reader for Go game records: the main line of the first game.

``parse_game(data, source)`` turns the bytes of one SGF file into a ``Game`` or raises
``SgfError`` with a short ``reason`` (what ``sgf_read.read_games`` counts when it skips a
file). It handles every quirk the datasets in ``../shared/datasets`` document:

- the main line is the first child at every branch: everything before the first ``)``
  (a commentated broadcast nests its variations ``(;W[..](;B[..] ...``);
- setup stones (AB/AW/AE) in the root or any node before the first move (Fox puts the
  handicap stones in the SECOND node; sgfmill refuses those files);
- player names with bytes that are not UTF-8: values are kept as bytes, names decoded
  with ``errors="replace"`` (UTF-8, or the CA[] charset when it is a known one);
- move values wrapped across lines (``W[dc\\n]``): whitespace inside a move is dropped;
- KM unreliable (0 in most Fox games, ×100 in others): ``Game.komi`` divides values of
  50 or more by 100 and is only a hint (Fox's 375 under Chinese rules becomes 3.75: 3¾
  stones, i.e. 7.5 points; nothing here converts it);
- a move on an occupied point (a recording glitch) or a suicide truncates the game
  there (``sgf_replay``); ``Game.truncated`` says how many moves were dropped;
- passes as ``B[]`` and, on boards up to 19×19, ``B[tt]``;
- a board other than ``sizes`` (default 19×19) is skipped with the reason "board size".

Nothing recurses and every count is bounded (``SgfLimits``), so a hostile file can only
be skipped. Points are (row, column) from the top left, 0-based: SGF ``B[pd]`` is
column p (15), row d (3) → (3, 15); ``row * size + column`` is the policy's index.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import re

from cnnlab.apps.go.sgf_replay import replay_until_illegal
from cnnlab.errors import FileFormatError

__all__ = ["BLACK", "WHITE", "Game", "SgfError", "SgfLimits", "parse_game"]

BLACK, WHITE = "b", "w"

# One token: a bracket, a node's ';', or a property: an identifier and its [values].
# FF[3] allowed lower-case letters inside identifiers (AddBlack = AB): they are dropped.
_TOKEN = re.compile(
    rb"\s*(?:(?P<open>\()|(?P<close>\))|(?P<node>;)"
    rb"|(?P<ident>[A-Za-z]+)\s*(?P<values>(?:\[(?:[^\]\\]|\\.)*\]\s*)+))",
    re.DOTALL,
)
_VALUE = re.compile(rb"\[((?:[^\]\\]|\\.)*)\]", re.DOTALL)
_LOWER = bytes(range(ord("a"), ord("z") + 1))
_WHITESPACE = b" \t\r\n\v\f"


class SgfError(FileFormatError):
    """A game record that cannot be used; ``reason`` is the short name the reader counts."""

    def __init__(self, source, reason: str, detail: str):
        self.reason = reason
        super().__init__(source, f"{reason}: {detail}")


@dataclasses.dataclass(frozen=True)
class SgfLimits:
    """Bounds on one record; anything beyond is skipped with the reason in brackets."""

    #: bytes of one file or zip member ("too large")
    max_file_bytes: int = 1 << 20
    #: nodes on the main line ("too many nodes")
    max_nodes: int = 2_000
    #: nesting of variations, ``(`` inside ``(`` ("too deep")
    max_depth: int = 2_000
    #: values of one property, e.g. AB[aa][ab]… ("bad value")
    max_values: int = 400


@dataclasses.dataclass(frozen=True)
class Game:
    """One game's main line.

    ``setup_black``/``setup_white``: stones on the board before the first move (handicap);
    ``moves``: (colour, point) with colour ``"b"``/``"w"`` and point (row, column) or None
    for a pass; ``komi``: as recorded (÷100 when ≥ 50), unreliable; ``handicap``: HA or,
    without one, the number of black setup stones; ``truncated``: moves dropped after an
    illegal one, ``truncated_by`` why: "occupied point" or "suicide".
    """

    size: int
    setup_black: tuple
    setup_white: tuple
    moves: tuple
    black: str = ""
    white: str = ""
    result: str = ""
    komi: float | None = None
    handicap: int = 0
    source: str = ""
    truncated: int = 0
    truncated_by: str = ""

    def key(self) -> str:
        """A hash of what was played (size, setup, moves; not names or source): equal for
        the same game stored twice."""
        return self._key

    @functools.cached_property
    def _key(self) -> str:  # computed once: sets and splits ask for it often
        moves = [(colour, point) for colour, point in self.moves]
        text = f"{self.size} {sorted(self.setup_black)} {sorted(self.setup_white)} {moves}"
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _main_line(data: bytes, source, limits: SgfLimits) -> list[dict]:
    """The nodes before the first ``)`` of the first game tree, each {ident: [raw values]}.

    The rest of the tree (other variations, later games) is scanned for well-formedness
    and nesting depth, never stored.
    """
    position = 0
    if data.startswith(b"\xef\xbb\xbf"):
        position = 3
    nodes, depth, main_line_open, started = [], 0, True, False
    end = len(data)
    while True:
        match = _TOKEN.match(data, position)
        if match is None:
            rest = data[position:].strip(_WHITESPACE)
            if not started:
                raise SgfError(source, "not SGF", "no game tree: the file does not start with '('")
            if not rest:
                raise SgfError(source, "truncated", f"the file ends inside {depth} open '('")
            if rest[:1] == b"[" or (re.match(rb"[A-Za-z]+\s*\[", rest) and b"]" not in rest):
                raise SgfError(source, "truncated", f"a value opened at byte {position} never closes")
            raise SgfError(source, "not SGF", f"unexpected {rest[:12]!r} at byte {position}")
        position = match.end()
        kind = match.lastgroup if match.lastgroup != "values" else "ident"
        if not started and kind != "open":
            raise SgfError(source, "not SGF", "no game tree: the file does not start with '('")
        if kind == "open":
            started = True
            depth += 1
            if depth > limits.max_depth:
                raise SgfError(source, "too deep", f"variations nested deeper than {limits.max_depth}")
        elif kind == "close":
            depth -= 1
            main_line_open = False
            if depth == 0:
                break  # the first game tree is complete; later ones are ignored
        elif kind == "node":
            if main_line_open:
                if len(nodes) >= limits.max_nodes:
                    raise SgfError(source, "too many nodes", f"more than {limits.max_nodes} on the main line")
                nodes.append({})
        elif main_line_open:
            if not nodes:
                raise SgfError(source, "not SGF", f"a property before the first ';' at byte {match.start()}")
            ident = match.group("ident").translate(None, _LOWER).decode("ascii")
            values = _VALUE.findall(match.group("values"))
            if len(values) > limits.max_values:
                raise SgfError(source, "bad value", f"{ident} has {len(values)} values")
            nodes[-1].setdefault(ident, []).extend(values)
        if position >= end and depth > 0:
            raise SgfError(source, "truncated", f"the file ends inside {depth} open '('")
    if not nodes:
        raise SgfError(source, "not SGF", "the game tree has no node")
    return nodes


# CA[] names the charset of text values; only these are honoured (an allow-list: a
# string from a file never picks a codec by itself), anything else is read as UTF-8.
_CHARSETS = {
    "utf-8": "utf-8", "utf8": "utf-8", "us-ascii": "utf-8", "ascii": "utf-8",
    "iso-8859-1": "latin-1", "latin-1": "latin-1", "latin1": "latin-1",
    "gb2312": "gb18030", "gbk": "gb18030", "gb18030": "gb18030", "big5": "big5",
    "shift_jis": "shift_jis", "sjis": "shift_jis", "euc-jp": "euc_jp", "euc-kr": "euc_kr",
}


def _charset(root: dict) -> str:
    value = _first(root, "CA")
    if value is None:
        return "utf-8"
    return _CHARSETS.get(value.strip().lower().decode("ascii", errors="replace"), "utf-8")


def _text(value: bytes, charset: str = "utf-8") -> str:
    """An SGF text value: escapes resolved, soft line breaks dropped, bad bytes replaced."""
    value = re.sub(rb"\\\r?\n", b"", value)
    value = re.sub(rb"\\(.)", rb"\1", value, flags=re.DOTALL)
    return value.decode(charset, errors="replace").strip()


def _first(node: dict, ident: str) -> bytes | None:
    values = node.get(ident)
    return values[0] if values else None


def _number(value: bytes | None, kind=int):
    if value is None:
        return None
    try:
        number = kind(value.strip().decode("ascii"))
    except (UnicodeDecodeError, ValueError, OverflowError):
        return None
    return number if kind is int or math.isfinite(number) else None


def _board_size(root: dict, source, sizes) -> int:
    value = _first(root, "SZ")
    if value is None:
        size = 19  # the SGF default for Go
    else:
        parts = value.split(b":")
        numbers = [_number(p) for p in parts]
        if len(parts) > 2 or None in numbers:
            raise SgfError(source, "bad value", f"SZ[{value[:20]!r}]")
        if len(numbers) == 2 and numbers[0] != numbers[1]:
            raise SgfError(source, "board size", f"{numbers[0]}×{numbers[1]} is not square")
        size = numbers[0]
    if size not in sizes:
        shown = size if abs(size) < 10**6 else "huge"
        raise SgfError(source, "board size", f"{shown}×{shown}; reading {sorted(sizes)}")
    return size


def _point(value: bytes, size: int, source, ident: str):
    """(row, column) of a two-letter value; whitespace inside dropped (wrapped lines)."""
    letters = value.translate(None, _WHITESPACE)
    if len(letters) == 2:
        column, row = letters[0] - ord("a"), letters[1] - ord("a")
        if 0 <= row < size and 0 <= column < size:
            return (row, column)
    raise SgfError(source, "bad value", f"{ident}[{value[:20]!r}] is not a point of a {size}×{size} board")


def _points(values: list, size: int, source, ident: str) -> list:
    """A point list; FF[4]'s compressed rectangles ``[aa:cc]`` are expanded."""
    found = []
    for value in values:
        if b":" in value:
            first, last = value.split(b":", 1)
            (r0, c0), (r1, c1) = _point(first, size, source, ident), _point(last, size, source, ident)
            found += [(r, c) for r in range(min(r0, r1), max(r0, r1) + 1)
                      for c in range(min(c0, c1), max(c0, c1) + 1)]
        else:
            found.append(_point(value, size, source, ident))
    return found


def _move(value: bytes, size: int, source, ident: str):
    letters = value.translate(None, _WHITESPACE)
    if not letters or (letters == b"tt" and size <= 19):
        return None  # a pass
    return _point(letters, size, source, ident)


def _apply_setup(node: dict, size: int, source, black: set, white: set) -> None:
    """AB/AW add stones (over any already there), AE clears points."""
    for ident, add, remove in (("AB", black, white), ("AW", white, black)):
        points = _points(node.get(ident, []), size, source, ident)
        add.update(points)
        remove.difference_update(points)
    for point in _points(node.get("AE", []), size, source, "AE"):
        black.discard(point)
        white.discard(point)


def parse_game(data: bytes, source="<sgf>", limits: SgfLimits = SgfLimits(),
               sizes=(19,)) -> Game:
    """The main line of the first game in ``data`` (bytes of one SGF file).

    Raises ``SgfError`` (``reason``: "not SGF", "truncated", "too deep", "too many nodes",
    "bad value", "not Go", "board size", "setup after moves", "no moves").
    """
    if len(data) > limits.max_file_bytes:
        raise SgfError(source, "too large", f"{len(data):,} bytes > {limits.max_file_bytes:,}")
    nodes = _main_line(data, source, limits)
    root = nodes[0]
    game_type = _first(root, "GM")
    if game_type is not None and game_type.strip() != b"1":
        raise SgfError(source, "not Go", f"GM[{game_type[:10]!r}] (Go is GM[1])")
    size = _board_size(root, source, set(sizes))
    black, white, moves = set(), set(), []
    for node in nodes:
        if "AB" in node or "AW" in node or "AE" in node:
            if moves:
                raise SgfError(source, "setup after moves", f"AB/AW/AE after move {len(moves)}")
            _apply_setup(node, size, source, black, white)
        black_move, white_move = node.get("B"), node.get("W")
        if black_move is None and white_move is None:
            continue
        if black_move is not None and white_move is not None:
            raise SgfError(source, "bad value", f"a node with both B and W (move {len(moves) + 1})")
        colour, values = (BLACK, black_move) if white_move is None else (WHITE, white_move)
        if len(values) != 1:
            raise SgfError(source, "bad value", f"{colour.upper()} with {len(values)} values")
        moves.append((colour, _move(values[0], size, source, colour.upper())))
    if not moves:
        raise SgfError(source, "no moves", "the main line holds no move")
    legal, illegal = replay_until_illegal(size, black, white, moves)
    if legal == 0:
        raise SgfError(source, "no moves", f"the first move is illegal ({illegal})")
    handicap = _number(_first(root, "HA"))
    if handicap is None or not 0 <= handicap <= size * size:
        handicap = len(black) if len(black) > 1 and not white else 0
    komi = _number(_first(root, "KM"), float)
    if komi is not None and abs(komi) >= 50:
        komi /= 100  # Fox writes 650 for 6.5
    return Game(
        size=size,
        setup_black=tuple(sorted(black)),
        setup_white=tuple(sorted(white)),
        moves=tuple(moves[:legal]),
        black=_text(_first(root, "PB") or b"", _charset(root)),
        white=_text(_first(root, "PW") or b"", _charset(root)),
        result=_text(_first(root, "RE") or b""),
        komi=komi,
        handicap=handicap,
        source=str(source),
        truncated=len(moves) - legal,
        truncated_by=illegal,
    )
