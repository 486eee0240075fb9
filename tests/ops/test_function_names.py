"""The autograd Functions in ``cnnlab.ops`` are named apart from the layers in ``cnnlab.nn``."""

import importlib
import inspect
import pkgutil

import cnnlab.nn
import cnnlab.ops
from cnnlab.tensor import Function


def _classes(package, base):
    found = {}
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, base)
                and value.__module__ == info.name
            ):
                found[name] = value
    return found


def test_autograd_functions_do_not_share_names_with_layers():
    # ops had Conv2d beside the layer Conv2D, and ReLU, BatchNorm and six more in both
    functions = _classes(cnnlab.ops, Function)
    layers = _classes(cnnlab.nn, object)
    assert "Conv2dFunction" in functions and "ReLUFunction" in functions
    clashes = {name for name in functions if name.lower() in {layer.lower() for layer in layers}}
    assert not clashes
    assert all(name.endswith("Function") for name in functions)
