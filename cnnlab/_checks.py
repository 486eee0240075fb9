"""Argument checks with one wording: ``"{owner}: {name} must be {what}, received {value!r}"``.

Wrong types raise ``TypeError``; values of the right type outside the allowed
range raise ``ValueError``. ``bool`` is never accepted as a number. Every public
function and layer checks its arguments with these, so the messages read alike.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["check_choice", "check_int", "check_number", "check_type"]


def _fail(error, owner: str, name: str, what: str, value):
    raise error(f"{owner}: {name} must be {what}, received {name}={value!r}")


def check_type(value, types, owner: str, name: str, what: str):
    """Return ``value`` if it is an instance of ``types``, else raise TypeError."""
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        _fail(TypeError, owner, name, what, value)
    return value


def _as_tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def check_int(value, owner: str, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int; TypeError if not an integer, ValueError outside [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(TypeError, owner, name, "an int", value)
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        _fail(ValueError, owner, name, _range_text(minimum, maximum, False, False, "an int"), value)
    return value


def check_number(value, owner: str, name: str, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, finite: bool = True) -> float:
    """Return ``value`` as a float; TypeError if not a real number, ValueError if NaN, infinite or out of range.

    ``low``/``high`` bound the value, inclusive unless ``low_open``/``high_open``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(TypeError, owner, name, "a number", value)
    value = float(value)
    what = _range_text(low, high, low_open, high_open, "a finite number" if finite else "a number")
    if math.isnan(value) or (finite and math.isinf(value)):
        _fail(ValueError, owner, name, what, value)
    if low is not None and (value <= low if low_open else value < low):
        _fail(ValueError, owner, name, what, value)
    if high is not None and (value >= high if high_open else value > high):
        _fail(ValueError, owner, name, what, value)
    return value


def check_choice(value, choices, owner: str, name: str):
    """Return ``value`` if it is one of ``choices``, else raise ValueError (an unhashable value included)."""
    try:
        ok = value in choices
    except TypeError:
        ok = False
    if not ok:
        _fail(ValueError, owner, name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def _range_text(low, high, low_open, high_open, kind: str) -> str:
    if low is None and high is None:
        return kind
    if high is None:
        return f"{kind} {'>' if low_open else '>='} {low}"
    if low is None:
        return f"{kind} {'<' if high_open else '<='} {high}"
    return f"{kind} in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
