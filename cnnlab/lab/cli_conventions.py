"""The main CLI's conventions, for the lab's commands: errors, number flags, old flag names.

- An error is ``cnnlab <command>: error: <message>`` on stderr with exit status 2,
  as argparse prints a bad flag and as ``cnnlab train`` prints its own errors.
- A number flag is checked when parsed (finite, in range), so a bad value is an
  argparse error naming the flag.
- A renamed flag keeps its old spelling as a hidden alias that says it is old.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys

from cnnlab.errors import CnnlabError

__all__ = ["DeprecatedAlias", "LabCommandError", "number_flag", "positive_int", "reports_errors"]


class LabCommandError(CnnlabError):
    """A user-facing error of a lab command: 'cnnlab <command>: error: ...', status 2."""


def reports_errors(command: str):
    """Turn cnnlab's own errors and the system's (a missing file, an --out that can't be
    written) into the CLI's message and status 2.

    Only these: any other exception is a bug in cnnlab and keeps its traceback.
    """

    def decorate(handler):
        @functools.wraps(handler)
        def run(args) -> int:
            try:
                return handler(args)
            except CnnlabError as error:
                print(f"cnnlab {command}: error: {error}", file=sys.stderr)
                return 2
            except OSError as error:
                print(f"cnnlab {command}: error: {_os_message(error)}", file=sys.stderr)
                return 2

        return run

    return decorate


def _os_message(error: OSError) -> str:
    """'PATH: reason' without Python's '[Errno N]' prefix."""
    reason = error.strerror or str(error)
    return f"{error.filename}: {reason}" if error.filename else reason


def number_flag(kind, low, high=None, low_open: bool = False, high_open: bool = False):
    """An argparse type: the flag's text as ``kind`` (int or float), finite and in range."""
    bounds = [f"{'>' if low_open else '>='} {low:g}"] + (
        [] if high is None else [f"{'<' if high_open else '<='} {high:g}"]
    )
    what = f"{'an int' if kind is int else 'a finite number'} {' and '.join(bounds)}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, received {text!r}") from None
        too_low = value <= low if low_open else value < low
        too_high = high is not None and (value >= high if high_open else value > high)
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"expected {what}, received {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in "invalid <name> value"
    return parse


positive_int = number_flag(int, 1)


class DeprecatedAlias(argparse.Action):
    """A hidden old spelling of a flag: stores into the new flag's ``dest`` and says so."""

    def __init__(self, option_strings, dest, new_flag: str, **kwargs):
        self.new_flag = new_flag
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(
            f"{parser.prog}: note: {option_string} is deprecated; use {self.new_flag}",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)
