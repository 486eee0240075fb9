"""``Module``: the base of every layer and model.

A module owns parameters (``Tensor`` with ``requires_grad=True``), buffers
(plain NumPy arrays such as batch-norm running statistics) and sub-modules,
all registered by attribute assignment as in PyTorch::

    class SentenceCNN(Module):
        def __init__(self, widths=(3, 4, 5)):
            super().__init__()
            self.widths = widths
            self.convs = ModuleList([Conv1D(8, w) for w in widths])
            self.out = Dense(2)

        def forward(self, x):
            pooled = [conv(x).max(axis=2) for conv in self.convs]
            return self.out(F.concat(pooled, axis=1))

The lifecycle is Keras's: ``__init__`` stores hyperparameters only; weights are
created from the first input shape, either by ``build(input_shape)`` (per-sample
shape, e.g. ``(1, 28, 28)``) or lazily on the first call.

A module is ``built`` once every parameter it will have exists, its own and
its sub-modules': a layer created with ``in_features=`` or ``in_channels=`` is
built at once, ``Sequential`` when all its layers are. Every random draw is
seeded (see ``Module`` for which seed applies).
"""

from __future__ import annotations

import contextlib
import zlib

import numpy as np

from cnnlab._checks import check_type
from cnnlab.nn.arguments import as_input_shape, init_arguments, non_default_arguments
from cnnlab.tensor import Tensor, as_tensor, no_grad

# Set by ``summary`` while it runs a forward pass: every module call appends (module, output).
_call_recorder: list | None = None


def recording_calls() -> bool:
    """Whether ``summary`` is recording every module call (``Sequential`` then fuses nothing)."""
    return _call_recorder is not None


@contextlib.contextmanager
def record_calls():
    """Record every module call as (module, output) in the yielded list; ``Sequential`` fuses
    nothing meanwhile, so each layer's own output is there (``summary``, ``cnnlab.explain``)."""
    global _call_recorder
    previous, _call_recorder = _call_recorder, []
    try:
        yield _call_recorder
    finally:
        _call_recorder = previous


@contextlib.contextmanager
def eval_mode(module: Module):
    """Temporarily put ``module`` in evaluation mode (no dropout, no running-stat updates)."""
    modes = [(m, m.training) for m in module.modules()]
    module.train(False)
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


class Module:
    """Base class of layers and models.

    Subclasses call ``super().__init__()`` first, store every ``__init__`` argument
    as an attribute of the same name (that is what the default ``get_config`` and
    ``__repr__`` read), and implement ``forward``. A subclass that creates its own
    parameters lazily (in ``forward``) overrides ``_weights_ready`` so ``built`` knows.
    ``build``, ``compute_output_shape`` and ``summary`` probe with inputs of the
    module's own ``dtype``.

    Seeds. The weights of a layer (and the stream of a dropout mask) come from the
    first of these that applies:

    1. the layer's own ``seed=``;
    2. built from an input shape (by ``build`` or the first call): a stream derived
       from the root module's ``seed`` (0 when None) and the layer's dotted name, so the
       layers of one model differ, and do not depend on the order they are built in;
    3. built at construction (``Dense(10, in_features=64)``), before a model can give it
       a seed: the next seed of a process-wide stream that ``cnnlab.manual_seed(s)``
       restarts, so a re-run script or notebook cell gets the same weights again.

    Attributes:
        training: True in training mode (dropout active, batch norm uses batch statistics).
        built: True once every parameter exists (recursively; read-only).
        dtype: floating dtype of the weights (float32 unless ``astype`` changed it).
        input_shape: per-sample input shape, set by ``build`` or the first call.
        class_names: optional list of class names, saved with the model.
        normalization: optional ``{"mean": ..., "std": ...}`` of the training inputs (set by
            ``fit``), saved with the model so that predictions can normalise raw images alike.
    """

    default_name: str | None = None

    #: multiplier of the optimiser's learning rate for this module's parameters and its
    #: sub-modules' (``parameter_lr_scales``); an instance may set its own
    lr_scale: float = 1.0

    #: attributes holding a NumPy ``Generator`` this module draws from (saved in checkpoints)
    generator_attributes: tuple[str, ...] = ()

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        self.training = True
        self.input_shape: tuple[int, ...] | None = None
        self.class_names: list[str] | None = None
        self.normalization: dict | None = None
        self._derived_seed: tuple[int, ...] | None = None
        self._dtype = np.dtype(np.float32)  # of the weights layers create (see ``astype``)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if name in buffers and isinstance(value, np.ndarray):
            buffers[name] = value
            return
        for registry in (params, buffers, modules):
            registry.pop(name, None)
        if isinstance(value, Module):
            self.__dict__.pop(name, None)
            modules[name] = value
        elif isinstance(value, Tensor) and value.requires_grad:
            self.__dict__.pop(name, None)
            params[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Only called when normal lookup fails: parameters, buffers and modules live in dicts.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, array: np.ndarray) -> None:
        """Register a non-trainable array (saved in ``state_dict``, not optimised)."""
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self.__dict__.pop(name, None)
        self._buffers[name] = np.asarray(array)

    def named_modules(self, prefix: str = ""):
        """(dotted name, module) for this module and every descendant, depth first."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_generators(self) -> list[tuple[str, np.random.Generator]]:
        """(dotted module name + "." + attribute, Generator) for every declared random stream.

        A stream a layer would create lazily on its first forward is created here,
        exactly as that forward would, so a checkpoint can save and restore it.
        """
        if self._derived_seed is None:
            self._prepare_seeds()
        found = []
        for prefix, module in self.named_modules():
            for attr in type(module).generator_attributes:
                generator = getattr(module, attr)
                if generator is None:
                    generator = module._rng()
                    setattr(module, attr, generator)
                found.append((f"{prefix}.{attr}" if prefix else attr, generator))
        return found

    def modules(self) -> list[Module]:
        return [m for _, m in self.named_modules()]

    def children(self) -> list[Module]:
        return list(self._modules.values())

    def named_parameters(self) -> list[tuple[str, Tensor]]:
        """(dotted name, parameter) pairs; a parameter shared by two modules appears once."""
        seen: set[int] = set()
        out = []
        for prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append((f"{prefix}.{name}" if prefix else name, p))
        return out

    def parameters(self) -> list[Tensor]:
        return [p for _, p in self.named_parameters()]

    def parameter_lr_scales(self) -> list[float]:
        """The learning-rate multiplier of each of ``parameters()``, in order: the product of
        the ``lr_scale`` of the modules on the parameter's path (1 unless a module sets its
        ``lr_scale``, as ``SpatialTransformer`` does for its localisation net). ``fit`` gives
        them to the optimiser (``cnnlab.optim.Optimizer``'s ``lr_scales``)."""
        scales: dict[str, float] = {}
        for prefix, module in self.named_modules():
            parent = prefix.rpartition(".")[0]
            scales[prefix] = (scales.get(parent, 1.0) if prefix else 1.0) * module.lr_scale
        return [scales[name.rpartition(".")[0]] for name, _ in self.named_parameters()]

    def named_buffers(self) -> list[tuple[str, np.ndarray]]:
        out = []
        for prefix, module in self.named_modules():
            for name, b in module._buffers.items():
                out.append((f"{prefix}.{name}" if prefix else name, b))
        return out

    def num_parameters(self) -> int:
        """Number of trainable scalars (buffers such as running statistics not included)."""
        return int(sum(p.size for p in self.parameters()))

    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    @property
    def built(self) -> bool:
        """True once every parameter exists, this module's own and (recursively) its children's."""
        return all(m._weights_ready() for m in self.modules())

    def _weights_ready(self) -> bool:
        """Whether this module's own weights (not its sub-modules') exist; layers override it."""
        return True

    def _unbuilt_layers(self) -> list[str]:
        modules = self.named_modules()
        return [name or type(m).__name__ for name, m in modules if not m._weights_ready()]

    @property
    def dtype(self) -> np.dtype:
        """Floating dtype of the weights: of the first parameter, else the one weights will get."""
        for p in self.parameters():
            if p.data.dtype.kind == "f":
                return p.data.dtype
        return self._dtype

    def astype(self, dtype) -> Module:
        """Convert every parameter and floating buffer to ``dtype`` in place (e.g. float64 for checks).

        Weights created later (layers not built yet) are created in ``dtype`` too.
        """
        for m in self.modules():
            m._dtype = np.dtype(dtype)
            for p in m._parameters.values():
                p.data = p.data.astype(dtype)
                p.grad = None
            for name, b in m._buffers.items():
                if b.dtype.kind == "f":
                    m._buffers[name] = b.astype(dtype)
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, by dotted name."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update((name, np.array(b, copy=True)) for name, b in self.named_buffers())
        return state

    def load_state_dict(self, state: dict[str, np.ndarray], strict: bool = True) -> None:
        """Copy arrays from ``state`` into this module's parameters and buffers, in place.

        Raises ValueError naming the parameter when a shape differs or the values are
        not real numbers (complex, objects), and (when ``strict``) when names are
        missing from ``state`` or unexpected in it.
        """
        if not self.built:
            raise ValueError(
                f"load_state_dict: {type(self).__name__} is not built (layers "
                f"{self._unbuilt_layers()} have no weights yet); call build(input_shape) first"
            )
        targets: dict[str, tuple[Module, str, bool]] = {}
        for prefix, module in self.named_modules():
            for name in module._parameters:
                targets.setdefault(f"{prefix}.{name}" if prefix else name, (module, name, True))
            for name in module._buffers:
                targets[f"{prefix}.{name}" if prefix else name] = (module, name, False)
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        problems = []
        for key, (module, name, is_param) in targets.items():
            if key not in state:
                continue
            value = np.asarray(state[key])
            current = module._parameters[name].data if is_param else module._buffers[name]
            if value.dtype.kind not in "biuf":  # a copy would drop complex parts, garble objects
                problems.append(f"parameter '{key}' holds {value.dtype}, not real numbers")
            elif value.shape != current.shape:
                problems.append(
                    f"parameter '{key}' has shape {current.shape} in the model but {value.shape} in the state"
                )
        if strict and (missing or unexpected):
            problems.insert(0, f"names do not match: missing {missing}, unexpected {unexpected}")
        if problems:
            raise ValueError(f"load_state_dict ({type(self).__name__}): " + "; ".join(problems))
        for key, (module, name, is_param) in targets.items():
            if key in state:
                current = module._parameters[name].data if is_param else module._buffers[name]
                current[...] = np.asarray(state[key])

    def _prepare_seeds(self) -> None:
        """Give each sub-module without a stream one derived from this module's seed and its name."""
        root = getattr(self, "seed", None)
        root = 0 if root is None else int(root)
        for name, module in self.named_modules():
            if module._derived_seed is None:
                module._derived_seed = (root, zlib.crc32(name.encode()))

    def _rng(self) -> np.random.Generator:
        """This module's random generator: its own ``seed`` if set, else the derived stream."""
        seed = getattr(self, "seed", None)
        if seed is not None:
            return np.random.default_rng(int(seed))
        if self._derived_seed is None:
            self._prepare_seeds()
        return np.random.default_rng(list(self._derived_seed))

    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def __call__(self, *inputs, **kwargs):
        inputs = tuple(as_tensor(x) if isinstance(x, np.ndarray) else x for x in inputs)
        if self._derived_seed is None:
            self._prepare_seeds()
        first = inputs[0] if inputs else None
        if isinstance(first, Tensor) and (self.input_shape is None or not self.built):
            self._build_on_call(first.shape[1:])
        out = self.forward(*inputs, **kwargs)
        if _call_recorder is not None:
            _call_recorder.append((self, out))
        return out

    def _build_on_call(self, input_shape) -> None:
        # Composite modules: children build themselves when they are first called.
        if self.input_shape is None:
            self.input_shape = tuple(int(n) for n in input_shape)

    def _probe(self, input_shape: tuple[int, ...]) -> Tensor:
        """Forward one zero sample of the module's dtype, in evaluation mode, without a graph."""
        self._prepare_seeds()
        with no_grad(), eval_mode(self):
            return self.forward(Tensor(np.zeros((1, *input_shape), dtype=self.dtype)))

    def build(self, input_shape) -> Module:
        """Create every weight for per-sample inputs of ``input_shape`` (e.g. ``(1, 28, 28)``).

        The default runs one forward pass on a zero sample of the module's dtype in
        evaluation mode without recording a graph; layers and ``Sequential`` override
        it with pure shape logic. Returns ``self``.
        """
        input_shape = as_input_shape(input_shape, f"{type(self).__name__}.build")
        self._probe(input_shape)
        self.input_shape = input_shape
        return self

    def compute_output_shape(self, input_shape) -> tuple[int, ...]:
        """Per-sample output shape for per-sample ``input_shape``; builds the module if needed."""
        input_shape = as_input_shape(input_shape, f"{type(self).__name__}.compute_output_shape")
        return tuple(self._probe(input_shape).shape[1:])

    def count_parameters(self, input_shape=None) -> tuple[int, int]:
        """(trainable, non-trainable) scalars; non-trainable counts float buffers, as Keras does."""
        if input_shape is not None and not self.built:
            self.build(input_shape)
        trainable = sum(p.size for p in self.parameters())
        frozen = sum(b.size for _, b in self.named_buffers() if b.dtype.kind == "f")
        return int(trainable), int(frozen)

    def get_config(self) -> dict:
        """``{"class_name": ..., "config": {init argument: value}}``, JSON-ready.

        The default reads each ``__init__`` argument from the attribute of the
        same name; ``cnnlab.nn.from_config`` rebuilds the module from it.
        """
        return {"class_name": type(self).__name__, "config": init_arguments(self)}

    @classmethod
    def from_config(cls, config: dict) -> Module:
        """Rebuild from the ``"config"`` part of ``get_config()``."""
        check_type(config, dict, f"{cls.__name__}.from_config", "config", "a dict")
        return cls(**config)

    def _non_default_arguments(self) -> list[str]:
        return non_default_arguments(self)

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({', '.join(self._non_default_arguments())}"
        if not self._modules:
            return head + ")"
        lines = [head]
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        return "\n".join(lines) + "\n)"

    def summary(self, input_shape=None) -> str:
        """A Keras-like table: Layer (type) | Output Shape | Param #, with totals."""
        # Lazy: nn.summary imports Sequential, which is built on this module.
        from cnnlab.nn.summary import summary

        return summary(self, input_shape)

    # Training sits above nn (it imports optim, data and checkpoint, which import nn), so these
    # three import it lazily, when called; cnnlab.training is the public home of the functions.
    def fit(self, train_data, epochs: int = 10, batch_size: int = 64, validation=None,
            optimizer="adam", lr: float = 1e-3, loss="cross_entropy", callbacks=(), augment=None,
            seed: int = 0, verbose: int = 1, *, clip_norm: float | None = None, resume=None,
            weight_decay: float | None = None, momentum: float | None = None,
            validation_split: float = 0.0, patience: int | None = None,
            divergence_threshold: float | None = 1e3, keep_freed_memory: bool | None = None,
            parallel=None):
        """Train this model; ``cnnlab.training.fit(model, ...)`` documents every argument.

        Args (in short):
            train_data: an ArrayDataset, a DataLoader or (x, y) arrays (uint8 x: raw pixels).
            epochs, batch_size, lr, seed: as usual; validation: data scored after each epoch.
            optimizer: 'adam', 'adamw', 'sgd', 'momentum', 'nesterov' or an Optimizer;
                weight_decay, momentum: its options.
            loss: 'cross_entropy', 'mse', 'l1' or fn(output, y) -> Tensor.
            callbacks: Callback instances, in order; patience: add early stopping.
            augment: an Augmentation for training batches; verbose: 0, 1 (bar) or 2 (lines).
            clip_norm: clip the gradient norm; resume: a checkpoint to continue from.
            validation_split: hold out this fraction of train_data (when no validation).
            divergence_threshold: stop when the loss exceeds this times the first epoch's.
            keep_freed_memory: tune malloc for speed (None: on unless CNNLAB_KEEP_FREED_MEMORY=0).
            parallel: a data-parallel group (``cnnlab.distributed.world()`` under mpirun).

        Returns:
            a ``History`` of per-epoch metrics, with ``stop_reason``, ``interrupted`` and
            ``diverged`` saying whether and why training stopped early.
        """
        from cnnlab import training  # lazy: training sits above nn and imports it

        return training.fit(
            self, train_data, epochs, batch_size, validation, optimizer, lr, loss, callbacks,
            augment, seed, verbose, clip_norm=clip_norm, resume=resume, weight_decay=weight_decay,
            momentum=momentum, validation_split=validation_split, patience=patience,
            divergence_threshold=divergence_threshold, keep_freed_memory=keep_freed_memory,
            parallel=parallel,
        )

    def evaluate(self, data, batch_size: int = 256, loss="cross_entropy") -> dict:
        """Mean loss and accuracy on ``data``: ``cnnlab.training.evaluate(model, ...)``.

        ``data``: an ArrayDataset, a DataLoader (read in order, unchanged) or (x, y) arrays,
        uint8 x being raw pixels normalised with ``self.normalization``, float x model-ready.
        Returns ``{'loss': float, 'accuracy': float}``.
        """
        from cnnlab import training  # lazy: training sits above nn and imports it

        return training.evaluate(self, data, batch_size, loss)

    def predict(self, x, batch_size: int = 256):
        """Class probabilities (N, K) in the data's order: ``cnnlab.training.predict(model, ...)``.

        ``x``: uint8 images (raw pixels, normalised with ``self.normalization`` as
        ``cnnlab predict`` does), float images (already normalised), an ArrayDataset or a
        DataLoader (read in order, never shuffled). No second softmax after a Softmax layer.
        """
        from cnnlab import training  # lazy: training sits above nn and imports it

        return training.predict(self, x, batch_size)
