"""AlphaGo's policy network: the paper's parameter count, shapes, the pooling variant."""

import numpy as np
import pytest

import cnnlab.functional as F
from cnnlab import models, nn
from cnnlab.models.go import alphago_policy, pooling_position


def test_the_papers_network_has_3882793_parameters():
    model = alphago_policy()
    assert model.count_parameters((48, 19, 19)) == (3_882_793, 0)
    # 5×5 first, 3×3 hidden, 1×1 output without bias, 361 position biases
    convs = [layer for layer in model if isinstance(layer, nn.Conv2D)]
    assert [c.kernel_size for c in convs] == [(5, 5)] + [(3, 3)] * 11 + [(1, 1)]
    assert [c.padding for c in convs] == [(2, 2)] + [(1, 1)] * 11 + [(0, 0)]
    assert convs[-1].filters == 1 and not convs[-1].use_bias
    assert isinstance(model[-2], nn.PositionalBias)


def test_zoo_entry_is_the_papers_network():
    model = models.get("alphago-policy")
    assert model.num_parameters() == 3_882_793
    assert models.default_input_shape("alphago-policy") == (48, 19, 19)
    with pytest.raises(ValueError, match="num_classes must be 361"):
        models.get("alphago-policy", num_classes=10)


@pytest.mark.parametrize("pooling", [False, True])
def test_output_is_one_logit_per_point(pooling):
    model = alphago_policy(k=4, layers=5, planes=3, pooling=pooling)
    model.seed = 0
    x = (np.random.default_rng(0).random((2, 3, 19, 19)) < 0.3).astype(np.float32)
    logits = model(x)
    assert logits.shape == (2, 361) and np.isfinite(logits.data).all()
    # pooling adds no parameters: the same count either way
    assert model.num_parameters() == alphago_policy(k=4, layers=5, planes=3).count_parameters(
        (3, 19, 19))[0]


def test_pooling_variant_pools_in_the_middle_and_upsamples_before_the_output():
    model = alphago_policy(pooling=True)
    kinds = [type(layer).__name__ for layer in model]
    assert kinds.count("MaxPool2D") == 1 and kinds.count("Upsample2D") == 1
    pool = kinds.index("MaxPool2D")
    assert kinds[:pool].count("Conv2D") == pooling_position(13) == 6
    assert kinds[kinds.index("Upsample2D") + 1:] == ["Conv2D", "PositionalBias", "Flatten"]
    assert model.compute_output_shape((48, 19, 19)) == (361,)


@pytest.mark.parametrize("pooling", [False, True])
def test_every_parameter_gets_a_gradient(pooling):
    model = alphago_policy(k=3, layers=4, planes=2, pooling=pooling)
    model.seed = 1
    x = np.random.default_rng(2).standard_normal((3, 2, 19, 19)).astype(np.float32)
    F.cross_entropy(model(x), np.array([0, 180, 360])).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and np.abs(g).sum() > 0 for g in grads)


def test_smaller_board_gives_one_logit_per_point():
    model = alphago_policy(k=2, layers=3, planes=4)
    assert model.compute_output_shape((4, 9, 9)) == (81,)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="layers"):
        alphago_policy(layers=1)
    with pytest.raises(TypeError, match="pooling"):
        alphago_policy(pooling="yes")
