"""Optimisers, learning-rate schedules and gradient clipping.

Every optimiser updates ``param.data`` in place, under ``no_grad``, in the
parameter's own dtype (a float32 model stays float32). The update rules follow
PyTorch's ``torch.optim`` exactly, so that the tests can compare step by step.

Updates run in place through ``out=`` into at most three scratch arrays per step, with the
same operations in the same order as the textbook expressions, so the numbers are
unchanged to the last bit; only the temporaries are gone.

**Row-sparse gradients** (``cnnlab.row_sparse.RowSparseGrad``, an embedding table's):
every optimiser treats one exactly as its dense equivalent, zeros outside its rows, and
gives the same numbers as that dense gradient would (to the sign of a zero). A model's
training does not depend on whether a layer's gradient came sparse. The sparsity saves
the work that involves the gradient:

- SGD without momentum and without weight decay updates only the k rows: θ[r] −= η g[r].
- Adadelta (without weight decay) updates θ only in the k rows, since its step is
  proportional to g; its two running averages still decay everywhere (E ← ρE, in place).
- SGD with momentum and Adam/AdamW decay their buffers everywhere and move every row
  with a nonzero buffer, exactly as with the dense gradient; only the gradient terms
  are added at the k rows. PyTorch's ``SparseAdam`` instead updates only the rows
  present ("lazy"), which is cheaper but changes the optimiser's meaning.
- L2 weight decay (``weight_decay`` of SGD, Adam, Adadelta) makes the gradient
  g + λθ dense, so the sparse gradient is spread into a dense scratch array first;
  AdamW's decoupled decay θ ← θ(1 − ηλ) is a dense in-place scaling.

Example::

    opt = Adam(model.parameters(), lr=1e-3)
    schedule = CosineLR(opt, total_steps=1000)
    for x, y in loader:
        opt.zero_grad()
        loss = cross_entropy(model(x), y)
        loss.backward()
        clip_grad_norm(model.parameters(), max_norm=5.0)
        opt.step()
        schedule.step()
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from cnnlab import optim_loops
from cnnlab._checks import check_number, check_type
from cnnlab.ops.pass_threads import run_split
from cnnlab.row_sparse import RowSparseGrad
from cnnlab.schedules import CosineLR, OneCycleLR, Schedule, StepLR
from cnnlab.tensor import Tensor, no_grad

__all__ = [
    "OPTIMIZERS", "OPTIMIZER_NAMES", "SGD", "Adadelta", "Adam", "AdamW", "CosineLR", "OneCycleLR",
    "Optimizer", "Schedule", "StepLR", "clip_grad_norm", "get_optimizer",
]


class Optimizer:
    """Base class: holds the parameters, the learning rate ``lr`` and per-parameter state.

    ``lr_scales`` (one number ≥ 0 per parameter, default all 1) gives each parameter its own
    rate lr × scale, as PyTorch's parameter groups give each group its own lr, but relative,
    so that a schedule changing ``lr`` moves every rate alike. A model declares its scales
    (``Module.parameter_lr_scales``: a spatial transformer's localisation net learns
    slower) and ``fit`` passes them on. Scale 0 freezes a parameter.

    Subclasses implement ``_update(index, param, grad)``; ``step`` calls it for every
    parameter that has a gradient, in the parameter's dtype: an array, or a
    ``RowSparseGrad`` where the subclass sets ``takes_row_sparse`` (``_gradient`` adds
    L2 weight decay). ``state[index]`` is a dict of arrays.
    """

    #: hyperparameters saved by ``state_dict`` besides ``lr`` (names of attributes)
    hyperparameters: tuple[str, ...] = ()
    #: names of the per-parameter state arrays (``state[index]`` keys; checkpoints check them)
    state_keys: tuple[str, ...] = ()
    #: whether ``_update`` takes a ``RowSparseGrad`` (else ``step`` passes its dense equivalent)
    takes_row_sparse = False
    weight_decay = 0.0
    decoupled = False  # weight decay applied to θ directly (AdamW), not added to the gradient

    @property
    def state_slots(self) -> int:
        """Arrays of state kept per parameter (momentum, Adam's two moments): sizes checkpoints."""
        return len(self.state_keys)

    def _zeroed_state(self, index: int, param: Tensor) -> dict[str, np.ndarray]:
        """``state[index]``, with a zero array like ``param`` for each of ``state_keys`` the
        first time."""
        state = self.state[index]
        if not state:
            state.update((key, np.zeros_like(param.data)) for key in self.state_keys)
        return state

    def __init__(self, params: Iterable[Tensor], lr: float, lr_scales=None):
        name = type(self).__name__
        params = list(params)
        if not params:
            raise ValueError(f"{name}: received an empty parameter list")
        unique, seen = [], set()
        for p in params:
            check_type(p, Tensor, name, "params[i]", "a cnnlab.Tensor")
            if id(p) not in seen:
                seen.add(id(p))
                unique.append(p)
        self.params: list[Tensor] = unique
        self.lr_scales = _lr_scales(name, params, unique, lr_scales)
        self.lr = check_number(lr, name, "lr", 0.0)
        self._lr = self.lr  # the rate of the parameter being updated: lr × its scale
        self.initial_lr = self.lr
        self.step_count = 0
        self.state: list[dict[str, np.ndarray]] = [{} for _ in unique]
        self._scratch: dict[tuple, np.ndarray] = {}
        self._largest = max(p.data.size for p in unique)

    def zero_grad(self) -> None:
        """Forget the gradients of all parameters (``grad = None``)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        self.step_count += 1
        with no_grad():
            for index, p in enumerate(self.params):
                grad = p.grad
                if grad is None:
                    continue
                if type(grad) is not RowSparseGrad:
                    grad = np.asarray(grad)
                elif not self.takes_row_sparse:
                    grad = grad.to_dense()
                self._lr = self.lr * self.lr_scales[index]
                self._update(index, p, grad.astype(p.data.dtype, copy=False))
        # Scratch lives for one step: kept, it would hold up to 3 × the largest parameter for
        # good, and keeping it did not speed the step up (fashion net, Adam: 12.3 vs 12.4 ms).
        self._scratch.clear()

    def _update(self, index: int, param: Tensor, grad) -> None:
        """Update ``param`` in place; ``grad`` is an array or a ``RowSparseGrad``."""
        raise NotImplementedError

    def _work(self, slot: int, like: np.ndarray) -> np.ndarray:
        """Scratch array ``slot`` shaped like ``like`` (slot 1 holds g + λθ), for one step."""
        key = (slot, like.dtype)
        flat = self._scratch.get(key)
        if flat is None or flat.size < like.size:
            flat = self._scratch[key] = np.empty(max(self._largest, like.size), like.dtype)
        return flat[: like.size].reshape(like.shape)

    def _gradient(self, param: Tensor, grad):
        """The gradient the update uses: g, or g + λθ (L2 weight decay) in scratch slot 1.

        L2 decay makes a ``RowSparseGrad`` dense. λθ + g is computed in that order,
        which gives the same bits as g + λθ.
        """
        if not self.weight_decay or self.decoupled:
            return grad
        out = self._work(1, param.data)
        np.multiply(param.data, self.weight_decay, out=out)
        _add_into(out, grad)
        return out

    def state_dict(self) -> dict:
        """``{'type', 'lr', 'initial_lr', 'step_count', <hyperparameters>, 'state'}``.

        ``state`` maps ``'i.key'`` (parameter index, slot name) to an ndarray.

        Only numbers, strings and NumPy arrays, so it can be stored without pickle.
        """
        state = {
            f"{index}.{key}": value.copy()
            for index, entries in enumerate(self.state)
            for key, value in entries.items()
        }
        out = {
            "type": type(self).__name__,
            "lr": self.lr,
            "initial_lr": self.initial_lr,
            "step_count": self.step_count,
            "state": state,
        }
        for name in self.hyperparameters:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned (same parameters, same order)."""
        name = type(self).__name__
        if state.get("type", name) != name:
            raise ValueError(f"{name}.load_state_dict: received the state of a "
                             f"{state.get('type')}")
        restored: list[dict[str, np.ndarray]] = [{} for _ in self.params]
        for key, value in state.get("state", {}).items():
            index_text, _, entry = key.partition(".")
            index = int(index_text)
            if index >= len(self.params):
                raise ValueError(
                    f"{name}.load_state_dict: state for parameter {index}, but the optimiser has "
                    f"{len(self.params)} parameters"
                )
            param = self.params[index]
            value = np.asarray(value)
            if value.shape != param.shape:
                raise ValueError(
                    f"{name}.load_state_dict: state {key!r} has shape {value.shape}, "
                    f"parameter {index} has shape {param.shape}"
                )
            restored[index][entry] = value.astype(param.data.dtype, copy=True)
        self.state = restored
        self.lr = float(state["lr"])
        self.initial_lr = float(state.get("initial_lr", self.lr))
        self.step_count = int(state.get("step_count", 0))
        for hp in self.hyperparameters:
            if hp in state:
                value = state[hp]
                setattr(self, hp, tuple(value) if isinstance(value, list) else value)

    def __repr__(self) -> str:
        options = ", ".join(f"{hp}={getattr(self, hp)!r}" for hp in self.hyperparameters)
        return f"{type(self).__name__}(lr={self.lr:g}, {options})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay.

    With g = ∇L(θ) + λθ (λ = weight_decay), μ = momentum and η = lr::

        v ← μ v + g            (v = g at the first step)
        θ ← θ − η (g + μ v)    if nesterov
        θ ← θ − η v            otherwise (plain SGD when μ = 0: θ ← θ − η g)

    This is PyTorch's formulation (the velocity holds gradients, not steps).
    """

    hyperparameters = ("momentum", "nesterov", "weight_decay")
    state_keys = ("momentum_buffer",)
    takes_row_sparse = True

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, lr_scales=None):
        super().__init__(params, lr, lr_scales)
        self.momentum = check_number(momentum, "SGD", "momentum", 0.0, 1.0, high_open=True)
        self.weight_decay = check_number(weight_decay, "SGD", "weight_decay", 0.0)
        if nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0, received momentum=0")
        self.nesterov = bool(nesterov)

    @property
    def state_slots(self) -> int:
        return 1 if self.momentum else 0

    def _update(self, index, param, grad):
        if self.weight_decay:
            grad = self._gradient(param, grad)
        if self._compiled_update(index, param, grad):
            return
        if self.momentum:
            grad = self._momentum(index, grad)
        elif type(grad) is RowSparseGrad:  # exact: the dense update changes no other row
            param.data[grad.rows] -= grad.values * self._lr
            return
        step = self._work(0, param.data)
        np.multiply(grad, self._lr, out=step)
        param.data -= step

    def _compiled_update(self, index, param, grad) -> bool:
        """The update of a dense gradient as one compiled pass (``optim_loops``), the same
        bits as the NumPy form below; False where it does not apply (a row-sparse or
        non-contiguous gradient, Nesterov, the first momentum step, which copies g into v).

        Fashion net, SGD momentum 0.9, interleaved medians of 40 steps: 1.34 → 0.67 ms on one
        thread; 1.45 → 0.90 ms on two (on a machine busy with other work).
        """
        data = param.data
        if (type(grad) is RowSparseGrad or self.nesterov or data.dtype.char not in "fd"
                or not data.flags.c_contiguous
                or not grad.flags.c_contiguous or grad.shape != data.shape
                or grad.dtype != data.dtype):
            return False
        lr = data.dtype.type(self._lr)
        flat, flat_grad = data.reshape(-1), grad.reshape(-1)
        if not self.momentum:
            run_split(flat.size, flat.size, lambda first, stop: optim_loops.plain_step(
                flat[first:stop], flat_grad[first:stop], lr))
            return True
        velocity = self.state[index].get("momentum_buffer")
        if (velocity is None or not velocity.flags.c_contiguous
                or velocity.dtype != data.dtype or velocity.shape != data.shape):
            return False
        momentum, flat_velocity = data.dtype.type(self.momentum), velocity.reshape(-1)
        run_split(flat.size, flat.size, lambda first, stop: optim_loops.momentum_step(
            flat[first:stop], flat_velocity[first:stop], flat_grad[first:stop], momentum, lr))
        return True

    def _momentum(self, index, grad) -> np.ndarray:
        """v ← μv + g, then the direction: v, or g + μv (computed μv + g) for Nesterov.

        A sparse g decays v everywhere and adds only at its rows: the dense result.
        """
        state = self.state[index]
        velocity = state.get("momentum_buffer")
        if velocity is None:
            velocity = state["momentum_buffer"] = np.array(grad, copy=True)
        else:
            velocity *= self.momentum
            if type(grad) is RowSparseGrad:
                velocity[grad.rows] += grad.values
            else:
                velocity += grad
        if not self.nesterov:
            return velocity
        direction = self._work(0, velocity)
        np.multiply(velocity, self.momentum, out=direction)
        _add_into(direction, grad)
        return direction


def _lr_scales(name, params, unique, scales) -> list[float]:
    """One learning-rate multiplier per unique parameter (the first one given for a duplicate)."""
    if scales is None:
        return [1.0] * len(unique)
    scales = list(scales)
    if len(scales) != len(params):
        raise ValueError(f"{name}: lr_scales has {len(scales)} entries for {len(params)} "
                         f"parameters")
    first = {}
    for p, scale in zip(params, scales):
        first.setdefault(id(p), check_number(scale, name, "lr_scales[i]", 0.0))
    return [first[id(p)] for p in unique]


def _add_into(target: np.ndarray, grad) -> None:
    """target += grad, for a dense array or a RowSparseGrad (whose rows are unique)."""
    if type(grad) is RowSparseGrad:
        target[grad.rows] += grad.values
    else:
        target += grad


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction and optional L2 weight decay.

    With g = ∇L(θ) + λθ, step t = 1, 2, …::

        m ← β₁ m + (1 − β₁) g
        v ← β₂ v + (1 − β₂) g²
        θ ← θ − η · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
    """

    hyperparameters = ("betas", "eps", "weight_decay")
    state_keys = ("exp_avg", "exp_avg_sq")
    takes_row_sparse = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, lr_scales=None):
        super().__init__(params, lr, lr_scales)
        name = type(self).__name__
        check_type(betas, (tuple, list), name, "betas", "a pair (beta1, beta2)")
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), "
                             f"received betas={betas!r}")
        self.betas = (
            check_number(betas[0], name, "betas[0]", 0.0, 1.0, high_open=True),
            check_number(betas[1], name, "betas[1]", 0.0, 1.0, high_open=True),
        )
        self.eps = check_number(eps, name, "eps", 0.0)
        self.weight_decay = check_number(weight_decay, name, "weight_decay", 0.0)

    def _update(self, index, param, grad):
        beta1, beta2 = self.betas
        if self.weight_decay and self.decoupled:
            param.data *= 1.0 - self._lr * self.weight_decay
        grad = self._gradient(param, grad)
        state = self._zeroed_state(index, param)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        work = self._work(0, param.data)
        m *= beta1
        v *= beta2
        if type(grad) is RowSparseGrad:  # g is zero outside its rows: add only there
            rows, values = grad.rows, grad.values
            m[rows] += values * (1.0 - beta1)
            v[rows] += values * (1.0 - beta2) * values
        else:
            m += np.multiply(grad, 1.0 - beta1, out=work)
            np.multiply(grad, 1.0 - beta2, out=work)
            work *= grad
            v += work
        t = self.step_count
        step_size = self._lr / (1.0 - beta1**t)
        np.sqrt(v, out=work)  # the denominator √v / √(1 − β₂ᵗ) + ε
        work /= math.sqrt(1.0 - beta2**t)
        work += self.eps
        np.divide(m, work, out=work)
        work *= step_size
        param.data -= work


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019).

    θ ← θ (1 − ηλ) first, then the Adam step with the plain gradient g = ∇L(θ).
    The default λ = 0.01 is PyTorch's.
    """

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01, lr_scales=None):
        super().__init__(params, lr, betas, eps, weight_decay, lr_scales)


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012), the optimiser of Kim (2014)'s sentence CNN, as PyTorch writes it.

    With g = ∇L(θ) + λθ, running averages E[g²] and E[Δθ²] (both starting at 0)::

        E[g²]  ← ρ E[g²] + (1 − ρ) g²
        Δθ     = √(E[Δθ²] + ε) / √(E[g²] + ε) · g
        E[Δθ²] ← ρ E[Δθ²] + (1 − ρ) Δθ²
        θ      ← θ − η Δθ

    Defaults are Zeiler's and Kim's ρ = 0.95, ε = 1e-6 and η = 1 (PyTorch's ρ is 0.9).
    Δθ is zero where g is, so a row-sparse gradient moves only its rows.
    """

    hyperparameters = ("rho", "eps", "weight_decay")
    state_keys = ("square_avg", "acc_delta")
    takes_row_sparse = True

    def __init__(self, params, lr: float = 1.0, rho: float = 0.95, eps: float = 1e-6,
                 weight_decay: float = 0.0, lr_scales=None):
        super().__init__(params, lr, lr_scales)
        self.rho = check_number(rho, "Adadelta", "rho", 0.0, 1.0)
        self.eps = check_number(eps, "Adadelta", "eps", 0.0)
        self.weight_decay = check_number(weight_decay, "Adadelta", "weight_decay", 0.0)

    def _update(self, index, param, grad):
        rho = self.rho
        grad = self._gradient(param, grad)
        state = self._zeroed_state(index, param)
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg *= rho
        if type(grad) is RowSparseGrad:
            rows, g = grad.rows, grad.values
            old_acc = acc_delta[rows]  # Δθ uses E[Δθ²] from before this step's decay
            acc_delta *= rho
            new_square = square_avg[rows]
            new_square += g * (1.0 - rho) * g
            square_avg[rows] = new_square
            std = np.sqrt(new_square + self.eps)
            delta = np.sqrt(old_acc + self.eps)
            delta /= std
            delta *= g
            old_acc *= rho
            old_acc += delta * (1.0 - rho) * delta
            acc_delta[rows] = old_acc
            param.data[rows] += delta * -self._lr
            return
        work = self._work(0, param.data)
        np.multiply(grad, 1.0 - rho, out=work)
        work *= grad
        square_avg += work
        np.add(square_avg, self.eps, out=work)  # work = √(E[g²] + ε)
        np.sqrt(work, out=work)
        delta = self._work(2, param.data)
        np.add(acc_delta, self.eps, out=delta)
        np.sqrt(delta, out=delta)
        delta /= work
        delta *= grad
        acc_delta *= rho
        np.multiply(delta, 1.0 - rho, out=work)
        work *= delta
        acc_delta += work
        delta *= -self._lr
        param.data += delta


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "adadelta": Adadelta}
#: every name ``get_optimizer`` takes ('momentum' and 'nesterov' are SGD variants)
OPTIMIZER_NAMES = ("adam", "adamw", "sgd", "momentum", "nesterov", "adadelta")


def get_optimizer(name: str, params, lr: float, **options) -> Optimizer:
    """An optimiser by name: 'sgd', 'momentum' (SGD, μ = 0.9), 'nesterov', 'adam', 'adamw',
    'adadelta'."""
    key = str(name).lower()
    if key == "momentum":
        return SGD(params, lr=lr, momentum=options.pop("momentum", 0.9), **options)
    if key == "nesterov":
        return SGD(params, lr=lr, momentum=options.pop("momentum", 0.9), nesterov=True, **options)
    if key not in OPTIMIZERS:
        known = sorted([*OPTIMIZERS, "momentum", "nesterov"])
        raise ValueError(f"get_optimizer: unknown optimizer {name!r}, expected one of {known}")
    return OPTIMIZERS[key](params, lr=lr, **options)


def clip_grad_norm(params: Iterable[Tensor], max_norm: float) -> float:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``.

    ‖g‖ = √(Σ_p Σ_i g_{p,i}²); if ‖g‖ > max_norm every gradient is multiplied by
    max_norm / (‖g‖ + 1e-6) (PyTorch's ``clip_grad_norm_``). Returns ‖g‖ before
    clipping (inf or nan when a gradient is not finite; nothing is scaled then).
    A ``RowSparseGrad`` counts and is scaled like its dense equivalent.
    """
    max_norm = check_number(max_norm, "clip_grad_norm", "max_norm", 0.0, low_open=True)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    # A RowSparseGrad's rows are unique, so the squares of its values are all its squares.
    arrays = [g.values if type(g) is RowSparseGrad else g for g in grads]
    total = math.sqrt(sum(float(np.sum(np.square(a, dtype=np.float64))) for a in arrays))
    if not math.isfinite(total):
        return total
    coefficient = max_norm / (total + 1e-6)
    if coefficient < 1.0:
        for g in grads:
            g *= np.asarray(coefficient, dtype=g.dtype)
    return total
