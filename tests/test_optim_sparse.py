"""Row-sparse gradients in the optimisers: the numbers of the dense equivalent, and torch's."""

import numpy as np
import pytest

import cnnlab.functional as F
from cnnlab import Tensor
from cnnlab.optim import SGD, Adadelta, Adam, AdamW, Optimizer, clip_grad_norm
from cnnlab.row_sparse import RowSparseGrad

VOCABULARY, WIDTH = 12, 3
CASES = [
    (SGD, "SGD", {"lr": 0.1}),
    (SGD, "SGD", {"lr": 0.1, "weight_decay": 0.01}),
    (SGD, "SGD", {"lr": 0.05, "momentum": 0.9}),
    (SGD, "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    (SGD, "SGD", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.01}),
    (Adam, "Adam", {"lr": 0.01}),
    (Adam, "Adam", {"lr": 0.02, "weight_decay": 0.05}),
    (AdamW, "AdamW", {"lr": 0.03, "weight_decay": 0.1}),
    (Adadelta, "Adadelta", {"lr": 1.0, "rho": 0.95, "eps": 1e-6}),
    (Adadelta, "Adadelta", {"lr": 0.5, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.01}),
]
IDS = [f"{name}-{'-'.join(map(str, options.values()))}" for _, name, options in CASES]


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="torch is the oracle for the optimiser updates")


def _sparse_grads(steps, dtype):
    """One RowSparseGrad per step; row 11 never appears, step 2 touches only row 3."""
    rng = np.random.default_rng(7)
    grads = []
    for step in range(steps):
        indices = np.array([3]) if step == 2 else rng.integers(0, VOCABULARY - 1, 6)
        values = rng.standard_normal((len(indices), WIDTH)).astype(dtype)
        grads.append(RowSparseGrad.from_indices(indices, values, (VOCABULARY, WIDTH)))
    return grads


def _table(dtype):
    return np.random.default_rng(0).standard_normal((VOCABULARY, WIDTH)).astype(dtype)


def _run(cls, options, grads, dense, dtype):
    table = Tensor(_table(dtype), requires_grad=True)
    other = Tensor(np.ones(4, dtype=dtype), requires_grad=True)  # a dense neighbour
    opt = cls([table, other], **options)
    for step, grad in enumerate(grads):
        table.grad = grad.to_dense() if dense else grad
        other.grad = np.full(4, 0.1 * (step + 1), dtype=dtype)
        opt.step()
    return table.data, other.data, opt


@pytest.mark.parametrize("cls, name, options", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_gradient_gives_the_same_numbers_as_its_dense_equivalent(cls, name, options,
                                                                         dtype):
    grads = _sparse_grads(6, dtype)
    sparse_table, sparse_other, sparse_opt = _run(cls, options, grads, False, dtype)
    dense_table, dense_other, dense_opt = _run(cls, options, grads, True, dtype)
    assert sparse_table.dtype == dtype
    np.testing.assert_array_equal(sparse_table, dense_table)
    np.testing.assert_array_equal(sparse_other, dense_other)
    for key, value in dense_opt.state_dict()["state"].items():
        np.testing.assert_array_equal(sparse_opt.state_dict()["state"][key], value)


@pytest.mark.parametrize("cls, name, options", CASES, ids=IDS)
def test_sparse_gradient_matches_torch_with_the_dense_gradient(cls, name, options, torch):
    grads = _sparse_grads(6, np.float64)
    ours, _, _ = _run(cls, options, grads, False, np.float64)
    table = torch.tensor(_table(np.float64), requires_grad=True)
    other = torch.ones(4, dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, name)([table, other], **options)
    for step, grad in enumerate(grads):
        table.grad = torch.tensor(grad.to_dense())
        other.grad = torch.full((4,), 0.1 * (step + 1), dtype=torch.float64)
        opt.step()
    np.testing.assert_allclose(ours, table.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_plain_sgd_writes_only_the_rows_of_the_gradient():
    table = Tensor(_table(np.float32), requires_grad=True)
    array, before = table.data, table.data.copy()
    grad = RowSparseGrad(np.array([2, 7]), np.ones((2, WIDTH), np.float32), (VOCABULARY, WIDTH))
    table.grad = grad
    SGD([table], lr=0.5).step()
    assert table.data is array
    untouched = np.setdiff1d(np.arange(VOCABULARY), [2, 7])
    np.testing.assert_array_equal(table.data[untouched], before[untouched])
    np.testing.assert_array_equal(table.data[[2, 7]], before[[2, 7]] - np.float32(0.5))


def test_clip_grad_norm_counts_and_scales_a_sparse_gradient_as_its_dense_equivalent(torch):
    grad = _sparse_grads(1, np.float64)[0]
    table = Tensor(np.zeros((VOCABULARY, WIDTH)), requires_grad=True)
    other = Tensor(np.zeros(4), requires_grad=True)
    table.grad, other.grad = grad.copy(), np.full(4, 2.0)
    total = clip_grad_norm([table, other], max_norm=1.0)
    assert isinstance(table.grad, RowSparseGrad)

    tensors = [torch.zeros((VOCABULARY, WIDTH), dtype=torch.float64),
               torch.zeros(4, dtype=torch.float64)]
    tensors[0].grad = torch.tensor(grad.to_dense())
    tensors[1].grad = torch.full((4,), 2.0, dtype=torch.float64)
    expected = torch.nn.utils.clip_grad_norm_(tensors, max_norm=1.0)
    assert total == pytest.approx(float(expected), rel=1e-12)
    np.testing.assert_allclose(table.grad.to_dense(), tensors[0].grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(other.grad, tensors[1].grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name, options", [("SGD", {"lr": 0.5}), ("Adam", {"lr": 0.05}),
                                           ("Adadelta", {"lr": 1.0, "rho": 0.95, "eps": 1e-6})])
def test_embedding_training_steps_match_torch(name, options, torch):
    """Embedding → mean over tokens → linear → cross-entropy, three steps, float64."""
    rng = np.random.default_rng(3)
    table0 = rng.standard_normal((VOCABULARY, WIDTH))
    head0 = rng.standard_normal((2, WIDTH))
    batches = [(rng.integers(0, VOCABULARY, (4, 5)), rng.integers(0, 2, 4)) for _ in range(3)]
    ours_cls = {"SGD": SGD, "Adam": Adam, "Adadelta": Adadelta}[name]

    table = Tensor(table0.copy(), requires_grad=True)
    head = Tensor(head0.copy(), requires_grad=True)
    opt = ours_cls([table, head], **options)
    for ids, labels in batches:
        opt.zero_grad()
        logits = F.linear(F.embedding(ids, table).mean(axis=1), head)
        F.cross_entropy(logits, labels).backward()
        assert isinstance(table.grad, RowSparseGrad)
        opt.step()

    t_table = torch.tensor(table0.copy(), requires_grad=True)
    t_head = torch.tensor(head0.copy(), requires_grad=True)
    t_opt = getattr(torch.optim, name)([t_table, t_head], **options)
    for ids, labels in batches:
        t_opt.zero_grad()
        hidden = torch.nn.functional.embedding(torch.from_numpy(ids), t_table).mean(dim=1)
        loss = torch.nn.functional.cross_entropy(hidden @ t_head.T, torch.from_numpy(labels))
        loss.backward()
        t_opt.step()
    np.testing.assert_allclose(table.data, t_table.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(head.data, t_head.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_an_optimiser_that_does_not_declare_sparse_support_receives_the_dense_gradient():
    received = []

    class Recorder(Optimizer):
        def _update(self, index, param, grad):
            received.append(grad)

    table = Tensor(_table(np.float64), requires_grad=True)
    grad = _sparse_grads(1, np.float64)[0]
    table.grad = grad
    Recorder([table], lr=0.1).step()
    assert type(received[0]) is np.ndarray
    np.testing.assert_array_equal(received[0], grad.to_dense())
