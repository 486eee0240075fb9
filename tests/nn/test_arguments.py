"""Constructor arguments: int-or-tuple normalisation, input shapes, configs and reprs read back."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cnnlab import nn
from cnnlab.nn.arguments import (
    as_input_shape,
    init_arguments,
    non_default_arguments,
    to_tuple,
)


def test_to_tuple_accepts_an_int_or_n_ints_including_numpy_integers():
    assert to_tuple(3, 2, "kernel_size", "Conv2D", minimum=1) == (3, 3)
    assert to_tuple([2, np.int64(5)], 2, "kernel_size", "Conv2D", minimum=1) == (2, 5)
    assert to_tuple(0, 1, "padding", "Conv1D", minimum=0) == (0,)
    assert all(type(n) is int for n in to_tuple(np.int32(4), 2, "stride", "MaxPool2D", 1))


@pytest.mark.parametrize(
    "value,error",
    [
        ((3, 3, 3), ValueError),
        (0, ValueError),
        ((1, -1), ValueError),
        (2.0, TypeError),
        ((1, True), TypeError),
        (None, TypeError),
    ],
)
def test_to_tuple_echoes_the_whole_argument(value, error):
    expected = "Conv2D: stride must be an int or 2 ints >= 1, received stride=" + repr(value)
    with pytest.raises(error, match=re.escape(expected) + "$"):
        to_tuple(value, 2, "stride", "Conv2D", minimum=1)


def test_as_input_shape():
    assert as_input_shape([1, np.int64(28), 28], "build") == (1, 28, 28)
    assert as_input_shape((), "build") == ()
    with pytest.raises(TypeError, match=r"build: input_shape must be a tuple of ints >= 1"):
        as_input_shape(28, "build")
    with pytest.raises(ValueError, match=r"received input_shape=\(1, 0\)"):
        as_input_shape((1, 0), "build")


class Stores(nn.Module):
    def __init__(self, width, depth=2, *extra, **options):
        super().__init__()
        self.width, self.depth = width, depth


class Forgets(nn.Module):
    def __init__(self, width):
        super().__init__()


def test_init_arguments_read_each_argument_back_and_name_a_missing_one():
    assert init_arguments(Stores((3, 4))) == {"width": [3, 4], "depth": 2}  # JSON-ready
    assert non_default_arguments(Stores(5, depth=3)) == ["5", "depth=3"]
    assert non_default_arguments(Stores(5)) == ["5"]
    with pytest.raises(NotImplementedError, match=r"Forgets.get_config: argument 'width'"):
        init_arguments(Forgets(1))
    assert non_default_arguments(Forgets(1)) == []  # repr still works
