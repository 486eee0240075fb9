"""The kn2row route (``conv_routes.kn2row``): where the planner picks it, and the 1-D use it was
made for. (The forced grid in test_conv_routes.py checks it against naive loops, finite
differences and PyTorch.)"""

import numpy as np
import pytest

from cnnlab import functional as F
from cnnlab.ops.conv import ConvPlan, conv2d_plan, conv_routes
from cnnlab.tensor import Tensor


def test_planner_picks_kn2row_for_one_dimensional_convolutions():
    # the text CNN's Conv1D over a 300-d embedding, as conv1d hands it to the planner
    plan = conv2d_plan((50, 300, 1, 50), (100, 300, 1, 5))
    assert plan == ConvPlan("kn2row", "kn2row", "kn2row", None, None)
    assert conv2d_plan((4, 8, 1, 20), (6, 8, 1, 3), padding=(0, 1)).forward == "kn2row"
    # a stride or groups: the route does not apply
    assert conv2d_plan((4, 8, 1, 20), (6, 8, 1, 3), stride=(1, 2)).forward == "im2col"
    assert conv2d_plan((4, 8, 1, 20), (6, 4, 1, 3), groups=2).forward == "im2col"
    with conv_routes(forward="kn2row"), pytest.raises(ValueError, match="groups=1"):
        conv2d_plan((1, 4, 6, 6), (2, 2, 3, 3), groups=2)


def test_conv1d_on_kn2row_matches_im2col_through_a_transposed_input():
    """The text CNN's shape of use: (N, L, C) words transposed to (N, C, L), a view that
    kn2row reads channels-last without a copy, and ∂L/∂x handed back as a view."""
    rng = np.random.default_rng(3)
    words = rng.standard_normal((3, 11, 7))
    w, b = rng.standard_normal((5, 7, 3)), rng.standard_normal(5)
    results = {}
    for route in ("kn2row", "im2col"):
        tensors = [Tensor(a, requires_grad=True) for a in (words, w, b)]
        with conv_routes(forward=route, input_grad="kn2row" if route == "kn2row" else "col2im"):
            y = F.conv1d(F.transpose(tensors[0], (0, 2, 1)), tensors[1], tensors[2], padding=1)
        y.backward(np.random.default_rng(4).standard_normal(y.shape))
        results[route] = [y.data] + [t.grad for t in tensors]
    for ours, theirs in zip(results["kn2row"], results["im2col"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
