"""cnnlab: convolutional neural networks from first principles."""

from cnnlab._memory import keep_freed_memory
from cnnlab.tensor import Tensor, enable_grad, is_grad_enabled, no_grad

# The malloc tuning of keep_freed_memory is opt-in: fit and `cnnlab train` switch it on.
__all__ = ["Tensor", "enable_grad", "is_grad_enabled", "keep_freed_memory", "manual_seed", "no_grad"]
__version__ = "0.1.0"


def __getattr__(name):
    # Lazy: cnnlab.nn loads the compiled loops (numba, ~0.2 s); ``import cnnlab`` stays light.
    if name == "manual_seed":
        from cnnlab.nn.seeding import manual_seed

        return manual_seed
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")
