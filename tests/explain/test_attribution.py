"""Saliency maps: gradient, SmoothGrad, integrated gradients, Grad-CAM."""

import numpy as np
import pytest

from cnnlab import nn
from cnnlab.explain import attribution as S
from cnnlab.explain import probe
from cnnlab.tensor import Tensor

from .conftest import digits_net


def linear_model(shape=(3, 5, 4), classes=4, softmax=True, seed=0):
    """Flatten → Dense (→ Softmax): y = W·vec(x) + b, linear in its input; float64."""
    layers = [nn.Flatten(), nn.Dense(classes)] + ([nn.Softmax()] if softmax else [])
    model = nn.Sequential(*layers, seed=seed).build(shape).astype(np.float64)
    model.dense.bias.data[:] = np.random.default_rng(seed + 1).normal(size=classes)
    return model


def float64_copy(model):
    copy = digits_net()
    copy.load_state_dict(model.state_dict())
    copy.normalization = model.normalization
    return copy.astype(np.float64)


def test_gradient_saliency_of_a_linear_model_is_abs_weights_on_the_logit():
    model = linear_model()
    x = np.random.default_rng(0).random((3, 3, 5, 4))
    weights = model.dense.weight.data.reshape(4, 3, 5, 4)
    maps = S.saliency(model, x, target=2)
    assert maps.shape == (3, 5, 4)
    expected = np.abs(weights[2]).max(axis=0)
    np.testing.assert_array_equal(maps, np.broadcast_to(expected, maps.shape))
    # the default target is each image's predicted class, taken from the logits
    predicted = S.logits(model, x).argmax(axis=1)
    default = S.saliency(model, x)
    for i, k in enumerate(predicted):
        np.testing.assert_array_equal(default[i], np.abs(weights[k]).max(axis=0))
    per_image = S.saliency(model, x, target=[0, 1, 3])
    np.testing.assert_array_equal(per_image[1], np.abs(weights[1]).max(axis=0))


@pytest.mark.parametrize("rule", S.RULES)
def test_integrated_gradients_of_a_linear_model_is_input_times_weight(rule):
    model = linear_model(softmax=False)
    x = np.random.default_rng(1).random((2, 3, 5, 4))
    weights = model.dense.weight.data.reshape(4, 3, 5, 4)
    result = S.integrated_gradients(model, x, target=1, steps=7, rule=rule)
    np.testing.assert_allclose(result.attributions, x * weights[1], rtol=1e-12, atol=1e-15)
    assert np.abs(result.delta).max() < 1e-6
    maps, delta = S.saliency(model, x, 1, "integrated-gradients", return_delta=True, steps=7,
                             rule=rule)
    np.testing.assert_allclose(maps, (x * weights[1]).sum(axis=1), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(delta, result.delta)
    # passes that split the path points across images give the same sums
    chunked = S.integrated_gradients(model, x, target=1, steps=7, rule=rule, batch_size=3)
    np.testing.assert_allclose(chunked.attributions, result.attributions, rtol=1e-13)


def test_integrated_gradients_baseline_number_channel_or_image():
    model = linear_model(softmax=False)
    x = np.random.default_rng(2).random((1, 3, 5, 4))
    weights = model.dense.weight.data.reshape(4, 3, 5, 4)
    grey = S.integrated_gradients(model, x, target=0, baseline=0.5).attributions
    np.testing.assert_allclose(grey, (x - 0.5) * weights[0], atol=1e-12)
    per_channel = S.integrated_gradients(model, x, target=0, baseline=[0.1, 0.2, 0.3])
    np.testing.assert_allclose(per_channel.attributions,
                               (x - np.array([0.1, 0.2, 0.3]).reshape(3, 1, 1)) * weights[0],
                               atol=1e-12)
    itself = S.integrated_gradients(model, x, target=0, baseline=x[0])
    assert not itself.attributions.any() and abs(itself.delta[0]) < 1e-12
    with pytest.raises(probe.ExplainError, match="baseline"):
        S.integrated_gradients(model, x, baseline=np.zeros((2, 5, 4)))


def test_path_points_integrate_polynomials():
    # Gauss–Legendre with m points is exact for degree 2m − 1; the trapezoid and middle rules
    # are exact for straight lines; every rule's weights sum to 1
    alphas, weights = S.path_points(3, "gausslegendre")
    assert abs(weights @ alphas**5 - 1 / 6) < 1e-14
    for rule in S.RULES:
        alphas, weights = S.path_points(10, rule)
        assert abs(weights.sum() - 1) < 1e-14
        assert alphas.min() >= 0 and alphas.max() <= 1
    for rule in ("riemann_middle", "riemann_trapezoid"):
        alphas, weights = S.path_points(10, rule)
        assert abs(weights @ (3 * alphas + 1) - 2.5) < 1e-12
    left, right = S.path_points(4, "riemann_left")[0], S.path_points(4, "riemann_right")[0]
    np.testing.assert_allclose(left, [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(right, [0.25, 0.5, 0.75, 1])
    with pytest.raises(probe.ExplainError, match="rule must be one of"):
        S.path_points(5, "simpson")


def test_integrated_gradients_are_complete_on_the_trained_conv_net(trained_digits):
    model, images, _ = trained_digits
    model = float64_copy(model)
    x = images[:4].astype(np.float64)
    scores = S.logits(model, x)
    predicted = scores.argmax(axis=1)
    change = scores[np.arange(4), predicted] - S.logits(model, np.zeros_like(x))[
        np.arange(4), predicted]
    result = S.integrated_gradients(model, x, steps=256, batch_size=256)
    total = result.attributions.reshape(4, -1).sum(axis=1)
    np.testing.assert_allclose(result.delta, total - change, atol=1e-9)
    # a ReLU net is piecewise linear along the path: the quadrature error is small, not zero
    assert np.all(np.abs(result.delta) < 0.02 * np.abs(change) + 0.02)


def test_smoothgrad_is_seeded_and_is_the_gradient_without_noise(trained_digits):
    model, images, _ = trained_digits
    x = images[:3]
    first = S.smoothgrad(model, x, samples=6, seed=3)
    np.testing.assert_array_equal(first, S.smoothgrad(model, x, samples=6, seed=3))
    np.testing.assert_allclose(first, S.smoothgrad(model, x, samples=6, seed=3, batch_size=4),
                               rtol=1e-5)
    assert not np.allclose(first, S.smoothgrad(model, x, samples=6, seed=4))
    quiet = S.smoothgrad(model, x, samples=4, noise=0.0, batch_size=5)
    np.testing.assert_allclose(quiet, S.saliency(model, x), rtol=1e-5)
    averaged = S.smoothgrad(model, x, samples=6, seed=3, average="gradient")
    # |mean| <= mean |.|: averaging the signed gradients lets noise cancel
    assert np.all(averaged <= first + 1e-6) and averaged.sum() < first.sum()
    with pytest.raises(probe.ExplainError, match="average"):
        S.smoothgrad(model, x, average="squares")


def test_gradcam_matches_a_hand_computation():
    # conv (4 channels, same size) → flatten → dense: y_c = Σ W_c · A + b, so ∂y_c/∂A^k is
    # W_c's block k and α_k its mean; no upsampling at the layer's own resolution
    model = nn.Sequential(nn.Conv2D(4, 3, padding=1, activation="relu"), nn.Flatten(),
                          nn.Dense(3), seed=1).build((2, 6, 6)).astype(np.float64)
    x = np.random.default_rng(5).random((2, 2, 6, 6))
    with probe.inspecting(model):
        activation = probe.forward(model, Tensor(x), "conv2d").data
    for c in range(3):
        alpha = model.dense.weight.data[c].reshape(4, 6, 6).mean(axis=(1, 2))
        expected = np.maximum(np.einsum("k,nkij->nij", alpha, activation), 0)
        np.testing.assert_allclose(S.gradcam(model, x, target=c, layer="conv2d"), expected,
                                   rtol=1e-12, atol=1e-14)
    assert S.default_cam_layer(model) == "conv2d"


def test_gradcam_upsamples_bilinearly_to_the_image(trained_digits):
    # torch's interpolate(bilinear, align_corners=False) of [[0, 1], [2, 3]] to 4×4, by hand
    up = S.upsample_bilinear(np.array([[[0.0, 1.0], [2.0, 3.0]]]), (4, 4))
    np.testing.assert_allclose(up[0, 0], [0, 0.25, 0.75, 1])
    np.testing.assert_allclose(up[0, :, 0], [0, 0.5, 1.5, 2])
    model, images, _ = trained_digits
    assert S.default_cam_layer(model) == "relu_1"  # the last conv's ReLU, before the pooling
    pooled = S.gradcam(model, images[:2], layer="max_pool2d", upsample=False)
    assert pooled.shape == (2, 4, 4)
    np.testing.assert_allclose(S.gradcam(model, images[:2], layer="max_pool2d"),
                               S.upsample_bilinear(pooled, (8, 8)))
    maps = S.saliency(model, images[:5], method="gradcam")
    assert maps.shape == (5, 8, 8) and maps.min() >= 0 and maps.max() > 0


def test_bad_requests_name_what_is_valid(trained_digits):
    model, images, _ = trained_digits
    with pytest.raises(probe.ExplainError, match="0 to 9"):
        S.saliency(model, images[:2], target=10)
    with pytest.raises(probe.ExplainError, match="one per image"):
        S.saliency(model, images[:2], target=[1, 2, 3])
    with pytest.raises(probe.ExplainError, match="gradient, smoothgrad"):
        S.saliency(model, images[:2], method="lime")
    with pytest.raises(probe.ExplainError, match="no option steps; its options are: layer"):
        S.saliency(model, images[:2], method="gradcam", steps=5)
    with pytest.raises(probe.ExplainError, match="conv2d, relu"):
        S.gradcam(model, images[:2], layer="conv7")
    with pytest.raises(probe.ExplainError, match=r"not \(C, H, W\)"):
        S.gradcam(model, images[:2], layer="dense")
    with pytest.raises(probe.ExplainError, match="1-channel"):
        S.saliency(model, np.zeros((3, 8, 8)))


def test_gradient_and_integrated_gradients_agree_with_torch(trained_digits):
    torch = pytest.importorskip("torch")
    model = float64_copy(trained_digits[0])
    x = trained_digits[1][:3].astype(np.float64)
    c1, c2, d1, d2 = model.conv2d, model.conv2d_1, model.dense, model.dense_1
    mean, std = model.normalization["mean"], model.normalization["std"]

    def net(t):
        t = (t - torch.tensor(np.float64(mean))) / torch.tensor(np.float64(std))
        t = torch.relu(torch.nn.functional.conv2d(t, torch.tensor(c1.weight.data),
                                                  torch.tensor(c1.bias.data), padding=1))
        t = torch.relu(torch.nn.functional.conv2d(t, torch.tensor(c2.weight.data),
                                                  torch.tensor(c2.bias.data), padding=1))
        t = torch.nn.functional.max_pool2d(t, 2).flatten(1)
        t = torch.relu(t @ torch.tensor(d1.weight.data).T + torch.tensor(d1.bias.data))
        return t @ torch.tensor(d2.weight.data).T + torch.tensor(d2.bias.data)

    inputs = torch.tensor(x, requires_grad=True)
    logits = net(inputs)
    k = logits.argmax(dim=1)
    logits.gather(1, k[:, None]).sum().backward()
    np.testing.assert_allclose(S.saliency(model, x), inputs.grad.abs().amax(dim=1).numpy(),
                               rtol=1e-10, atol=1e-12)
    alphas, weights = S.path_points(16)
    path = torch.tensor(alphas[:, None, None, None, None] * x[None], requires_grad=True)
    net(path.reshape(-1, 1, 8, 8)).reshape(16, 3, 10).gather(
        2, k[None, :, None].expand(16, 3, 1)).sum().backward()
    expected = x * np.einsum("s,snchw->nchw", weights, path.grad.numpy())
    result = S.integrated_gradients(model, x, steps=16)
    np.testing.assert_allclose(result.attributions, expected, rtol=1e-9, atol=1e-12)
