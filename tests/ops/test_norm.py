"""dropout, batch_norm, local_response_norm."""

import numpy as np
import pytest

from cnnlab.ops.norm import batch_norm, dropout, local_response_norm
from cnnlab.tensor import Tensor


def test_dropout_zeroes_and_rescales():
    x = np.ones((200, 50))
    y = dropout(x, p=0.25, rng=0).data
    assert set(np.unique(y)) == {0.0, 1 / 0.75}
    kept = (y != 0).mean()
    assert abs(kept - 0.75) < 0.01  # 10,000 Bernoulli draws: σ ≈ 0.004
    assert abs(y.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation


def test_dropout_is_reproducible_with_a_seed_and_a_generator():
    x = np.ones((4, 6))
    np.testing.assert_array_equal(dropout(x, 0.5, rng=3).data, dropout(x, 0.5, rng=3).data)
    assert not np.array_equal(dropout(x, 0.5, rng=3).data, dropout(x, 0.5, rng=4).data)
    generator = np.random.default_rng(5)
    first, second = dropout(x, 0.5, rng=generator).data, dropout(x, 0.5, rng=generator).data
    assert not np.array_equal(first, second)  # the generator advances
    replay = np.random.default_rng(5)
    np.testing.assert_array_equal(dropout(x, 0.5, rng=replay).data, first)


def test_dropout_backward_uses_the_same_mask():
    x = Tensor(np.random.default_rng(0).standard_normal((5, 8)), requires_grad=True)
    y = dropout(x, 0.4, rng=1)
    upstream = np.random.default_rng(2).standard_normal((5, 8))
    y.backward(upstream)
    mask = y.data / x.data
    np.testing.assert_allclose(x.grad, upstream * mask, rtol=1e-12)
    assert set(np.round(np.unique(mask), 12)) <= {0.0, round(1 / 0.6, 12)}


def test_dropout_gradcheck(check_gradients):
    # A fixed seed gives the same mask on every call, so finite differences apply.
    check_gradients(lambda t: dropout(t, 0.3, rng=7), np.random.default_rng(0).standard_normal((4, 5)))


def test_dropout_identity_in_eval_and_for_p_zero():
    x = Tensor(np.ones((3, 3)), requires_grad=True)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0, rng=0) is x


def test_dropout_with_p_one_drops_everything():
    x = Tensor(np.ones((3, 3)), requires_grad=True)
    y = dropout(x, 1.0, rng=0)
    np.testing.assert_array_equal(y.data, 0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_keeps_dtype(dtype):
    x = Tensor(np.ones((3, 4), dtype=dtype), requires_grad=True)
    y = dropout(x, 0.5, rng=0)
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad.dtype == dtype


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_dropout_rejects_bad_p(p):
    message = r"dropout: p must be a finite number in \[0, 1\], received p="
    with pytest.raises(ValueError, match=message):
        dropout(np.ones(3), p)


@pytest.mark.parametrize("p", ["0.5", None, True])
def test_dropout_rejects_p_of_the_wrong_type(p):
    with pytest.raises(TypeError, match=r"dropout: p must be a number, received p="):
        dropout(np.ones(3), p)


def test_dropout_rejects_bad_rng():
    message = "dropout: rng must be a numpy Generator, an int seed or None, received rng=0.5"
    with pytest.raises(TypeError, match=message):
        dropout(np.ones(3), 0.5, rng=0.5)




def _bn_inputs(shape, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    channels = shape[1]
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, channels).astype(dtype)
    beta = rng.standard_normal(channels).astype(dtype)
    return x, gamma, beta


BN_SHAPES = [(6, 3), (4, 3, 2, 3), (2, 2, 1, 1)]


def naive_batch_norm(x, gamma, beta, eps=1e-5):
    """Channel by channel with explicit mean and variance, written for clarity."""
    out = np.empty_like(x)
    for c in range(x.shape[1]):
        values = x[:, c]
        mean = values.sum() / values.size
        var = ((values - mean) ** 2).sum() / values.size
        out[:, c] = gamma[c] * (values - mean) / np.sqrt(var + eps) + beta[c]
    return out


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm_forward_matches_loops(shape):
    x, gamma, beta = _bn_inputs(shape)
    y = batch_norm(x, gamma, beta, None, None).data
    np.testing.assert_allclose(y, naive_batch_norm(x, gamma, beta), rtol=1e-12, atol=1e-12)
    normalised = batch_norm(x, None, None, None, None).data
    axes = (0,) + tuple(range(2, x.ndim))
    np.testing.assert_allclose(normalised.mean(axis=axes), 0, atol=1e-12)
    np.testing.assert_allclose(normalised.var(axis=axes), x.var(axis=axes) / (x.var(axis=axes) + 1e-5))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm_gradcheck(shape, training, check_gradients):
    x, gamma, beta = _bn_inputs(shape)
    running_mean, running_var = np.full(shape[1], 0.3), np.full(shape[1], 1.7)

    def fn(x, gamma, beta):
        # Fresh copies: finite differences call fn many times and training updates them.
        return batch_norm(x, gamma, beta, running_mean.copy(), running_var.copy(), training=training)

    check_gradients(fn, x, gamma, beta)


def test_batch_norm_backward_matches_the_compact_formula():
    x, gamma, beta = _bn_inputs((5, 2, 3, 3))
    xt = Tensor(x, requires_grad=True)
    delta = np.random.default_rng(1).standard_normal(x.shape)
    batch_norm(xt, gamma, beta, None, None).backward(delta)
    axes = (0, 2, 3)
    m = x.size // x.shape[1]
    mean, sigma = x.mean(axis=axes, keepdims=True), np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)
    x_hat = (x - mean) / sigma
    g = gamma.reshape(1, -1, 1, 1)
    expected = (g / sigma / m) * (
        m * delta - delta.sum(axis=axes, keepdims=True) - x_hat * (delta * x_hat).sum(axis=axes, keepdims=True)
    )
    np.testing.assert_allclose(xt.grad, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", BN_SHAPES[:2])
def test_batch_norm_training_against_torch(shape, dtype, torch_check, torch):
    x, gamma, beta = _bn_inputs(shape, dtype)
    channels = shape[1]
    running_mean, running_var = np.zeros(channels, dtype), np.ones(channels, dtype)
    torch_mean = torch.zeros(channels, dtype=torch.from_numpy(x).dtype)
    torch_var = torch.ones(channels, dtype=torch_mean.dtype)
    for step in range(3):
        batch = x * (step + 1) + step
        torch_check(
            lambda a, g, b: batch_norm(a, g, b, running_mean, running_var, momentum=0.2),
            lambda a, g, b: torch.nn.functional.batch_norm(
                a, torch_mean, torch_var, g, b, training=True, momentum=0.2
            ),
            batch,
            gamma,
            beta,
            seed=step,
        )
    tolerance = 1e-10 if dtype == np.float64 else 1e-4
    scale = max(1.0, float(np.abs(running_var).max()))
    np.testing.assert_allclose(running_mean, torch_mean.numpy(), atol=tolerance * scale)
    np.testing.assert_allclose(running_var, torch_var.numpy(), atol=tolerance * scale)
    assert running_mean.dtype == dtype and running_var.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", BN_SHAPES[:2])
def test_batch_norm_eval_against_torch(shape, dtype, torch_check, torch):
    x, gamma, beta = _bn_inputs(shape, dtype)
    rng = np.random.default_rng(3)
    running_mean = rng.standard_normal(shape[1]).astype(dtype)
    running_var = rng.uniform(0.5, 2, shape[1]).astype(dtype)
    before = running_mean.copy(), running_var.copy()
    torch_check(
        lambda a, g, b: batch_norm(a, g, b, running_mean, running_var, training=False),
        lambda a, g, b: torch.nn.functional.batch_norm(
            a, torch.from_numpy(running_mean.copy()), torch.from_numpy(running_var.copy()), g, b, training=False
        ),
        x,
        gamma,
        beta,
    )
    np.testing.assert_array_equal(running_mean, before[0])  # evaluation never updates the estimates
    np.testing.assert_array_equal(running_var, before[1])


def test_batch_norm_running_statistics_use_the_unbiased_variance():
    x = np.array([[1.0], [2.0], [3.0], [6.0]])
    running_mean, running_var = np.zeros(1), np.ones(1)
    batch_norm(x, np.ones(1), np.zeros(1), running_mean, running_var, momentum=0.5)
    np.testing.assert_allclose(running_mean, [0.5 * 3.0])
    np.testing.assert_allclose(running_var, [0.5 * 1 + 0.5 * x.var(ddof=1)])


def test_batch_norm_accepts_tensor_buffers_and_updates_them_in_place():
    x, gamma, beta = _bn_inputs((6, 3))
    buffer = Tensor(np.zeros(3))
    storage = buffer.data
    batch_norm(x, gamma, beta, buffer, np.ones(3))
    assert buffer.data is storage
    np.testing.assert_allclose(storage, 0.1 * x.mean(axis=0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_keeps_dtype_with_float64_buffers(dtype):
    x, gamma, beta = _bn_inputs((4, 3, 2, 2), dtype)
    xt = Tensor(x, requires_grad=True)
    for training in (True, False):
        y = batch_norm(xt, gamma, beta, np.zeros(3), np.ones(3), training=training)
        assert y.dtype == dtype
        y.sum().backward()
        assert xt.grad.dtype == dtype


def test_batch_norm_shape_errors():
    x, gamma, beta = _bn_inputs((4, 3, 2, 2))
    with pytest.raises(ValueError, match=r"batch_norm: expected an input of shape \(N, C\) or \(N, C, H, W\), received \(4, 3, 2\)"):
        batch_norm(x[..., 0], gamma, beta, None, None)
    with pytest.raises(ValueError, match=r"batch_norm: gamma has shape \(2,\), expected \(3,\) for input \(4, 3, 2, 2\)"):
        batch_norm(x, gamma[:2], beta, None, None)
    with pytest.raises(ValueError, match=r"batch_norm: running_var must be a numpy array of shape \(3,\), received \(4,\)"):
        batch_norm(x, gamma, beta, np.zeros(3), np.ones(4))
    with pytest.raises(ValueError, match=r"batch_norm: running_mean must be a numpy array of shape \(3,\), received list"):
        batch_norm(x, gamma, beta, [0.0, 0.0, 0.0], np.ones(3))


def test_batch_norm_option_errors():
    x, gamma, beta = _bn_inputs((4, 3))
    message = r"batch_norm: momentum must be a finite number in \[0, 1\], received momentum=1.5"
    with pytest.raises(ValueError, match=message):
        batch_norm(x, gamma, beta, np.zeros(3), np.ones(3), momentum=1.5)
    with pytest.raises(ValueError, match="eps must be a finite number > 0, received eps=-1"):
        batch_norm(x, gamma, beta, np.zeros(3), np.ones(3), eps=-1)


def test_batch_norm_op_rejects_eps_zero_like_the_layer():
    # the op accepted eps=0 (>= 0) where the layer requires eps > 0; a constant channel
    # then divided by zero
    x, gamma, beta = _bn_inputs((4, 3))
    message = "batch_norm: eps must be a finite number > 0, received eps=0"
    with pytest.raises(ValueError, match=message):
        batch_norm(x, gamma, beta, np.zeros(3), np.ones(3), eps=0)
    with pytest.raises(TypeError, match="batch_norm: eps must be a number, received eps='1e-5'"):
        batch_norm(x, gamma, beta, np.zeros(3), np.ones(3), eps="1e-5")


def test_batch_norm_needs_more_than_one_value_per_channel_in_training():
    with pytest.raises(ValueError, match=r"batch_norm: expected more than 1 value per channel when training, received input shape \(1, 3\)"):
        batch_norm(np.ones((1, 3)), None, None, np.zeros(3), np.ones(3))
    # In evaluation a single sample is fine.
    y = batch_norm(np.ones((1, 3)), None, None, np.zeros(3), np.ones(3), training=False)
    np.testing.assert_allclose(y.data, 1 / np.sqrt(1 + 1e-5))




@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(64, 32, 28, 28), (16, 64, 14, 14), (64, 256)])
def test_batch_norm_float32_is_close_to_float64_at_the_fashion_nets_shapes(shape, training):
    """The compiled loops sum in float64 and stay float32 elsewhere: forward and all three
    gradients within float32 rounding of the same computation in float64, also for a
    channel whose mean is 100 standard deviations from zero."""
    x, gamma, beta = _bn_inputs(shape, np.float64, seed=4)
    x[:, 0] += 100
    rng = np.random.default_rng(5)
    delta = rng.standard_normal(shape)
    running = rng.standard_normal(shape[1]) + np.where(np.arange(shape[1]) == 0, 100, 0)
    results = {}
    for dtype in (np.float64, np.float32):
        tensors = [Tensor(a.astype(dtype), requires_grad=True) for a in (x, gamma, beta)]
        y = batch_norm(*tensors, running.astype(dtype), np.full(shape[1], 2.0, dtype), training)
        y.backward(delta.astype(dtype))
        assert y.dtype == dtype and all(t.grad.dtype == dtype for t in tensors)
        results[dtype] = [y.data] + [t.grad for t in tensors]
    for name, ours, exact in zip(("y", "dx", "dgamma", "dbeta"), *results.values()):
        scale = np.abs(exact).max()
        np.testing.assert_allclose(ours, exact, rtol=0, atol=2e-5 * scale, err_msg=name)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm_parameter_gradients_without_the_input_gradient(shape, training):
    """When x needs no gradient only Σδ and Σδx̂ are computed: the same values as with it."""
    x, gamma, beta = _bn_inputs(shape)
    delta = np.random.default_rng(3).standard_normal(shape)
    grads = []
    for x_needs_grad in (True, False):
        tensors = [Tensor(x, requires_grad=x_needs_grad)] + [
            Tensor(a, requires_grad=True) for a in (gamma, beta)
        ]
        batch_norm(*tensors, np.zeros(shape[1]), np.ones(shape[1]), training).backward(delta)
        assert (tensors[0].grad is not None) == x_needs_grad
        grads.append([t.grad for t in tensors[1:]])
    for with_x, without_x in zip(*grads):
        np.testing.assert_array_equal(with_x, without_x)


def test_batch_norm_of_a_non_contiguous_input_equals_its_copy():
    x, gamma, beta = _bn_inputs((3, 4, 5, 6))
    view = x.transpose(0, 1, 3, 2)  # strided, not C-contiguous
    delta = np.random.default_rng(2).standard_normal(view.shape)[:, :, ::-1]
    grads = []
    for data in (view, view.copy()):
        t = Tensor(data, requires_grad=True)
        y = batch_norm(t, gamma, beta, None, None)
        y.backward(delta)
        grads.append((y.data, t.grad))
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    np.testing.assert_array_equal(grads[0][1], grads[1][1])


def naive_local_response_norm(a, size, alpha, beta, k):
    """The AlexNet formula, channel by channel (window n//2 before, (n − 1)//2 after)."""
    out = np.empty_like(a)
    channels = a.shape[1]
    for i in range(channels):
        low, high = max(0, i - size // 2), min(channels - 1, i + (size - 1) // 2)
        total = sum(a[:, j] ** 2 for j in range(low, high + 1))
        out[:, i] = a[:, i] / (k + alpha * total) ** beta
    return out


LRN_CASES = [
    (5, 1e-4, 0.75, 2.0),  # AlexNet's values
    (3, 0.1, 0.75, 1.0),
    (4, 0.05, 0.5, 1.5),  # an even window
    (1, 0.2, 1.0, 1.0),
    (9, 0.02, 0.75, 2.0),  # wider than the channels
]


def _lrn_input(dtype=np.float64, shape=(2, 6, 3, 3), seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 2).astype(dtype)


@pytest.mark.parametrize(("size", "alpha", "beta", "k"), LRN_CASES)
def test_local_response_norm_matches_the_paper_formula(size, alpha, beta, k):
    a = _lrn_input()
    y = local_response_norm(a, size, alpha, beta, k).data
    np.testing.assert_allclose(y, naive_local_response_norm(a, size, alpha, beta, k), rtol=1e-13)


@pytest.mark.parametrize(("size", "alpha", "beta", "k"), LRN_CASES)
def test_local_response_norm_gradcheck(size, alpha, beta, k, check_gradients):
    check_gradients(lambda t: local_response_norm(t, size, alpha, beta, k), _lrn_input(shape=(2, 6, 2, 2)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("size", "alpha", "beta", "k"), LRN_CASES)
def test_local_response_norm_against_torch_with_alpha_times_size(size, alpha, beta, k, dtype, torch_check, torch):
    # PyTorch averages the squares over the window, so its alpha is ours times size.
    torch_check(
        lambda t: local_response_norm(t, size, alpha, beta, k),
        lambda t: torch.nn.functional.local_response_norm(t, size, alpha * size, beta, k),
        _lrn_input(dtype),
    )


def test_local_response_norm_works_on_three_dimensional_input(check_gradients):
    a = _lrn_input(shape=(2, 5, 4))
    np.testing.assert_allclose(
        local_response_norm(a, 3, 0.1, 0.75, 1.0).data, naive_local_response_norm(a, 3, 0.1, 0.75, 1.0), rtol=1e-13
    )
    check_gradients(lambda t: local_response_norm(t, 3, 0.1, 0.75, 1.0), a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_local_response_norm_keeps_dtype(dtype):
    x = Tensor(_lrn_input(dtype), requires_grad=True)
    y = local_response_norm(x)
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad.dtype == dtype


def test_local_response_norm_errors():
    with pytest.raises(ValueError, match=r"local_response_norm: expected an input of shape \(N, C, H, W\), received \(2, 6\)"):
        local_response_norm(np.ones((2, 6)))
    message = "local_response_norm: size must be an int >= 1, received size=0"
    with pytest.raises(ValueError, match=message):
        local_response_norm(_lrn_input(), size=0)
    message = "local_response_norm: size must be an int, received size=2.5"
    with pytest.raises(TypeError, match=message):
        local_response_norm(_lrn_input(), size=2.5)
    message = "local_response_norm: k must be a finite number > 0, received k=0"
    with pytest.raises(ValueError, match=message):
        local_response_norm(_lrn_input(), k=0)


@pytest.mark.parametrize("p", [0.25, 0.3, 0.5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_draws_the_same_mask_as_numpy_float32_uniforms(p, dtype):
    """The mask is the seeded stream's float32 uniforms >= p, so a seed gives the same
    masks (and training runs) as before the compiled pass; NaN stays NaN where dropped."""
    x = np.random.default_rng(1).standard_normal((3, 4, 5, 6)).astype(dtype)
    x[0, 0, 0, :] = np.nan
    t = Tensor(x, requires_grad=True)
    y = dropout(t, p, rng=np.random.default_rng(9))
    keep = np.random.default_rng(9).random(x.shape, dtype=np.float32) >= p
    scaled_mask = keep.astype(dtype) * np.asarray(1 / (1 - p), dtype=dtype)
    np.testing.assert_array_equal(y.data, x * scaled_mask)
    assert y.dtype == dtype
    upstream = np.random.default_rng(2).standard_normal(x.shape).astype(dtype)
    y.backward(upstream)
    scaled_mask = keep.astype(dtype) * np.asarray(1 / (1 - p), dtype=dtype)
    np.testing.assert_array_equal(t.grad, upstream * scaled_mask)


# --- dropout's rows of a split batch and batch norm over split batches (data-parallel) ---

def test_dropout_on_rows_of_a_batch_draws_the_whole_batchs_masks():
    import cnnlab.functional as F_

    x = np.ones((8, 5))
    whole = F_.dropout(x, 0.5, True, np.random.default_rng(3)).data
    generators = [np.random.default_rng(3) for _ in range(3)]
    parts = [F_.dropout(x[lo:hi], 0.5, True, generators[i], rows=(lo, 8)).data
             for i, (lo, hi) in enumerate([(0, 3), (3, 6), (6, 8)])]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    # each process's generator ends where the whole batch's does
    follow = np.random.default_rng(3)
    follow.random((8, 5), dtype=np.float32)
    assert all(g.random() == follow.random() for g in generators[:1])
    with pytest.raises(ValueError, match="rows"):
        F_.dropout(x[:3], 0.5, True, 0, rows=(6, 8))


def _identity_total(values):
    return np.array(values, dtype=np.float64)


def test_sync_batch_norm_in_one_process_is_batch_norm():
    import cnnlab.functional as F_
    from cnnlab.tensor import Tensor

    rng = np.random.default_rng(0)
    for shape in ((6, 3, 4, 4), (7, 5)):
        x = rng.standard_normal(shape)
        gamma, beta, weight = rng.standard_normal(shape[1]), rng.standard_normal(shape[1]), \
            rng.standard_normal(shape)
        results = []
        for sync in (False, True):
            xs, gs, bs = (Tensor(a.copy(), requires_grad=True) for a in (x, gamma, beta))
            mean, var = np.zeros(shape[1]), np.ones(shape[1])
            if sync:
                y = F_.sync_batch_norm(xs, gs, bs, mean, var, _identity_total)
            else:
                y = F_.batch_norm(xs, gs, bs, mean, var, True)
            (y * Tensor(weight)).sum().backward()
            results.append([y.data, xs.grad, gs.grad, bs.grad, mean, var])
        for ours, theirs in zip(*results):
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_sync_batch_norm_gradients_match_finite_differences():
    import cnnlab.functional as F_
    from cnnlab.gradcheck import gradcheck

    rng = np.random.default_rng(1)
    inputs = [Tensor(rng.standard_normal(shape), requires_grad=True)
              for shape in ((4, 2, 3, 3), (2,), (2,))]
    errors = gradcheck(lambda a, g, b: F_.sync_batch_norm(a, g, b, None, None, _identity_total),
                       inputs)
    assert len(errors) == 3 and max(errors.values()) < 1e-6
