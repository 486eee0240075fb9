"""A trained policy network in use: loading it (a file, a run folder or the shipped model),
the move probabilities of a board, and ``cnnlab go evaluate``'s top-1 / top-5 on SGF files.

The shipped model is package data, ``cnnlab/apps/go/model/policy.npz`` (read with
``importlib.resources``), so ``cnnlab go gtp`` and ``cnnlab go evaluate`` work with no
training and no download. The input encoding (48 planes or the 20 raw-board planes) is
read from the model's input shape.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import sys

import numpy as np

from cnnlab.apps.go import positions as pos
from cnnlab.errors import CnnlabError, FileFormatError

__all__ = ["SHIPPED_MODEL", "Policy", "evaluate_command", "evaluate_files", "load_policy"]

SHIPPED_MODEL = "policy.npz"


@contextlib.contextmanager
def shipped_model_path():
    """The shipped model's path on disk (a temporary copy if the package is zipped)."""
    resource = importlib.resources.files("cnnlab.apps.go") / "model" / SHIPPED_MODEL
    with importlib.resources.as_file(resource) as path:
        if not path.is_file():
            raise CnnlabError(f"the shipped Go model {path} is missing; give a model file")
        yield path


class Policy:
    """A policy network and its encoding: ``probabilities(board)`` → float64 (361,).

    Args:
        model: a built ``alphago_policy`` (any k, depth, pooling) with input (planes, 19, 19).
        source: where it came from, for messages.
    """

    def __init__(self, model, source: str = "model"):
        shape = tuple(getattr(model, "input_shape", None) or ())
        if len(shape) != 3 or shape[1:] != (pos.BOARD_SIZE, pos.BOARD_SIZE):
            raise FileFormatError(source, f"not a Go policy network: its input is {shape}, "
                                  f"expected (planes, 19, 19)")
        try:
            self.encoding = pos.encoding_of_planes(shape[0])
        except ValueError as error:
            raise FileFormatError(source, str(error)) from None
        self.model = model
        self.source = str(source)

    def logits(self, planes: np.ndarray) -> np.ndarray:
        from cnnlab.apps.go.train import forward_logits

        logits = forward_logits(self.model, planes)
        if logits.ndim != 2 or logits.shape[1] != pos.POINTS:
            raise FileFormatError(self.source, f"not a Go policy network: it gives "
                                  f"{logits.shape[1:]} outputs, expected 361")
        return logits

    def probabilities(self, board) -> np.ndarray:
        """Softmax over the 361 points for ``board``'s side to move."""
        logits = self.logits(pos.board_planes(board, self.encoding))[0].astype(np.float64)
        logits -= logits.max()
        weights = np.exp(logits)
        return weights / weights.sum()


def load_policy(path=None) -> Policy:
    """The policy in a model file or run folder, or the shipped one when ``path`` is None."""
    from cnnlab.runs import load_any_model

    if path is None:
        with shipped_model_path() as shipped:
            return Policy(load_any_model(shipped), str(shipped))
    return Policy(load_any_model(path), str(path))


def evaluate_files(policy: Policy, paths, batch_size: int = 256):
    """(result of ``train.measure``, ReadReport, games stopped by reason) over the SGF files."""
    from cnnlab.apps.go.sgf_read import ReadReport, read_games
    from cnnlab.apps.go.train import measure

    report = ReadReport()
    games = list(read_games(paths, report))
    positions = pos.encode_games(games, policy.encoding)
    return measure(policy.model, positions, batch_size), report, positions


def evaluate_command(args) -> int:
    """``cnnlab go evaluate [MODEL] --games DIR_OR_FILE...``."""
    from cnnlab.apps.go.train import accuracy_lines

    policy = load_policy(args.model)
    result, report, positions = evaluate_files(policy, args.games, args.batch_size)
    print(f"{policy.source}: {positions.games:,} games, {result['positions']:,} moves")
    if not result["positions"]:
        raise CnnlabError("no move to evaluate in " + ", ".join(map(str, args.games))
                          + " (" + "; ".join(report.lines()).replace("\n", ";") + ")")
    for line in accuracy_lines(result, ""):
        print(line)
    for line in report.lines():
        print(line)
    passes = report.moves - result["positions"]
    stopped = ", ".join(f"{n} at a {why} move" for why, n in sorted(positions.stopped.items()))
    print(f"moves not scored: {passes:,} (passes"
          + (f"; games stopped at a rule the reader does not check: {stopped}" if stopped
             else "") + ")")
    sys.stdout.flush()
    return 0
