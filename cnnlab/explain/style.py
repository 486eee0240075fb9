"""Neural style transfer (Gatys, Ecker & Bethge, CVPR 2016): the content of one image painted
with the textures of another, by optimising the pixels of a third.

With feature maps F^l (C_l filters × M_l = H_l·W_l positions) of a fixed network:

- content loss on one layer:  L_c = (1 / (C M)) Σ (F^l(x) − F^l(c))²  (Gatys' ½Σ, divided by
  the layer's size so its weight doesn't depend on the layer chosen);
- style loss on the Gram matrices of several layers, each normalised by its layer's size:
  G^l = F^l F^lᵀ / (C_l M_l),  L_s = Σ_l w_l Σ_ij (G^l_ij(x) − G^l_ij(s))², w_l = 1 / #layers.
  Each term is 4·E_l of Gatys' E_l = 1/(4 N_l² M_l²) Σ (F Fᵀ(x) − F Fᵀ(s))², which with these
  weights and N_l = C_l is the same loss up to the factor 4;
- total variation: L_tv = mean of the squared differences of neighbouring pixels;
- total = content_weight·L_c + style_weight·L_s + tv_weight·L_tv, minimised over x ∈ [0, 1]
  with L-BFGS-B (SciPy, bounds [0, 1], the engine's gradient) or Adam.

The style image may have a different size from the content: Gram matrices are C×C.
"""

from __future__ import annotations

import dataclasses

import numpy as np

import cnnlab.functional as F
from cnnlab._checks import check_choice, check_int
from cnnlab.data.images import resize_image
from cnnlab.explain.extractor import (
    content_layer_name,
    random_extractor,
    style_layer_names,
)
from cnnlab.explain.probe import (
    ExplainError,
    as_images,
    check_large_enough,
    find_layer,
    inspecting,
    normalize,
)
from cnnlab.nn import Sequential
from cnnlab.nn.module import Module, record_calls
from cnnlab.tensor import Tensor

__all__ = ["StyleResult", "gram", "layer_outputs", "style_loss", "style_transfer"]


@dataclasses.dataclass
class StyleResult:
    """What ``style_transfer`` returns.

    image: (C, H, W) in [0, 1]; losses: total loss after each step (the first entry is the
    start); terms: the same for "content", "style" and "tv" (unweighted); content_layer,
    style_layers: the layers used; stopped: why the optimiser stopped (L-BFGS-B may stop
    before ``steps`` when its line search makes no more progress).
    """

    image: np.ndarray
    losses: np.ndarray
    terms: dict
    content_layer: str
    style_layers: list
    stopped: str = ""


def gram(features: Tensor) -> Tensor:
    """G = F Fᵀ / (C·H·W) for feature maps (N, C, H, W): (N, C, C)."""
    n, c, h, w = features.shape
    flat = F.reshape(features, (n, c, h * w))
    return F.matmul(flat, F.transpose(flat, (0, 2, 1))) * (1.0 / (c * h * w))


def style_loss(grams, targets) -> Tensor:
    """Σ_l (1/L) Σ_ij (G_l − A_l)² summed over the batch: (scalar) for lists of Gram Tensors
    ``grams`` (N, C_l, C_l) and target arrays ``targets`` (C_l, C_l)."""
    total = None
    for g, a in zip(grams, targets):
        diff = g - np.asarray(a, dtype=g.dtype)
        term = (diff * diff).sum() * (1.0 / len(grams))
        total = term if total is None else total + term
    return total


def tv_loss(x: Tensor) -> Tensor:
    """Mean squared difference of vertical and of horizontal neighbours (scalar)."""
    down = x[:, :, 1:, :] - x[:, :, :-1, :]
    right = x[:, :, :, 1:] - x[:, :, :, :-1]
    return (down * down).mean() + (right * right).mean()


def layer_outputs(model: Module, x: Tensor, names) -> dict:
    """{name: output Tensor} of several layers in one forward pass of images ``x`` in [0, 1]
    (the model's normalisation applied; a ``Sequential`` runs only up to the last one)."""
    wanted = set(names)
    for name in wanted:
        find_layer(model, name)
    x = normalize(model, x)
    if isinstance(model, Sequential) and wanted <= set(model._order):
        outputs = {}
        for name, layer in model.named_layers():
            x = layer(x)
            if name in wanted:
                outputs[name] = x
                if len(outputs) == len(wanted):
                    break
        return outputs
    targets = {id(find_layer(model, n)): n for n in wanted}
    with record_calls() as calls:
        model(x)
    return {targets[id(m)]: out for m, out in calls if id(m) in targets}


def _resized(image: np.ndarray, size: int | None) -> np.ndarray:
    """(C, H, W) with its longer side ``size`` (None: unchanged)."""
    if size is None:
        return image
    h, w = image.shape[1:]
    scale = size / max(h, w)
    return resize_image(image, (max(1, round(h * scale)), max(1, round(w * scale))))


def style_transfer(content, style, features: Module | None = None, content_layer=None,
                   style_layers=None, content_weight: float = 1.0, style_weight: float = 3.0,
                   tv_weight: float = 1.0, steps: int = 200, optimizer: str = "lbfgs",
                   init: str = "content", size: int | None = None, seed: int = 0,
                   lr: float = 0.02, progress=None) -> StyleResult:
    """Paint ``content`` (C, H, W) in [0, 1] in the style of ``style`` (C, H', W').

    Args:
        features: the fixed network (default: ``random_extractor`` for the images' channels).
        content_layer, style_layers: layer names (defaults: ``style_layer_names`` of
            ``features`` that both pictures are large enough for, and ``content_layer_name``,
            else the deepest of those style layers).
        content_weight, style_weight, tv_weight: the weights of the three losses (see the
            module docstring for each loss's normalisation). The default style weight suits
            the random extractor (docs/explain/art.md); a trained network's features have
            other magnitudes, so its weight needs choosing anew.
        steps: L-BFGS iterations, or Adam steps.
        optimizer: "lbfgs" (SciPy L-BFGS-B with bounds [0, 1]) or "adam" (``lr`` per step,
            pixels clipped to [0, 1]).
        init: "content" (start from the content image) or "noise" (uniform, from ``seed``).
        size: the longer side of the result, in pixels (the style image is scaled to the
            same longer side); None keeps the content's size.
        progress: called with 1 after every step (a tqdm bar's ``update``), or None.
    """
    steps = check_int(steps, "style_transfer", "steps", minimum=1)
    optimizer = check_choice(optimizer, ["lbfgs", "adam"], "style_transfer", "optimizer")
    init = check_choice(init, ["content", "noise"], "style_transfer", "init")
    for name, value in (("content_weight", content_weight), ("style_weight", style_weight),
                        ("tv_weight", tv_weight), ("lr", lr)):
        if not np.isfinite(value) or value < 0:
            raise ExplainError(f"style_transfer: {name} must be finite and >= 0, received {value}")
    if size is not None:
        size = check_int(size, "style_transfer", "size", minimum=1)
    content_arr, style_arr = (np.asarray(a) for a in (content, style))
    if features is None:
        features = random_extractor(channels=content_arr.shape[0] if content_arr.ndim == 3 else 3)
    for name in [content_layer] if content_layer is not None else []:
        find_layer(features, name)
    if style_layers is not None and not list(style_layers):
        raise ExplainError("style_transfer: style_layers is empty; name at least one layer")
    first = features._order[0] if isinstance(features, Sequential) and features._order else None
    content_arr = as_images(features, _checked(content_arr, "content"), "style_transfer: content",
                            size_free=True, layer=first)[0]
    style_arr = as_images(features, _checked(style_arr, "style"), "style_transfer: style",
                          size_free=True, layer=first)[0]
    content_arr, style_arr = _resized(content_arr, size), _resized(style_arr, size)
    # default layers: those the pictures are large enough for (an 8 px picture has no 1 px maps)
    if style_layers is None:
        defaults = style_layer_names(features)
        style_layers = [n for n in defaults if _fits(features, n, content_arr, style_arr)]
        style_layers = style_layers or defaults[:1]  # too small for all: as_images says so
    style_layers = list(style_layers)
    if content_layer is None:
        content_layer = content_layer_name(features)
        if not _fits(features, content_layer, content_arr):
            content_layer = style_layers[-1]
    deepest = _deepest(features, [content_layer, *style_layers])
    content_arr = as_images(features, content_arr, "style_transfer: content", size_free=True,
                            layer=deepest)
    style_arr = as_images(features, style_arr, "style_transfer: style", size_free=True,
                          layer=deepest)
    dtype = features.dtype

    with inspecting(features):
        target_content = layer_outputs(features, Tensor(content_arr), [content_layer])
        target_content = target_content[content_layer].data.copy()
        outs = layer_outputs(features, Tensor(style_arr), style_layers)
        target_grams = [gram(outs[n]).data[0].copy() for n in style_layers]

    def evaluate(pixels: np.ndarray):
        """(total, {term: value}, gradient) at ``pixels`` (1, C, H, W)."""
        with inspecting(features):
            x = Tensor(np.ascontiguousarray(pixels, dtype=dtype), requires_grad=True)
            outs = layer_outputs(features, x, [content_layer, *style_layers])
            diff = outs[content_layer] - target_content
            l_content = (diff * diff).mean()
            l_style = style_loss([gram(outs[n]) for n in style_layers], target_grams)
            l_tv = tv_loss(x)
            total = l_content * content_weight + l_style * style_weight + l_tv * tv_weight
            total.backward()
        terms = {"content": float(l_content.data), "style": float(l_style.data),
                 "tv": float(l_tv.data)}
        return float(total.data), terms, x.grad

    if init == "content":
        start = content_arr.copy()
    else:
        start = np.random.default_rng(seed).random(content_arr.shape).astype(dtype)
    history = {"total": [], "content": [], "style": [], "tv": []}

    def record(total, terms):
        history["total"].append(total)
        for key, value in terms.items():
            history[key].append(value)

    total, terms, _ = evaluate(start)
    record(total, terms)
    if optimizer == "lbfgs":
        image, stopped = _lbfgs(evaluate, start, steps, record, progress)
    else:
        image, stopped = _adam(evaluate, start, steps, lr, record, progress), "steps done"
    return StyleResult(
        image=np.clip(image[0], 0.0, 1.0).astype(dtype),
        losses=np.array(history["total"]),
        terms={k: np.array(history[k]) for k in ("content", "style", "tv")},
        content_layer=content_layer, style_layers=style_layers, stopped=stopped,
    )


def _checked(image: np.ndarray, what: str) -> np.ndarray:
    if image.ndim != 3:
        raise ExplainError(
            f"style_transfer: the {what} image must be (C, H, W), received shape {image.shape}"
        )
    return image


def _fits(model: Module, layer: str, *images) -> bool:
    """Whether every (C, H, W) image is large enough for the layers up to ``layer``."""
    try:
        for image in images:
            check_large_enough(model, image.shape, "", layer)
    except ExplainError:
        return False
    return True


def _deepest(model: Module, names) -> str | None:
    """The name among ``names`` that comes last in a ``Sequential`` (for the size check)."""
    for name in names:
        find_layer(model, name)
    if isinstance(model, Sequential) and set(names) <= set(model._order):
        return max(names, key=model._order.index)
    return None


def _lbfgs(evaluate, start, steps, record, progress):
    from scipy.optimize import minimize  # lazy: scipy

    shape = start.shape
    last = {}

    def fun(flat):
        total, terms, grad = evaluate(flat.reshape(shape))
        last.update(x=flat.copy(), total=total, terms=terms)
        return total, grad.astype(np.float64).ravel()

    def callback(intermediate_result):
        # the accepted point is almost always the last one evaluated: no extra pass then
        if not np.array_equal(last.get("x"), intermediate_result.x):
            fun(intermediate_result.x)
        record(last["total"], last["terms"])
        if progress is not None:
            progress(1)

    result = minimize(fun, start.astype(np.float64).ravel(), jac=True, method="L-BFGS-B",
                      bounds=[(0.0, 1.0)] * start.size, callback=callback,
                      # gtol 0: the losses are means, so a pixel's gradient is tiny and
                      # SciPy's default 1e-5 stopped a 256 px transfer after 26 of 100 steps
                      options={"maxiter": steps, "maxfun": steps * 2 + 20, "gtol": 0.0})
    return result.x.reshape(shape), str(result.message)


def _adam(evaluate, start, steps, lr, record, progress, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam on the pixels, clipped to [0, 1]; the loss at each new point is recorded when its
    gradient is computed (one pass per step), the last one by one more pass."""
    x = start.astype(np.float64)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    for t in range(1, steps + 2):
        total, terms, grad = evaluate(x)
        if t > 1:
            record(total, terms)
            if progress is not None:
                progress(1)
        if t == steps + 1:
            break
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad * grad
        x = np.clip(x - lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps), 0, 1)
    return x
