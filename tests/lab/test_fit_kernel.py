import warnings

import numpy as np
import pytest

from cnnlab import kernels
from cnnlab.lab.apply import load_image
from cnnlab.lab.fit_kernel import fit_kernel, make_target, recover_kernel, standardise


@pytest.fixture(scope="module")
def photo():
    image, _ = load_image(grayscale=True, size=32)
    return image


@pytest.mark.parametrize(
    ("name", "bias"),
    [
        ("horizontal-edge", 0.0),
        ("sobel-x", 0.5),
        ("emboss", -0.2),
        ("sharpness", 0.1),
        ("surround", 0.0),
    ],
)
def test_recovers_hidden_kernels_to_1e_3(photo, name, bias):
    result = recover_kernel(name, image=photo, bias=bias, seed=1)
    np.testing.assert_allclose(result.kernel, kernels.get(name, np.float64), rtol=0, atol=1e-3)
    assert abs(result.bias - bias) < 1e-3
    assert result.max_error < 1e-3
    assert result.losses[-1] < 1e-6 * result.losses[0]


def test_recovers_a_random_kernel(photo):
    hidden = np.random.default_rng(3).uniform(-1, 1, (3, 3))
    result = recover_kernel(hidden, image=photo, bias=0.3)
    assert result.max_error < 1e-3


def test_loss_decreases_overall_and_the_start_is_random(photo):
    x = standardise(photo)
    target = make_target(x, "blur")
    short = fit_kernel(x, target, steps=5, seed=0)
    assert len(short.losses) == 5 and short.steps == 5
    assert np.abs(short.kernel - kernels.get("blur", np.float64)).max() > 1e-2
    longer = fit_kernel(x, target, steps=200, seed=0)
    assert longer.losses[-1] < 1e-3 * longer.losses[0]


def test_target_is_the_filtered_picture(photo):
    from scipy import signal

    x = standardise(photo)
    target = make_target(x, "sobel-y", bias=2.0)
    np.testing.assert_allclose(
        target,
        signal.correlate2d(x, kernels.get("sobel-y", np.float64), "valid") + 2.0,
        atol=1e-12,
    )


def test_fit_kernel_checks_shapes(photo):
    with pytest.raises(
        ValueError, match=r"fit_kernel: .*target must have shape \(30, 30\), received \(32, 32\)"
    ):
        fit_kernel(photo, photo)
    with pytest.raises(ValueError, match="fit_kernel: expected a .* grayscale image"):
        fit_kernel(np.zeros((3, 8, 8)), np.zeros((3, 6, 6)))
    with pytest.raises(ValueError, match="constant"):
        standardise(np.ones((8, 8)))


def test_fit_kernel_lr_5_diverges_stops_early_without_numpy_warnings(photo):
    x = standardise(photo)
    target = make_target(x, "horizontal-edge")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning would fail the test
        result = fit_kernel(x, target, lr=5.0, steps=1000, seed=0)
    assert result.diverged
    assert "diverged" in result.stop_reason and "lr=5" in result.stop_reason
    assert result.steps < 20
    assert len(result.losses) == result.steps + 1
    assert np.isfinite(result.losses).all() and max(result.losses) <= 1e4 * result.losses[0]
    # the kernel returned is the last one whose loss was acceptable, not the exploded one
    assert np.isfinite(result.kernel).all() and np.isfinite(result.bias)
    np.testing.assert_allclose(
        float(np.mean((make_target(x, result.kernel, result.bias) - target) ** 2)),
        result.losses[-1],
        rtol=1e-9,
    )


def test_a_converging_fit_is_not_flagged_as_diverged(photo):
    result = recover_kernel("blur", image=photo, lr=0.2, seed=0)
    assert not result.diverged and result.stop_reason is None
    assert result.max_error < 1e-3


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"lr": 0.0}, ValueError, "fit_kernel: lr must be a finite number > 0, received lr=0.0"),
        ({"lr": float("nan")}, ValueError, "fit_kernel: lr must be"),
        (
            {"momentum": 1.0},
            ValueError,
            r"fit_kernel: momentum must be a finite number in \[0, 1\)",
        ),
        ({"steps": 0}, ValueError, "fit_kernel: steps must be an int >= 1, received steps=0"),
        ({"steps": 2.5}, TypeError, "fit_kernel: steps must be an int"),
        ({"seed": "0"}, TypeError, "fit_kernel: seed must be an int"),
    ],
)
def test_fit_kernel_checks_its_arguments(photo, arguments, error, message):
    x = standardise(photo)
    with pytest.raises(error, match=message):
        fit_kernel(x, make_target(x, "blur"), **arguments)


def test_non_finite_inputs_are_refused_not_reported_as_divergence(photo):
    x = standardise(photo)
    target = make_target(x, "blur")
    target[3, 4] = np.nan
    with pytest.raises(ValueError, match="fit_kernel: the image and the target must be finite"):
        fit_kernel(x, target)
    with pytest.raises(ValueError, match="recover_kernel: bias must be a finite number"):
        recover_kernel("blur", image=photo, bias=float("inf"))
    with pytest.raises(ValueError, match="recover_kernel: the hidden kernel must be finite"):
        recover_kernel(np.full((3, 3), np.nan), image=photo)
