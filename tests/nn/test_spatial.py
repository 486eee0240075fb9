"""SpatialTransformer: identity start, learning to undo a known rotation, the transform
families, per-parameter learning rates through fit, config/save/load round trip, errors."""

import numpy as np
import pytest

import cnnlab.functional as F
from cnnlab import io, nn, optim
from cnnlab.gradcheck import gradcheck
from cnnlab.nn.config import from_config
from cnnlab.tensor import Tensor
from cnnlab.training import fit


def small_localization(outputs=6):
    return nn.Sequential(nn.Conv2D(4, 3), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(),
                         nn.Dense(8), nn.ReLU(), nn.Dense(outputs))


def blobs(n, size, seed):
    """Smooth images: two Gaussian blobs each, inside the inscribed circle (a rotation about
    the centre keeps them in the picture)."""
    rng = np.random.default_rng(seed)
    coords = (np.arange(size) + 0.5) / size * 2 - 1
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    images = np.zeros((n, 1, size, size), np.float32)
    for i in range(n):
        for _ in range(2):
            radius, angle = rng.uniform(0.1, 0.45), rng.uniform(0, 2 * np.pi)
            cx, cy = radius * np.cos(angle), radius * np.sin(angle)
            width = rng.uniform(0.12, 0.2)
            images[i, 0] += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * width**2))
    return images


def rotation_theta(degrees, n=1):
    a = np.deg2rad(degrees)
    return np.tile(np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0]]), (n, 1, 1))


@pytest.mark.parametrize("transform", ["affine", "rst", "translation"])
def test_identity_initialisation_returns_the_input(transform):
    count = {"affine": 6, "rst": 4, "translation": 2}[transform]
    layer = nn.SpatialTransformer(small_localization(count), transform=transform)
    x = np.random.default_rng(0).random((3, 2, 10, 12)).astype(np.float32)
    theta, warped = layer.warp(x)
    np.testing.assert_allclose(theta, np.tile([[1, 0, 0], [0, 1, 0]], (3, 1, 1)), atol=0)
    assert warped.dtype == np.float32
    np.testing.assert_allclose(warped, x, atol=1e-6)
    # the last Dense: zero weight, the identity's bias
    last = layer.localization.layers[-1]
    assert not last.weight.data.any()
    assert layer.compute_output_shape((2, 10, 12)) == (2, 10, 12)


def test_output_size_and_gradients_reach_the_localisation_net():
    layer = nn.SpatialTransformer(small_localization(), output_size=(5, 7))
    x = Tensor(np.random.default_rng(1).random((2, 1, 9, 9)), requires_grad=True)
    layer.astype(np.float64)
    y = layer(x)
    assert y.shape == (2, 1, 5, 7)
    (y * y).sum().backward()
    last = layer.localization.layers[-1]
    assert np.abs(last.bias.grad).max() > 0 and np.abs(last.weight.grad).max() > 0
    assert np.abs(x.grad).max() > 0


def test_learns_to_undo_a_known_rotation():
    # inputs rotated by +30°; the transformer is trained to map them back onto the originals:
    # its θ must approach the inverse rotation, R(−30°)
    targets = blobs(24, 16, seed=2)
    rotated = F.grid_sample(targets, F.affine_grid(rotation_theta(30.0, 24).astype(np.float32),
                                                   targets.shape)).data
    layer = nn.SpatialTransformer(nn.Sequential(nn.Flatten(), nn.Dense(6)))
    model = nn.Sequential(layer, seed=0)
    model.build((1, 16, 16))

    def mean_angle_error():
        theta, _ = layer.warp(rotated)
        angles = np.degrees(np.arctan2(theta[:, 1, 0], theta[:, 0, 0]))
        return abs(angles.mean() + 30.0), theta.mean(axis=0)

    before, _ = mean_angle_error()
    assert before == pytest.approx(30.0)
    fit(model, (rotated, targets), epochs=150, batch_size=24, optimizer="adam", lr=0.01,
        loss="mse", verbose=0)
    # the localisation net's weights also fit each image a little (24 images, 256 inputs):
    # the mean transform is the one that undoes the rotation
    after, theta = mean_angle_error()
    assert after < 2.0, f"mean angle error {after:.2f}° after training (30° before)"
    np.testing.assert_allclose(theta, rotation_theta(-30.0)[0], atol=0.05)


def test_rst_and_translation_parameters_give_their_theta():
    params = np.array([[1.5, 0.3, 0.1, -0.2]])
    theta = F.transform_theta(params, "rst").data[0]
    c, s = 1.5 * np.cos(0.3), 1.5 * np.sin(0.3)
    np.testing.assert_allclose(theta, [[c, -s, 0.1], [s, c, -0.2]])
    np.testing.assert_allclose(F.transform_theta(np.array([[0.1, -0.2]]), "translation").data[0],
                               [[1, 0, 0.1], [0, 1, -0.2]])
    np.testing.assert_array_equal(F.transform_theta(np.arange(6.0)[None], "affine").data[0],
                                  [[0, 1, 2], [3, 4, 5]])


@pytest.mark.parametrize("transform,count", [("affine", 6), ("rst", 4), ("translation", 2)])
def test_transform_theta_gradient(transform, count):
    params = np.random.default_rng(3).normal(size=(3, count))
    errors = gradcheck(lambda p: F.transform_theta(p, transform),
                       [Tensor(params, requires_grad=True)])
    assert errors[0] < 1e-7


def test_localization_lr_scale_reaches_the_optimiser_through_fit():
    x = np.random.default_rng(4).random((16, 1, 12, 12)).astype(np.float32)
    y = np.arange(16) % 3
    frozen = nn.Sequential(nn.SpatialTransformer(small_localization(), localization_lr_scale=0.0),
                           nn.Flatten(), nn.Dense(3), seed=0)
    frozen.build((1, 12, 12))
    scales = frozen.parameter_lr_scales()
    assert scales == [0.0] * 6 + [1.0] * 2
    before = [p.data.copy() for p in frozen.parameters()]
    fit(frozen, (x, y), epochs=2, batch_size=8, optimizer="momentum", lr=0.1, verbose=0)
    after = [p.data for p in frozen.parameters()]
    for scale, old, new in zip(scales, before, after):
        assert np.array_equal(old, new) == (scale == 0.0)


def test_config_save_and_load_round_trip(tmp_path):
    model = nn.Sequential(
        nn.SpatialTransformer(small_localization(4), output_size=(8, 8), transform="rst",
                              localization_lr_scale=0.1),
        nn.Flatten(), nn.Dense(3), seed=5)
    model.build((1, 12, 12))
    for p in model.parameters():  # away from the identity, so the weights must travel
        p.data += np.random.default_rng(6).normal(scale=0.05, size=p.shape).astype(p.dtype)
    x = np.random.default_rng(7).random((2, 1, 12, 12)).astype(np.float32)
    config = model.get_config()
    rebuilt = from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt[0].transform == "rst" and rebuilt[0].output_size == (8, 8)
    path = tmp_path / "st.npz"
    io.save_model(model, path)
    loaded = io.load_model(path)
    np.testing.assert_array_equal(loaded(x).data, model(x).data)
    assert loaded.parameter_lr_scales() == model.parameter_lr_scales()
    assert loaded.parameter_lr_scales()[0] == 0.1


def test_bad_arguments():
    with pytest.raises(ValueError, match="SpatialTransformer: transform must be one of"):
        nn.SpatialTransformer(small_localization(), transform="projective")
    with pytest.raises(TypeError, match="SpatialTransformer: localization"):
        nn.SpatialTransformer("conv")
    with pytest.raises(ValueError, match=r"SpatialTransformer: output_size must be a pair"):
        nn.SpatialTransformer(small_localization(), output_size=(3, 4, 5))
    with pytest.raises(ValueError, match="localization_lr_scale"):
        nn.SpatialTransformer(small_localization(), localization_lr_scale=-1)
    wrong = nn.SpatialTransformer(small_localization(5))
    with pytest.raises(ValueError, match=r"'affine' needs .* 6 outputs.*\(5,\)"):
        wrong.build((1, 12, 12))
    with pytest.raises(ValueError, match="SpatialTransformer: expected per-sample input"):
        nn.SpatialTransformer(small_localization()).build((12, 12))


def test_optimizer_lr_scales_are_relative_to_a_schedule():
    p = Tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([p], lr=1.0, lr_scales=[0.5])
    schedule = optim.StepLR(opt, step_size=1, gamma=0.1)
    p.grad = np.ones(3)
    opt.step()
    schedule.step()
    p.grad = np.ones(3)
    opt.step()
    np.testing.assert_allclose(p.data, 1 - 0.5 - 0.05)


def test_bad_config_is_a_file_format_error():
    from cnnlab.errors import FileFormatError

    config = nn.SpatialTransformer(small_localization()).get_config()
    for broken, message in [({**config["config"], "localization": "relu"}, "expected a dict"),
                            ({**config["config"], "shear": 1}, "unknown arguments"),
                            ({"transform": "affine"}, "no 'localization'")]:
        with pytest.raises(FileFormatError, match=message):
            from_config({"class_name": "SpatialTransformer", "config": broken})


@pytest.mark.parametrize("transform,count", [("affine", 6), ("rst", 4), ("translation", 2)])
def test_layer_gradients_match_finite_differences(transform, count):
    from cnnlab.gradcheck import numerical_gradient, relative_error

    layer = nn.SpatialTransformer(small_localization(count), output_size=(6, 5),
                                  transform=transform)
    layer.astype(np.float64)
    rng = np.random.default_rng(8)
    x = rng.random((2, 1, 9, 9))
    layer.build((1, 9, 9))
    for p in layer.parameters():  # away from the identity and from the ReLU kinks' zeros
        p.data += rng.normal(scale=0.1, size=p.shape)
    weights = rng.normal(size=(2, 1, 6, 5))

    def loss():
        return float((layer(x).data * weights).sum())

    (layer(x) * weights).sum().backward()
    for name, p in layer.named_parameters():
        numeric = numerical_gradient(loss, p.data)
        assert relative_error(p.grad, numeric) < 1e-6, name
        assert np.abs(numeric).max() > 1e-3, name  # every parameter moves the output


def test_resume_from_a_checkpoint_continues_with_the_same_scales(tmp_path):
    from cnnlab.callbacks import ModelCheckpoint

    x = np.random.default_rng(9).random((16, 1, 12, 12)).astype(np.float32)
    y = np.arange(16) % 3

    def model():
        return nn.Sequential(
            nn.SpatialTransformer(small_localization(), localization_lr_scale=0.1),
            nn.Flatten(), nn.Dense(3), seed=0).build((1, 12, 12))

    def train(epochs, path, resume=None):
        trained = model()
        fit(trained, (x, y), epochs=epochs, batch_size=8, optimizer="momentum", lr=0.05,
            callbacks=[ModelCheckpoint(path, save_best_only=False)], verbose=0, resume=resume)
        return trained

    straight = train(2, tmp_path / "straight.npz")
    train(1, tmp_path / "half.npz")
    resumed = train(2, tmp_path / "half.npz", resume=tmp_path / "half.npz")
    for name, value in straight.state_dict().items():
        np.testing.assert_allclose(resumed.state_dict()[name], value, rtol=1e-6, atol=1e-7)
