"""Module: registration, nesting, state_dict, modes, built, dtype, seeds, config, branching."""

from __future__ import annotations

import numpy as np
import pytest

import cnnlab.functional as F
from cnnlab import nn
from cnnlab.gradcheck import gradcheck
from cnnlab.optim import SGD
from cnnlab.tensor import Tensor


class Affine(nn.Module):
    def __init__(self, n=3):
        super().__init__()
        self.n = n
        self.scale = Tensor(np.ones(n, dtype=np.float32), requires_grad=True)
        self.register_buffer("count", np.zeros(1, dtype=np.float32))

    def forward(self, x):
        return x * self.scale


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = Affine(3)
        self.second = Affine(3)
        self.bias = Tensor(np.zeros(3, dtype=np.float32), requires_grad=True)

    def forward(self, x):
        return self.second(self.first(x)) + self.bias


@nn.register
class SentenceCNN(nn.Module):
    """Kim (2014)-style sentence CNN: parallel Conv1D of several widths, max over time, dense."""

    def __init__(self, widths=(2, 3, 4), filters=4, num_classes=2, seed=None):
        super().__init__()
        self.widths, self.filters, self.num_classes, self.seed = widths, filters, num_classes, seed
        self.convs = nn.ModuleList([nn.Conv1D(filters, w, activation="relu") for w in widths])
        self.dropout = nn.Dropout(0.5)
        self.out = nn.Dense(num_classes)

    def forward(self, x):
        pooled = [conv(x).max(axis=2) for conv in self.convs]
        return self.out(self.dropout(F.concat(pooled, axis=1)))


def test_attribute_assignment_registers_parameters_buffers_and_modules():
    model = Outer()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["bias", "first.scale", "second.scale"]
    assert [name for name, _ in model.named_buffers()] == ["first.count", "second.count"]
    assert model.children() == [model.first, model.second]
    assert model.num_parameters() == 9
    assert all(p.requires_grad for p in model.parameters())


def test_plain_attributes_and_reassignment():
    model = Affine()
    model.note = "hello"
    model.frozen = Tensor(np.ones(2))  # no requires_grad: a plain attribute, not a parameter
    assert [n for n, _ in model.named_parameters()] == ["scale"]
    model.scale = None  # replacing a parameter by a plain value unregisters it
    assert model.parameters() == [] and model.scale is None
    del model.note
    with pytest.raises(AttributeError, match="no attribute 'note'"):
        _ = model.note


def test_assignment_before_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_shared_parameter_is_listed_once():
    model = Outer()
    model.second.scale = model.first.scale
    assert len(model.parameters()) == 2


def test_state_dict_round_trip_and_copies():
    a, b = Outer(), Outer()
    a.first.scale.data[:] = [1, 2, 3]
    a.second.count[:] = 7
    state = a.state_dict()
    assert set(state) == {"bias", "first.scale", "second.scale", "first.count", "second.count"}
    state["first.scale"][0] = 100  # a copy: the model is untouched
    assert a.first.scale.data[0] == 1
    buffer_before = b.second.count
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.first.scale.data, [1, 2, 3])
    np.testing.assert_array_equal(b.second.count, [7])
    assert b.second.count is buffer_before  # buffers are updated in place (ops hold them)


def test_load_state_dict_errors_name_the_parameter():
    model = Outer()
    state = model.state_dict()
    state["first.scale"] = np.ones(4, dtype=np.float32)
    with pytest.raises(
        ValueError, match=r"'first.scale' has shape \(3,\) in the model but \(4,\)"
    ):
        model.load_state_dict(state)
    state = model.state_dict()
    del state["bias"]
    state["extra"] = np.ones(1)
    with pytest.raises(ValueError, match=r"missing \['bias'\], unexpected \['extra'\]"):
        model.load_state_dict(state)
    model.load_state_dict({"bias": np.full(3, 2.0)}, strict=False)
    np.testing.assert_array_equal(model.bias.data, [2, 2, 2])
    assert model.bias.dtype == np.float32


def test_load_state_dict_on_unbuilt_model_asks_for_build():
    model = nn.Sequential(nn.Dense(3))
    with pytest.raises(ValueError, match="not built"):
        model.load_state_dict({})


def test_train_eval_and_zero_grad():
    model = Outer()
    assert model.training and model.first.training
    assert model.eval() is model
    assert not model.training and not model.second.training
    model.train()
    assert model.second.training
    out = model(np.ones((2, 3), dtype=np.float32))
    out.sum().backward()
    assert model.first.scale.grad is not None
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_astype_converts_parameters_and_buffers():
    model = nn.Sequential(nn.Dense(3), nn.BatchNorm()).build((4,))
    model.astype(np.float64)
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert all(b.dtype == np.float64 for _, b in model.named_buffers())
    assert model(np.ones((2, 4))).dtype == np.float64


def test_build_by_first_call_and_by_build():
    model = nn.Sequential(nn.Conv2D(4, 3), nn.Flatten(), nn.Dense(5))
    assert model.parameters() == []
    out = model(np.zeros((2, 1, 6, 6), dtype=np.float32))
    assert out.shape == (2, 5)
    assert model.input_shape == (1, 6, 6)
    assert [tuple(p.shape) for p in model.parameters()] == [(4, 1, 3, 3), (4,), (5, 64), (5,)]


def test_default_build_of_a_custom_module_runs_a_forward_in_eval_mode():
    model = SentenceCNN()
    model.build((6, 10))
    assert model.training  # restored after the build pass
    assert model.input_shape == (6, 10)
    assert model.out.weight.shape == (2, 12)


def test_seed_determinism_and_distinct_streams():
    def make(seed):
        model = nn.Sequential(nn.Conv2D(4, 3), nn.Conv2D(4, 3, in_channels=None), seed=seed)
        return model.build((4, 8, 8))

    a, b, c = make(0), make(0), make(1)
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    assert not np.array_equal(a.conv2d.weight.data, c.conv2d.weight.data)
    # two identical layers of one model draw from different streams
    assert not np.array_equal(a.conv2d.weight.data, a.conv2d_1.weight.data)
    # an explicit layer seed wins and is reproducible on its own
    s1 = nn.Conv2D(4, 3, seed=7).build((2, 5, 5))
    s2 = nn.Sequential(nn.Conv2D(4, 3, seed=7), seed=99).build((2, 5, 5))
    np.testing.assert_array_equal(s1.weight.data, s2.conv2d.weight.data)


def test_eager_layers_without_seed_get_distinct_streams():
    a, b = nn.Dense(5, in_features=4), nn.Dense(5, in_features=4)
    assert not np.array_equal(a.weight.data, b.weight.data)
    c, d = nn.Dense(5, in_features=4, seed=3), nn.Dense(5, in_features=4, seed=3)
    np.testing.assert_array_equal(c.weight.data, d.weight.data)


def test_repr_shows_non_default_arguments():
    assert repr(nn.Conv2D(8, 3)) == "Conv2D(8, kernel_size=(3, 3))"
    assert repr(nn.Conv2D(8, 3, stride=2, padding="same")) == (
        "Conv2D(8, kernel_size=(3, 3), stride=(2, 2), padding='same')"
    )
    assert repr(nn.MaxPool2D(3, stride=2)) == "MaxPool2D((3, 3), stride=(2, 2))"
    assert repr(nn.MaxPool2D(2)) == "MaxPool2D((2, 2))"
    text = repr(nn.Sequential(nn.Dense(4), nn.ReLU(), name="net"))
    assert text == "Sequential(name='net'\n  (dense): Dense(4)\n  (relu): ReLU()\n)"


def test_config_round_trip_of_sequential_and_custom_module():
    model = nn.Sequential(
        nn.Conv2D(
            4, (3, 5), stride=(1, 2), padding="same", groups=2, use_bias=False, activation="relu"
        ),
        nn.BatchNorm(momentum=0.2),
        nn.MaxPool2D(2),
        nn.Dropout(0.3, seed=4),
        nn.Flatten(),
        nn.Dense(7, kernel_initializer="glorot_uniform"),
        nn.Softmax(),
        name="demo",
        seed=5,
    )
    config = model.get_config()
    rebuilt = nn.from_config(config)
    assert rebuilt.get_config() == config
    assert repr(rebuilt) == repr(model)
    custom = SentenceCNN(widths=(3, 5), filters=2)
    assert nn.from_config(custom.get_config()).get_config() == custom.get_config()


def test_from_config_errors():
    with pytest.raises(ValueError, match="unknown module class 'Nope'"):
        nn.from_config({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="class_name"):
        nn.from_config({"layers": []})


def test_branching_model_trains_one_step_and_every_parameter_gets_a_gradient():
    rng = np.random.default_rng(0)
    model = SentenceCNN(seed=0)
    x = rng.standard_normal((8, 6, 10)).astype(np.float32)  # 8 sentences, embedding 6, 10 words
    y = np.array([0, 1] * 4)
    loss = F.cross_entropy(model(x), y)
    model.zero_grad()
    loss.backward()
    params = model.named_parameters()
    assert len(params) == 2 * 3 + 2
    for name, p in params:
        assert p.grad is not None and p.grad.shape == p.shape, name
        assert np.abs(p.grad).sum() > 0, name
    SGD(model.parameters(), lr=0.1).step()
    model.eval()  # same batch without dropout noise: the loss went down
    before = loss.item()
    after = F.cross_entropy(model(x), y).item()
    model.train()
    assert after < before


def test_gradients_through_a_sequential_match_finite_differences():
    model = nn.Sequential(
        nn.Conv2D(3, 3, padding=1),
        nn.BatchNorm(),
        nn.Tanh(),
        nn.MaxPool2D(2),
        nn.Flatten(),
        nn.Dense(4),
        seed=1,
    ).build((2, 4, 4))
    model.astype(np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 2, 4, 4)), requires_grad=True)
    params = model.parameters()
    errors = gradcheck(lambda x, *ps: model(x), [x, *params])
    assert len(errors) == 1 + len(params)
    assert max(errors.values()) < 1e-6, errors


def test_layers_given_their_input_size_are_built_at_construction():
    # Regression: Dense(3, in_features=4) had weights, yet was reported "not built".
    for layer in [
        nn.Dense(3, in_features=4),
        nn.Conv2D(4, 3, in_channels=2),
        nn.Conv1D(4, 3, in_channels=2),
        nn.BatchNorm(num_features=3),
    ]:
        assert layer.parameters() and layer.built, layer
    model = nn.Sequential(
        nn.Conv2D(4, 3, in_channels=1), nn.ReLU(), nn.Flatten(), nn.Dense(2, in_features=16)
    )
    assert model.built
    assert model.count_parameters() == (4 * 9 + 4 + 2 * 16 + 2, 0)
    model.load_state_dict(model.state_dict())  # no build asked for
    assert model(np.zeros((1, 1, 4, 4), dtype=np.float32)).shape == (1, 2)
    assert model.input_shape == (1, 4, 4)  # still recorded by the first call


def test_built_is_true_once_every_parameter_exists_recursively():
    assert not nn.Dense(3).built and nn.ReLU().built and nn.Dropout(0.5).built
    assert nn.Sequential(nn.ReLU(), nn.Flatten()).built  # nothing to create
    model = nn.Sequential(nn.Dense(3, in_features=4), nn.ReLU(), nn.Dense(2))
    assert not model.built  # the last layer has no weights yet
    assert model._unbuilt_layers() == ["dense_1"]
    model.build((4,))
    assert model.built
    model.add(nn.Dense(5))
    assert not model.built
    model(np.zeros((1, 4), dtype=np.float32))
    assert model.built
    custom = SentenceCNN()
    assert not custom.built and not custom.convs.built
    custom.build((6, 10))
    assert custom.built and custom.convs.built
    with pytest.raises(AttributeError):
        custom.built = False  # derived from the weights, not a flag that can drift


def test_a_module_creating_its_own_weights_lazily_reports_built_through_weights_ready():
    class LazyScale(nn.Module):
        def forward(self, x):
            if "scale" not in self._parameters:
                self.scale = Tensor(np.ones(x.shape[1], dtype=x.dtype), requires_grad=True)
            return x * self.scale

        def _weights_ready(self):
            return "scale" in self._parameters

    model = nn.Sequential(LazyScale())
    assert not model.built
    model.build((3,))
    assert model.built and model.parameters()[0].shape == (3,)


class DoubleConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(3, 3, padding=1)
        self.out = nn.Dense(2)

    def forward(self, x):
        return self.out(self.conv(x).reshape(x.shape[0], -1))


def test_float64_custom_module_builds_probes_and_summarises_in_its_dtype():
    # Regression: build fed a float32 probe to float64 layers ("must share one dtype").
    model = DoubleConv().astype(np.float64)
    assert model.dtype == np.float64
    model.build((1, 4, 4))
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model.compute_output_shape((1, 4, 4)) == (2,)
    assert "Total params: 128" in model.summary()  # 3·9 + 3 + 2·48 + 2
    fresh = DoubleConv().astype(np.float64)
    assert "Trainable params: 128" in fresh.summary((1, 4, 4))  # builds in float64 too
    assert fresh.conv.weight.dtype == np.float64
    assert DoubleConv().dtype == np.float32


def test_dtype_follows_parameters_created_directly_in_float64():
    class Scale64(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = Tensor(np.ones(3), requires_grad=True)

        def forward(self, x):
            assert x.dtype == np.float64  # the probe has the parameters' dtype
            return x * self.scale

    model = Scale64()
    assert model.dtype == np.float64
    assert model.compute_output_shape((3,)) == (3,)


def test_named_generators_lists_declared_streams_by_dotted_name():
    model = nn.Sequential(
        nn.Dense(4), nn.Dropout(0.5), nn.Dense(3), nn.Dropout(0.2, seed=3), seed=1
    )
    model.build((5,))
    generators = dict(model.named_generators())
    assert list(generators) == ["dropout._generator", "dropout_1._generator"]
    assert generators["dropout._generator"] is model.dropout._generator  # the stream forward uses
    # Regression: a root module's own stream was named "._generator".
    assert [name for name, _ in nn.Dropout(0.5).named_generators()] == ["_generator"]


def test_named_generators_create_the_stream_a_forward_would_and_restoring_it_replays_masks():
    x = np.ones((4, 6), dtype=np.float32)
    listed = nn.Sequential(nn.Dropout(0.5), seed=2)
    states = {name: g.bit_generator.state for name, g in listed.named_generators()}
    first = listed(x).data
    np.testing.assert_array_equal(first, nn.Sequential(nn.Dropout(0.5), seed=2)(x).data)
    for name, generator in listed.named_generators():
        generator.bit_generator.state = states[name]
    np.testing.assert_array_equal(listed(x).data, first)


def test_named_generators_come_only_from_generator_attributes():
    class Noisy(nn.Module):
        generator_attributes = ("_noise",)

        def __init__(self):
            super().__init__()
            self._noise = None
            self._undeclared = np.random.default_rng(0)  # not declared: not saved

        def forward(self, x):
            return x

    model = nn.Sequential(Noisy(), nn.ReLU())
    generators = model.named_generators()
    assert [name for name, _ in generators] == ["noisy._noise"]
    assert isinstance(generators[0][1], np.random.Generator)


@pytest.mark.parametrize(
    "config,pattern",
    [
        (
            {"class_name": "Sequential", "config": "layers"},
            r"Sequential.from_config: config must be a dict",
        ),
        ({"class_name": "Sequential", "config": {"layers": "dense"}}, r"layers must be a list"),
        ({"class_name": "ModuleList", "config": {"modules": 3}}, r"modules must be a list"),
        ({"class_name": "Dense", "config": [3]}, r"Dense.from_config: config must be a dict"),
        (
            {"class_name": "Dense", "config": {"units": 3, "use_bias": "yes"}},
            r"use_bias must be True or False",
        ),
    ],
)
def test_malformed_configs_raise_type_error_naming_what_was_wrong(config, pattern):
    with pytest.raises(TypeError, match=pattern):
        nn.from_config(config)


def test_load_state_dict_refuses_values_that_are_not_real_numbers():
    # Complex weights used to be copied with the imaginary part silently dropped.
    model = nn.Dense(2, in_features=3, seed=0)
    before = model.weight.data.copy()
    state = model.state_dict()
    state["weight"] = state["weight"] + 1j
    with pytest.raises(ValueError, match=r"parameter 'weight' holds complex64, not real numbers"):
        model.load_state_dict(state)
    np.testing.assert_array_equal(model.weight.data, before)  # nothing copied
