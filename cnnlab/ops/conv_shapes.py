"""Shapes and arguments of a convolution or pooling: the one output-size helper, 'same'
padding, int-or-pair normalisation and the input checks shared by conv2d and conv1d."""

from __future__ import annotations

from cnnlab._checks import check_choice, check_int


def output_size(n: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Length of a convolution/pooling output along one axis.

    out = floor((n + 2p − d(k − 1) − 1) / s) + 1

    ``padding`` may also be a pair (before, after) for asymmetric padding, in
    which case 2p is replaced by before + after. Raises ValueError when the
    (dilated) kernel does not fit in the padded input, i.e. the result is < 1.
    """
    total_padding = sum(padding) if isinstance(padding, (tuple, list)) else 2 * padding
    out = (n + total_padding - dilation * (kernel - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(
            f"output_size: a kernel of size {kernel} (dilation {dilation}, extent "
            f"{dilation * (kernel - 1) + 1}) does not fit in an input of size {n} with padding "
            f"{padding}; expected n + padding >= dilation·(kernel − 1) + 1"
        )
    return out


def pair(value, name: str, op: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum, as a pair."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                f"{op}: {name} must be an int or a pair of ints, received {name}={value!r}"
            )
        return tuple(
            check_int(v, op, f"{name}[{i}]", minimum=minimum) for i, v in enumerate(value)
        )
    value = check_int(value, op, name, minimum=minimum)
    return value, value


def same_padding(n: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's 'same': out = ceil(n / s); the extra pixel of an odd total goes after."""
    out = -(-n // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def resolve_padding(padding, size, kernel, stride, dilation, op):
    """Padding as ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        if check_choice(padding, ("valid", "same"), op, "padding") == "valid":
            return (0, 0), (0, 0)
        return tuple(same_padding(size[i], kernel[i], stride[i], dilation[i]) for i in range(2))
    ph, pw = pair(padding, "padding", op, minimum=0)
    return (ph, ph), (pw, pw)


def output_shape(x_shape, w_shape, stride, pads, dilation) -> tuple[int, int]:
    """(OH, OW) of x (N, C, H, W) and w (C_out, C_in/G, K_h, K_w) with resolved pads."""
    return tuple(
        output_size(x_shape[2 + a], w_shape[2 + a], stride[a], pads[a], dilation[a])
        for a in range(2)
    )


def check_inputs(op, x, w, b, groups, x_rank, layout):
    """Ranks, channel counts, groups, bias shape and one float dtype; ``layout`` names x and w."""
    if x.ndim != x_rank:
        raise ValueError(
            f"{op}: expected input x of shape {layout[0]} ({x_rank}-D), received shape {x.shape}"
        )
    if w.ndim != x_rank:
        raise ValueError(
            f"{op}: expected weights w of shape {layout[1]} ({x_rank}-D), received shape {w.shape}"
        )
    groups = check_int(groups, op, "groups", minimum=1)
    c_in, c_out = x.shape[1], w.shape[0]
    if c_in % groups:
        raise ValueError(f"{op}: input channels C_in={c_in} are not divisible by groups={groups}")
    if c_out % groups:
        raise ValueError(
            f"{op}: output channels C_out={c_out} (w.shape[0]) are not divisible by "
            f"groups={groups}"
        )
    if w.shape[1] != c_in // groups:
        raise ValueError(
            f"{op}: weights w of shape {w.shape} have {w.shape[1]} input channels, expected "
            f"C_in/groups = {c_in}/{groups} = {c_in // groups} for input x of shape {x.shape}"
        )
    if b is not None and b.shape != (c_out,):
        raise ValueError(
            f"{op}: bias b must have shape (C_out,) = ({c_out},), received shape {b.shape}"
        )
    for name, t in (("x", x), ("w", w), ("b", b)):
        if t is not None and t.dtype.kind != "f":
            raise ValueError(f"{op}: {name} must be a floating-point tensor, received dtype {t.dtype}")
    dtypes = {t.dtype for t in (x, w, b) if t is not None}
    if len(dtypes) > 1:
        received = ", ".join(str(t.dtype) for t in (x, w, b) if t is not None)
        raise ValueError(f"{op}: x, w and b must share one dtype, received {received}")


def single(value, name, op, minimum):
    """An int >= minimum, or a one-element tuple/list of one."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    return check_int(value, op, name, minimum=minimum)
