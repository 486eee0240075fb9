"""cnnlab: convolutional neural networks from first principles."""

from cnnlab.tensor import Tensor, enable_grad, is_grad_enabled, no_grad

__all__ = ["Tensor", "enable_grad", "is_grad_enabled", "no_grad"]
__version__ = "0.1.0"
