import math

import numpy as np
import pytest

from cnnlab import Tensor
from cnnlab.optim import (
    SGD,
    Adam,
    AdamW,
    CosineLR,
    OneCycleLR,
    StepLR,
    clip_grad_norm,
    get_optimizer,
)


@pytest.fixture
def torch():
    """torch is the oracle for the updates and schedules; only the tests that use it skip without it."""
    return pytest.importorskip("torch", reason="torch is the oracle for the optimiser updates")


SHAPES = [(3, 4), (5,), (2, 1, 3)]


def _make_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def _grads(step, dtype, seed=1):
    rng = np.random.default_rng(seed + step)
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def _run_ours(cls, options, dtype, steps=5):
    params = [Tensor(a.copy(), requires_grad=True) for a in _make_params(dtype)]
    opt = cls(params, **options)
    for step in range(steps):
        for p, g in zip(params, _grads(step, dtype)):
            p.grad = g
        opt.step()
    return [p.data for p in params]


def _run_torch(cls, options, dtype, steps=5):
    import torch

    params = [torch.tensor(a.copy(), requires_grad=True) for a in _make_params(dtype)]
    opt = cls(params, **options)
    for step in range(steps):
        for p, g in zip(params, _grads(step, dtype)):
            p.grad = torch.tensor(g)
        opt.step()
    return [p.detach().numpy() for p in params]


CASES = [
    (SGD, "SGD", {"lr": 0.1}),
    (SGD, "SGD", {"lr": 0.05, "momentum": 0.9}),
    (SGD, "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    (SGD, "SGD", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.01}),
    (SGD, "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    (Adam, "Adam", {"lr": 0.01}),
    (Adam, "Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05}),
    (AdamW, "AdamW", {"lr": 0.01}),
    (AdamW, "AdamW", {"lr": 0.03, "betas": (0.85, 0.995), "weight_decay": 0.1}),
]


@pytest.mark.parametrize("ours, theirs, options", CASES)
def test_matches_torch_float64(ours, theirs, options, torch):
    mine = _run_ours(ours, options, np.float64)
    reference = _run_torch(getattr(torch.optim, theirs), options, np.float64)
    for a, b in zip(mine, reference):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("ours, theirs, options", CASES)
def test_matches_torch_float32_and_keeps_dtype(ours, theirs, options, torch):
    mine = _run_ours(ours, options, np.float32)
    reference = _run_torch(getattr(torch.optim, theirs), options, np.float32)
    for a, b in zip(mine, reference):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_update_is_in_place_and_skips_params_without_grad():
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(2), requires_grad=True)
    array = a.data
    opt = SGD([a, b], lr=0.5)
    a.grad = np.array([1.0, 2.0, 3.0])
    opt.step()
    assert a.data is array
    np.testing.assert_allclose(a.data, [0.5, 0.0, -0.5])
    np.testing.assert_allclose(b.data, [1.0, 1.0])
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_float64_gradient_does_not_upcast_float32_param():
    p = Tensor(np.ones(4, dtype=np.float32), requires_grad=True)
    opt = Adam([p], lr=0.1)
    p.grad = np.full(4, 0.5, dtype=np.float64)
    opt.step()
    assert p.data.dtype == np.float32
    assert opt.state[0]["exp_avg"].dtype == np.float32


@pytest.mark.parametrize("cls, options", [
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    (Adam, {"lr": 0.01}),
    (AdamW, {"lr": 0.01, "weight_decay": 0.1}),
])
def test_state_dict_round_trip_continues_identically(cls, options):
    dtype = np.float64
    straight = _run_ours(cls, options, dtype, steps=6)

    params = [Tensor(a.copy(), requires_grad=True) for a in _make_params(dtype)]
    opt = cls(params, **options)
    for step in range(3):
        for p, g in zip(params, _grads(step, dtype)):
            p.grad = g
        opt.step()
    state = opt.state_dict()
    for value in state["state"].values():
        assert isinstance(value, np.ndarray)
    resumed_params = [Tensor(p.data.copy(), requires_grad=True) for p in params]
    resumed = cls(resumed_params, **options)
    resumed.load_state_dict(state)
    for step in range(3, 6):
        for p, g in zip(resumed_params, _grads(step, dtype)):
            p.grad = g
        resumed.step()
    for a, b in zip(straight, resumed_params):
        np.testing.assert_array_equal(a, b.data)


def test_load_state_dict_rejects_wrong_shapes():
    opt = SGD([Tensor(np.ones(3), requires_grad=True)], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict({"type": "SGD", "lr": 0.1, "state": {"0.momentum_buffer": np.ones(4)}})
    with pytest.raises(ValueError, match="Adam"):
        opt.load_state_dict({"type": "Adam", "lr": 0.1, "state": {}})


@pytest.mark.parametrize("bad, match", [
    ({"lr": -1.0}, "lr"),
    ({"lr": 0.1, "momentum": 1.5}, "momentum"),
    ({"lr": 0.1, "nesterov": True}, "nesterov"),
])
def test_sgd_validates_arguments(bad, match):
    with pytest.raises(ValueError, match=match):
        SGD([Tensor(np.ones(2), requires_grad=True)], **bad)


def test_wrong_types_are_type_errors_in_the_shared_wording():
    with pytest.raises(TypeError, match="SGD: lr must be a number, received lr='fast'"):
        SGD([Tensor(np.ones(2), requires_grad=True)], lr="fast")
    with pytest.raises(TypeError, match="StepLR: step_size must be an int"):
        StepLR(SGD([Tensor(np.ones(2), requires_grad=True)], lr=0.1), step_size=1.5)


def test_state_slots_count_the_arrays_a_checkpoint_holds_per_parameter():
    p = [Tensor(np.ones(2), requires_grad=True)]
    assert SGD(p, lr=0.1).state_slots == 0
    assert SGD(p, lr=0.1, momentum=0.9).state_slots == 1
    assert Adam(p).state_slots == 2 and AdamW(p).state_slots == 2
    opt = Adam(p)
    p[0].grad = np.ones(2)
    opt.step()
    assert len(opt.state_dict()["state"]) == opt.state_slots


def test_optimizer_validates_params_and_betas():
    with pytest.raises(ValueError, match="empty"):
        Adam([])
    with pytest.raises(TypeError, match="Tensor"):
        Adam([np.ones(3)])
    with pytest.raises(ValueError, match="betas"):
        Adam([Tensor(np.ones(2), requires_grad=True)], betas=(0.9, 1.0))


def test_get_optimizer_by_name():
    p = [Tensor(np.ones(2), requires_grad=True)]
    assert isinstance(get_optimizer("adam", p, 0.01), Adam)
    nesterov = get_optimizer("nesterov", p, 0.01)
    assert isinstance(nesterov, SGD) and nesterov.nesterov and nesterov.momentum == 0.9
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        get_optimizer("rmsprop", p, 0.01)


def test_clip_grad_norm_matches_torch(torch):
    grads = _grads(0, np.float64)
    params = [Tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.copy()
    total = clip_grad_norm(params, max_norm=1.5)

    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, g in zip(tparams, grads):
        p.grad = torch.tensor(g.copy())
    expected = torch.nn.utils.clip_grad_norm_(tparams, max_norm=1.5)
    assert total == pytest.approx(float(expected), rel=1e-12)
    for p, t in zip(params, tparams):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12)
    clipped = math.sqrt(sum(float(np.sum(p.grad**2)) for p in params))
    assert clipped == pytest.approx(1.5, rel=1e-5)


def test_clip_grad_norm_leaves_small_gradients_and_keeps_dtype():
    p = Tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    p.grad = np.array([0.3, 0.4], dtype=np.float32)
    assert clip_grad_norm([p], 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(p.grad, np.array([0.3, 0.4], dtype=np.float32))
    p.grad = np.array([30.0, 40.0], dtype=np.float32)
    clip_grad_norm([p], 1.0)
    assert p.grad.dtype == np.float32
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-5)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm([p], 0.0)


def _torch_lrs(make, steps):
    import torch

    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    schedule = make(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    return lrs


def _our_lrs(make, steps):
    opt = SGD([Tensor(np.zeros(1), requires_grad=True)], lr=0.1)
    schedule = make(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.lr)
        schedule.step()
    return lrs


def test_step_lr_matches_torch(torch):
    ours = _our_lrs(lambda o: StepLR(o, step_size=3, gamma=0.5), 10)
    theirs = _torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 10)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert ours[:4] == pytest.approx([0.1, 0.1, 0.1, 0.05])


def test_cosine_lr_matches_torch_and_ends_at_min(torch):
    ours = _our_lrs(lambda o: CosineLR(o, total_steps=8, min_lr=0.001), 9)
    theirs = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8, eta_min=0.001), 9
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    assert ours[0] == pytest.approx(0.1) and ours[4] == pytest.approx(0.0505) and ours[8] == pytest.approx(0.001)


def test_one_cycle_matches_torch(torch):
    ours = _our_lrs(lambda o: OneCycleLR(o, max_lr=0.5, total_steps=20), 20)
    theirs = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=20, cycle_momentum=False),
        20,
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    assert ours[0] == pytest.approx(0.5 / 25)
    assert max(ours) == pytest.approx(0.5)
    assert ours[-1] == pytest.approx(0.5 / 25 / 1e4)


def test_schedule_state_dict_restores_lr():
    opt = SGD([Tensor(np.zeros(1), requires_grad=True)], lr=0.1)
    schedule = CosineLR(opt, total_steps=10)
    for _ in range(4):
        schedule.step()
    state = schedule.state_dict()
    opt2 = SGD([Tensor(np.zeros(1), requires_grad=True)], lr=0.1)
    schedule2 = CosineLR(opt2, total_steps=10)
    schedule2.load_state_dict(state)
    assert opt2.lr == opt.lr
    assert schedule2.step() == schedule.step()


@pytest.mark.parametrize("make, match", [
    (lambda o: StepLR(o, step_size=0), "step_size"),
    (lambda o: CosineLR(o, total_steps=0), "total_steps"),
    (lambda o: OneCycleLR(o, max_lr=-1, total_steps=10), "max_lr"),
    (lambda o: OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=1.0), "pct_start"),
])
def test_schedules_validate_arguments(make, match):
    opt = SGD([Tensor(np.zeros(1), requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match=match):
        make(opt)
