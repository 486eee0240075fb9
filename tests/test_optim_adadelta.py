"""Adadelta against torch.optim.Adadelta, step by step, and its place among the optimisers."""

import numpy as np
import pytest

from cnnlab import Tensor
from cnnlab.optim import OPTIMIZER_NAMES, OPTIMIZERS, Adadelta, get_optimizer

SHAPES = [(3, 4), (5,), (2, 1, 3)]
CASES = [
    {},
    {"lr": 0.5, "rho": 0.9, "eps": 1e-5},
    {"lr": 1.0, "rho": 0.95, "eps": 1e-6, "weight_decay": 0.01},
]


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="torch is the oracle for the optimiser updates")


def _params(dtype):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def _grads(step, dtype):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def _run_ours(options, dtype, steps):
    params = [Tensor(a.copy(), requires_grad=True) for a in _params(dtype)]
    opt = Adadelta(params, **options)
    for step in range(steps):
        for p, g in zip(params, _grads(step, dtype)):
            p.grad = g
        opt.step()
    return [p.data for p in params], opt


def _run_torch(options, dtype, steps):
    import torch

    params = [torch.tensor(a.copy(), requires_grad=True) for a in _params(dtype)]
    # Our defaults are Zeiler's (rho 0.95); torch's rho default is 0.9: pass ours explicitly.
    full = {"lr": 1.0, "rho": 0.95, "eps": 1e-6, **options}
    opt = torch.optim.Adadelta(params, **full)
    for step in range(steps):
        for p, g in zip(params, _grads(step, dtype)):
            p.grad = torch.tensor(g)
        opt.step()
    return [p.detach().numpy() for p in params], opt


@pytest.mark.parametrize("options", CASES)
def test_matches_torch_float64_over_several_steps(options, torch):
    mine, opt = _run_ours(options, np.float64, steps=8)
    reference, theirs = _run_torch(options, np.float64, steps=8)
    for a, b in zip(mine, reference):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for index, param in enumerate(theirs.param_groups[0]["params"]):
        state = theirs.state[param]
        for key in ("square_avg", "acc_delta"):
            np.testing.assert_allclose(opt.state[index][key], state[key].numpy(), rtol=1e-10)


@pytest.mark.parametrize("options", CASES)
def test_matches_torch_float32_and_keeps_dtype(options, torch):
    mine, _ = _run_ours(options, np.float32, steps=5)
    reference, _ = _run_torch(options, np.float32, steps=5)
    for a, b in zip(mine, reference):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_first_step_by_hand():
    # E[g²] = (1 − ρ) g²; Δ = √ε / √(E[g²] + ε) · g; θ ← θ − η Δ.
    p = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    opt = Adadelta([p], lr=1.0, rho=0.9, eps=1e-6)
    g = np.array([0.5, -3.0])
    p.grad = g
    opt.step()
    delta = np.sqrt(1e-6) / np.sqrt(0.1 * g**2 + 1e-6) * g
    np.testing.assert_allclose(p.data, np.array([1.0, -2.0]) - delta, rtol=1e-14)
    np.testing.assert_allclose(opt.state[0]["acc_delta"], 0.1 * delta**2, rtol=1e-14)


def test_state_dict_round_trip_continues_identically():
    straight, _ = _run_ours({"rho": 0.9}, np.float64, steps=6)
    params = [Tensor(a.copy(), requires_grad=True) for a in _params(np.float64)]
    opt = Adadelta(params, rho=0.9)
    for step in range(3):
        for p, g in zip(params, _grads(step, np.float64)):
            p.grad = g
        opt.step()
    state = opt.state_dict()
    assert state["rho"] == 0.9 and len(state["state"]) == opt.state_slots * len(params)
    resumed_params = [Tensor(p.data.copy(), requires_grad=True) for p in params]
    resumed = Adadelta(resumed_params)
    resumed.load_state_dict(state)
    assert resumed.rho == 0.9
    for step in range(3, 6):
        for p, g in zip(resumed_params, _grads(step, np.float64)):
            p.grad = g
        resumed.step()
    for a, b in zip(straight, resumed_params):
        np.testing.assert_array_equal(a, b.data)


def test_by_name_and_in_the_lists_that_fit_and_run_json_use():
    p = [Tensor(np.ones(2), requires_grad=True)]
    opt = get_optimizer("adadelta", p, 1.0, weight_decay=0.1)
    assert isinstance(opt, Adadelta) and opt.lr == 1.0 and opt.weight_decay == 0.1
    assert "adadelta" in OPTIMIZER_NAMES and OPTIMIZERS["adadelta"] is Adadelta
    assert Adadelta.state_keys == ("square_avg", "acc_delta")


@pytest.mark.parametrize("bad, match", [({"rho": 1.5}, "rho"), ({"eps": -1.0}, "eps"),
                                        ({"lr": -0.1}, "lr")])
def test_validates_arguments(bad, match):
    with pytest.raises(ValueError, match=match):
        Adadelta([Tensor(np.ones(2), requires_grad=True)], **bad)
