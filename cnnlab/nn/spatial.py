"""The spatial transformer layer (Jaderberg, Simonyan, Zisserman and Kavukcuoglu, NIPS 2015).

A localisation net looks at the input and predicts the parameters of a transform; the
transform's sampling grid (``F.affine_grid``) tells a bilinear sampler (``F.grid_sample``)
where to read the input, so the layer outputs a warped (straightened, zoomed, centred)
input, and the whole is trained end to end by the classifier's loss.
"""

from __future__ import annotations

import numpy as np

from cnnlab import functional as F
from cnnlab._checks import check_choice, check_number, check_type
from cnnlab.nn.arguments import as_input_shape
from cnnlab.nn.config import from_config, register
from cnnlab.nn.module import Module, eval_mode
from cnnlab.ops.sampling import TRANSFORMS, identity_parameters
from cnnlab.tensor import Tensor, no_grad

__all__ = ["SpatialTransformer"]


@register
class SpatialTransformer(Module):
    """Warp the input by a transform that a localisation net predicts from it.

        p = localization(x)                       (N, K)
        θ = transform_theta(p)                    (N, 2, 3), output → input coordinates
        y = grid_sample(x, affine_grid(θ, (N, C, H_out, W_out)))   bilinear, zero padding,
                                                                   align_corners=False

    The localisation net's last layer with a weight and a bias (its final ``Dense``) is
    initialised to output the identity transform (zero weight, bias = the identity's
    parameters: [1, 0, 0, 0, 1, 0] for "affine"), so the layer starts as a no-op; without it
    training is known not to converge.

    Args:
        localization: any module mapping x to (N, K) with K = 6 ("affine"), 4 ("rst") or
            2 ("translation").
        output_size: (H_out, W_out) of the warped output; None: the input's.
        transform: "affine" (θ is the 6 outputs), "rst" (scale s, angle α in radians,
            t_x, t_y: θ = [[s cos α, −s sin α, t_x], [s sin α, s cos α, t_y]]) or
            "translation" (t_x, t_y). Translations are in normalised units (2 = the width).
        localization_lr_scale: the localisation net's learning rate as a multiple of the
            optimiser's (e.g. 0.1); a lower rate is the known remedy for transforms that
            collapse to a blank or zoomed-in image. None: the same rate. Read by
            ``parameter_lr_scales``, which ``fit`` passes to the optimiser.

    Attributes:
        last_theta: θ (N, 2, 3) of the last forward pass (an ndarray), for figures.

    Shape:
        input (N, C, H, W), output (N, C, H_out, W_out).
    """

    def __init__(self, localization, output_size=None, transform="affine",
                 localization_lr_scale=None):
        super().__init__()
        check_type(localization, Module, "SpatialTransformer", "localization", "a Module")
        self.localization = localization
        if output_size is not None:
            check_type(output_size, (tuple, list), "SpatialTransformer", "output_size",
                       "None or a pair (H_out, W_out)")
            if len(output_size) != 2:
                raise ValueError(f"SpatialTransformer: output_size must be a pair (H_out, W_out),"
                                 f" received output_size={output_size!r}")
            output_size = tuple(as_input_shape(output_size, "SpatialTransformer.output_size"))
        self.output_size = output_size
        self.transform = check_choice(transform, tuple(TRANSFORMS), "SpatialTransformer",
                                      "transform")
        if localization_lr_scale is not None:
            localization_lr_scale = check_number(localization_lr_scale, "SpatialTransformer",
                                                 "localization_lr_scale", 0.0)
            localization.lr_scale = localization_lr_scale
        self.localization_lr_scale = localization_lr_scale
        self.last_theta: np.ndarray | None = None
        self._identity_set = False

    def _output_hw(self, input_shape):
        return tuple(self.output_size) if self.output_size else tuple(input_shape[-2:])

    def compute_output_shape(self, input_shape) -> tuple[int, ...]:
        shape = as_input_shape(input_shape, "SpatialTransformer.compute_output_shape")
        if len(shape) != 3:
            raise ValueError(f"SpatialTransformer: expected per-sample input (C, H, W), "
                             f"received {shape}")
        return (shape[0], *self._output_hw(shape))

    def build(self, input_shape) -> SpatialTransformer:
        shape = as_input_shape(input_shape, "SpatialTransformer.build")
        self.compute_output_shape(shape)
        self._prepare_seeds()
        self.localization.build(shape)
        self.input_shape = shape
        self._init_identity()
        return self

    def _build_on_call(self, input_shape) -> None:
        # the first call builds (and sets the identity); later ones find input_shape set
        if self.input_shape is None or not self.built:
            self.build(input_shape)

    def _init_identity(self) -> None:
        """Zero the weight and set the bias of the localisation net's last (weight, bias) layer
        to the identity transform's parameters, once."""
        if self._identity_set:
            return
        last = None
        for module in self.localization.modules():
            params = module._parameters
            if "weight" in params and "bias" in params:
                last = module
        count = TRANSFORMS[self.transform]
        if last is None or last.bias.shape != (count,):
            found = "none" if last is None else f"bias of shape {last.bias.shape}"
            raise ValueError(
                f"SpatialTransformer: transform {self.transform!r} needs a localisation net "
                f"ending in a layer with a weight and a bias of {count} outputs; its last such "
                f"layer has {found}")
        last.weight.data[...] = 0
        last.bias.data[...] = identity_parameters(self.transform).astype(last.bias.dtype)
        self._identity_set = True

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"SpatialTransformer: expected input (N, C, H, W), received shape "
                             f"{x.shape}")
        params = self.localization(x)
        count = TRANSFORMS[self.transform]
        if params.ndim != 2 or params.shape[1] != count:
            raise ValueError(f"SpatialTransformer: transform {self.transform!r} needs (N, "
                             f"{count}) parameters from the localisation net, it gave shape "
                             f"{params.shape}")
        theta = F.transform_theta(params, self.transform)
        self.last_theta = theta.data.copy()
        size = (x.shape[0], x.shape[1], *self._output_hw(x.shape))
        grid = F.affine_grid(theta, size)
        return F.grid_sample(x, grid)

    def warp(self, x) -> tuple[np.ndarray, np.ndarray]:
        """(θ (N, 2, 3), warped input (N, C, H_out, W_out)) for images x, in evaluation mode
        without a graph: what the layer makes of them (for figures)."""
        x = x.data if isinstance(x, Tensor) else np.asarray(x, dtype=self.dtype)
        with no_grad(), eval_mode(self):
            warped = self(x)
        return self.last_theta, warped.data

    def get_config(self) -> dict:
        return {
            "class_name": type(self).__name__,
            "config": {
                "localization": self.localization.get_config(),
                "output_size": None if self.output_size is None else list(self.output_size),
                "transform": self.transform,
                "localization_lr_scale": self.localization_lr_scale,
            },
        }

    @classmethod
    def from_config(cls, config: dict) -> SpatialTransformer:
        owner = "SpatialTransformer.from_config"
        check_type(config, dict, owner, "config", "a dict")
        unknown = sorted(set(config) - {"localization", "output_size", "transform",
                                        "localization_lr_scale"})
        if unknown:
            raise ValueError(f"{owner}: unknown arguments {unknown}")
        if "localization" not in config:
            raise ValueError(f"{owner}: the config has no 'localization'")
        arguments = {k: v for k, v in config.items() if k != "localization"}
        return cls(from_config(config["localization"]), **arguments)
