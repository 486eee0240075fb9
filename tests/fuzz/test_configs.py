"""Fuzzing the config parser: random nested configs may raise only cnnlab's errors.

``from_config`` and the loaders' shape-only pre-check (``model_file.expected_weights``)
are given random module configs (registered and unknown class names, plausible and
random arguments, nested containers) and zoo configs with one value replaced.
Longer hunt: ``python -m pytest tests/fuzz --hypothesis-profile=long``.
"""

from __future__ import annotations

import copy

from hypothesis import given
from hypothesis import strategies as st

import cnnlab.limits
from cnnlab import models, nn
from cnnlab.errors import CnnlabError
from cnnlab.model_file import expected_weights
from cnnlab.nn.config import registered

_ARGUMENTS = [
    "units",
    "filters",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "groups",
    "use_bias",
    "in_features",
    "in_channels",
    "num_features",
    "activation",
    "kernel_initializer",
    "seed",
    "rate",
    "momentum",
    "eps",
    "pool_size",
    "size",
    "alpha",
    "beta",
    "k",
    "negative_slope",
    "axis",
    "name",
    "layers",
    "modules",
]

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 40)
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.sampled_from(["same", "valid", "relu", "softmax", "he_normal", "zeros"])
    | st.text(max_size=6)
)


def _module(children):
    arguments = st.dictionaries(
        st.sampled_from(_ARGUMENTS) | st.text(max_size=4),
        _scalars | st.lists(_scalars, max_size=3) | children | st.lists(children, max_size=3),
        max_size=5,
    )
    return st.fixed_dictionaries(
        {
            "class_name": st.sampled_from(sorted(registered())) | st.text(max_size=8),
            "config": arguments | _scalars,
        }
    )


_configs = st.recursive(_module(_scalars), _module, max_leaves=12) | _scalars | st.lists(_scalars)

_ZOO = [models.get(name).get_config() for name in ("lecture", "lenet5")]


def _paths(value, prefix=()):
    """Every place in a nested config where a value sits."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _replaced(config, path, value):
    if not path:
        return value
    config = copy.deepcopy(config)
    target = config
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return config


@st.composite
def _mutated_zoo_configs(draw):
    config = draw(st.sampled_from(_ZOO))
    path = draw(st.sampled_from(list(_paths(config))))
    return _replaced(
        config, path, draw(_scalars | st.lists(_scalars, max_size=4) | _module(_scalars))
    )


def _only_cnnlab_errors(config, input_shape):
    with cnnlab.limits.override(max_array_bytes=1 << 20, max_total_bytes=1 << 22):
        try:
            nn.from_config(config)
        except CnnlabError:
            pass
        try:
            expected_weights("model.npz", config, input_shape, "config")
        except CnnlabError as error:
            assert "model.npz" in str(error)


_input_shapes = st.none() | st.tuples(st.integers(1, 4), st.integers(1, 40), st.integers(1, 40))


@given(config=_configs, input_shape=_input_shapes)
def test_random_configs_raise_only_cnnlab_errors(config, input_shape):
    _only_cnnlab_errors(config, input_shape)


@given(config=_mutated_zoo_configs(), input_shape=_input_shapes | st.just((1, 28, 28)))
def test_mutated_zoo_configs_raise_only_cnnlab_errors(config, input_shape):
    _only_cnnlab_errors(config, input_shape)
