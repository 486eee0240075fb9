"""Adebayo et al.'s cascading model-parameter randomisation test."""

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from cnnlab.explain import probe
from cnnlab.explain.sanity import (
    randomizable_layers,
    sanity_check,
    sanity_figure,
    spearman,
)


def edges(model, images):
    """A deliberately weight-independent "explanation": the Sobel edge strength of the image."""
    plane = images[:, 0].astype(np.float64)
    return np.hypot(ndimage.sobel(plane, axis=1), ndimage.sobel(plane, axis=2))


def same_weights(first, second):
    return all(np.array_equal(v, second[k]) for k, v in first.items())


def test_gradients_change_and_an_edge_detector_does_not(trained_digits):
    model, images, _ = trained_digits
    before = {k: v.copy() for k, v in model.state_dict().items()}
    x = images[:8]
    result = sanity_check(model, x, "gradient", seed=0)
    assert result.steps == ["original", "dense_1", "dense", "conv2d_1", "conv2d"]
    assert result.maps.shape == (5, 8, 8, 8) and result.rank_correlation[0] == pytest.approx(1)
    # the trained net's gradient maps lose most of their ranking once the top layers go
    assert result.rank_correlation[1] < 0.6 and result.rank_correlation[-1] < 0.3
    np.testing.assert_array_equal(result.per_image.mean(axis=1), result.rank_correlation)
    constant = sanity_check(model, x, edges)
    np.testing.assert_allclose(constant.rank_correlation, 1.0)
    assert constant.method == "edges"
    assert same_weights(before, model.state_dict())


def test_gradcam_passes_and_the_check_is_seeded(trained_digits):
    model, images, _ = trained_digits
    first = sanity_check(model, images[:6], "gradcam", seed=1)
    assert first.rank_correlation[-1] < 0.5
    np.testing.assert_array_equal(first.maps, sanity_check(model, images[:6], "gradcam",
                                                           seed=1).maps)
    assert not np.array_equal(first.maps[1:], sanity_check(model, images[:6], "gradcam",
                                                           seed=2).maps[1:])


def test_layers_mode_and_signed_correlation(trained_digits):
    model, images, _ = trained_digits
    assert randomizable_layers(model) == ["conv2d", "conv2d_1", "dense", "dense_1"]
    result = sanity_check(model, images[:4], "integrated_gradients", layers=["dense_1"],
                          mode="gaussian", options={"steps": 8})
    assert result.steps == ["original", "dense_1"]
    # |IG| = |x · mean gradient| keeps the input's zeros, the signed map loses more
    assert result.signed_rank_correlation[1] < result.rank_correlation[1]
    with pytest.raises(probe.ExplainError, match="conv2d, conv2d_1, dense, dense_1"):
        sanity_check(model, images[:2], "gradient", layers=["max_pool2d"])
    with pytest.raises(probe.ExplainError, match="callable"):
        sanity_check(model, images[:2], "lime")
    with pytest.raises(probe.ExplainError, match="mode"):
        sanity_check(model, images[:2], mode="uniform")


def test_spearman_of_ranks_and_of_constant_maps():
    a = np.arange(12.0).reshape(3, 4)
    assert spearman(a, a**3) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(np.zeros(4), np.zeros(4)) == 1.0 and spearman(a, np.ones_like(a)) == 0.0


def test_the_figure_is_a_png(trained_digits, tmp_path):
    model, images, _ = trained_digits
    result = sanity_check(model, images[:2], "gradient")
    path = sanity_figure(result, images[:2], tmp_path / "sub" / "sanity.png")
    with Image.open(path) as picture:
        assert picture.format == "PNG" and picture.size[0] > 300
