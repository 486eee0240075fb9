"""Convolution (the lecture's cross-correlation) in 1-D and 2-D, with its backward pass.

Notation (NCHW): input x (N, C_in, H, W), weights w (C_out, C_in/groups, K_h, K_w),
bias b (C_out,), stride s, padding p, dilation d, output y (N, C_out, OH, OW).

The forward pass is im2col + one matrix product for the whole batch (one per group):
the patches of the input are copied, one kernel offset at a time, into a buffer laid
out as (C_in·K_h·K_w, N·OH·OW), so ``w (C_out, C_in·K_h·K_w) @ col`` is a single large
GEMM; its (C_out, N, OH, OW) result is transposed to NCHW while the bias is added.
The backward pass reuses the same buffer and GEMMs (see ``Conv2d``). Stride-1
convolutions with many input channels skip the whole-batch buffer (``_shifted_gemm``).
"""

from __future__ import annotations

import numpy as np

from cnnlab.ops import _kernels_numba as kernels
from cnnlab.ops import _shifted_gemm
from cnnlab.ops.shape import reshape
from cnnlab.tensor import Function, Tensor, as_tensor


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


def _pair(value, name: str, op: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum, as a pair."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else value
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
        or isinstance(value, bool)
    ):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {name}={value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {name}={value!r}")
    return int(pair[0]), int(pair[1])


def _same_padding(n: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's 'same': out = ceil(n / s); the extra pixel of an odd total goes after."""
    out = -(-n // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def _resolve_padding(padding, size, kernel, stride, dilation, op) -> tuple[tuple[int, int], tuple[int, int]]:
    """Padding as ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            return tuple(_same_padding(size[i], kernel[i], stride[i], dilation[i]) for i in range(2))
        raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got padding={padding!r}")
    ph, pw = _pair(padding, "padding", op, minimum=0)
    return (ph, ph), (pw, pw)


def _to_nchw(y, bias=None):
    """(C_out, N, OH, OW) → (N, C_out, OH, OW), adding the bias in the same pass."""
    out = np.empty((y.shape[1], y.shape[0]) + y.shape[2:], dtype=y.dtype)
    if bias is None:
        np.copyto(out, y.transpose(1, 0, 2, 3))
    else:
        np.add(y.transpose(1, 0, 2, 3), bias.reshape(-1, 1, 1), out=out)
    return out


def conv2d_array(x, w, stride, pads, dilation, groups, bias=None):
    """The forward convolution on arrays: (y (N, C_out, OH, OW), col (groups, C_in/groups·K_h·K_w, N·OH·OW))."""
    n, _, h, width = x.shape
    c_out, c_per_group, kh, kw = w.shape
    oh = output_size(h, kh, stride[0], pads[0], dilation[0])
    ow = output_size(width, kw, stride[1], pads[1], dilation[1])
    col = kernels.im2col(x, (kh, kw), stride, pads, dilation, (oh, ow))
    col = col.reshape(groups, c_per_group * kh * kw, n * oh * ow)
    w_mat = w.reshape(groups, c_out // groups, c_per_group * kh * kw)
    y = _grouped_matmul(w_mat, col)  # (groups, C_out/groups, N·OH·OW)
    return _to_nchw(y.reshape(c_out, n, oh, ow), bias), col


def _grouped_matmul(a, b):
    """a[g] @ b[g] for each group, as 2-D products: NumPy's stacked matmul leaves BLAS
    for transposed operands (a 1000× slowdown for the ``colᵀ`` of ∂L/∂w)."""
    out = np.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=np.result_type(a, b))
    for g in range(a.shape[0]):
        np.matmul(a[g], b[g], out=out[g])
    return out


class Conv2d(Function):
    """2-D cross-correlation, as the lecture writes convolution.

    Forward (per group, with x zero-padded by p):

        y[n, o, i, j] = b[o] + Σ_{c, u, v} w[o, c, u, v] · x[n, c, s·i + d·u, s·j + d·v]

    Backward, with δ = ∂L/∂y:

        ∂L/∂b[o] = Σ_{n, i, j} δ[n, o, i, j]
        ∂L/∂w[o, c, u, v] = Σ_{n, i, j} δ[n, o, i, j] · x[n, c, s·i + d·u, s·j + d·v]
            = δ (C_out, N·OH·OW) @ colᵀ: the input patches against δ, one GEMM with
              the forward's im2col buffer (a transposed view, no copy).
        ∂L/∂x = crop_p( full_conv( zero_insert_s(δ), rot180(w) with C_in and C_out swapped ) )

    The last line is the lecture's formula: δ with s − 1 zeros inserted between its
    rows and columns, padded by the dilated kernel extent d(K − 1) on every side,
    cross-correlated with the 180°-rotated kernels (in/out channels swapped, per
    group, dilation d), then cropped by the forward padding. Written out per input
    pixel it is a sum over kernel offsets (u, v) of shifted products:

        ∂L/∂x_padded[n, c, s·i + d·u, s·j + d·v] += Σ_o w[o, c, u, v] · δ[n, o, i, j]

    i.e. dcol = wᵀ (C_in·K_h·K_w, C_out) @ δ (C_out, N·OH·OW), then col2im adds each
    offset's slice back at its shifted position. Both evaluations run through the
    same im2col/GEMM machinery; the backward picks the one with the smaller buffer:
    col2im's is C_in·K_h·K_w × N·OH·OW, the full convolution's C_out·K_h·K_w × N × (the
    padded-input area the forward read) — so the full convolution only when C_out is
    well below C_in. Rows/columns of the padded input that the forward never read
    (strides that do not divide the input) get zero gradient either way.

    Stride 1 without groups (when ``_shifted_gemm.use_shifted_gemm`` picks it) evaluates the same
    three formulas without a whole-batch im2col buffer: in the flattened padded frame
    (C, N·Hp·Wp) every kernel offset is a column shift, so the forward and dW are
    GEMMs against shifted column ranges of x, and dX is the full convolution itself —
    δ in the padded frame, padded in front by the kernel extent, cross-correlated with
    the rotated, channel-swapped kernels (see ``_shifted_gemm``).

    Output size: OH = floor((H + 2p − d(K_h − 1) − 1) / s) + 1, likewise OW.
    """

    def forward(self, x, w, *bias, stride, pads, dilation, groups):
        self.x_shape = x.shape
        self.w = w
        self.options = stride, pads, dilation, groups
        self.has_bias = bool(bias)
        self.shifted = _shifted_gemm.use_shifted_gemm(x.shape, w.shape, stride, pads, dilation, groups)
        if self.shifted:
            y, xp = _shifted_gemm.conv2d_forward(x, w, pads, dilation)
            self.xp = xp if self.needs_input_grad[1] else None
            return _to_nchw(y, bias[0] if bias else None)
        y, col = conv2d_array(x, w, stride, pads, dilation, groups, bias[0] if bias else None)
        self.col = col if self.needs_input_grad[1] else None
        return y

    def backward(self, grad):
        if self.shifted:
            return self._backward_shifted(grad)
        groups = self.options[3]
        w = self.w
        c_out = w.shape[0]
        needs = self.needs_input_grad
        # δ as (groups, C_out/groups, N·OH·OW), the GEMMs' layout
        delta = np.ascontiguousarray(grad.transpose(1, 0, 2, 3), dtype=w.dtype)
        delta = delta.reshape(groups, c_out // groups, -1)
        dx = dw = db = None
        if needs[1]:
            dw = _grouped_matmul(delta, np.swapaxes(self.col, -1, -2)).reshape(w.shape)
        if needs[0]:
            if self._full_convolution_is_smaller(grad.shape):
                dx = self._input_grad_full_convolution(np.asarray(grad, dtype=w.dtype))
            else:
                dx = self._input_grad_col2im(delta, grad.shape)
        if self.has_bias and needs[2]:
            db = delta.reshape(c_out, -1).sum(axis=1)
        return (dx, dw, db) if self.has_bias else (dx, dw)

    def _backward_shifted(self, grad):
        """Stride 1, one group: the three products as shifted GEMMs on δ in padded coordinates."""
        _, pads, dilation, _ = self.options
        w = self.w
        c_out, c_in, kh, kw = w.shape
        n, _, h, width = self.x_shape
        (hp, wp), (oh, ow), shifts = _shifted_gemm.frame(self.x_shape, w.shape, pads, dilation)
        s_max, m_cols = shifts[-1], n * hp * wp
        needs = self.needs_input_grad
        # δ written into padded coordinates, zero elsewhere, after s_max zero columns
        delta = np.zeros((c_out, s_max + m_cols), dtype=w.dtype)
        delta[:, s_max:].reshape(c_out, n, hp, wp)[:, :, :oh, :ow] = grad.transpose(1, 0, 2, 3)
        dx = dw = db = None
        if needs[1]:
            dw = _shifted_gemm.weight_grad(self.xp, delta[:, s_max:], shifts, m_cols - s_max)
            dw = np.ascontiguousarray(dw.reshape(c_out, kh, kw, c_in).transpose(0, 3, 1, 2))
        if needs[0]:
            # full convolution: padded δ against the rotated kernels, (C_in, K_h·K_w·C_out)
            rotated = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 2, 3, 0)).reshape(c_in, -1)
            dxp = _shifted_gemm.correlate(rotated, delta, shifts, m_cols, m_cols).reshape(c_in, n, hp, wp)
            (top, _), (left, _) = pads
            dx = np.ascontiguousarray(dxp[:, :, top : top + h, left : left + width].transpose(1, 0, 2, 3))
        if self.has_bias and needs[2]:
            db = grad.sum(axis=(0, 2, 3))
        return (dx, dw, db) if self.has_bias else (dx, dw)

    def _full_convolution_is_smaller(self, grad_shape):
        stride, _, dilation, _ = self.options
        c_out, _, kh, kw = self.w.shape
        c_in = self.x_shape[1]
        oh, ow = grad_shape[2:]
        read_h = (oh - 1) * stride[0] + dilation[0] * (kh - 1) + 1
        read_w = (ow - 1) * stride[1] + dilation[1] * (kw - 1) + 1
        return c_out * read_h * read_w < c_in * oh * ow

    def _input_grad_col2im(self, delta, grad_shape):
        stride, pads, dilation, groups = self.options
        w = self.w
        c_out, c_per_group, kh, kw = w.shape
        w_mat = w.reshape(groups, c_out // groups, c_per_group * kh * kw)
        dcol = _grouped_matmul(np.swapaxes(w_mat, -1, -2), delta)  # (groups, C_in/groups·K_h·K_w, N·OH·OW)
        dcol = dcol.reshape(self.x_shape[1], kh, kw, self.x_shape[0], *grad_shape[2:])
        return kernels.col2im(dcol, self.x_shape, stride, pads, dilation)

    def _input_grad_full_convolution(self, grad):
        stride, pads, dilation, groups = self.options
        w = self.w
        c_out, c_per_group, kh, kw = w.shape
        n, c_in, h, width = self.x_shape
        oh, ow = grad.shape[2:]
        # zero-insert s − 1 zeros between rows/columns of δ
        if stride != (1, 1):
            spread = np.zeros((n, c_out, (oh - 1) * stride[0] + 1, (ow - 1) * stride[1] + 1), grad.dtype)
            spread[:, :, :: stride[0], :: stride[1]] = grad
        else:
            spread = grad
        # rotate 180° and swap in/out channels within each group: (C_in, C_out/G, K_h, K_w)
        flipped = w[:, :, ::-1, ::-1].reshape(groups, c_out // groups, c_per_group, kh, kw)
        flipped = np.ascontiguousarray(flipped.transpose(0, 2, 1, 3, 4)).reshape(c_in, c_out // groups, kh, kw)
        extent = (dilation[0] * (kh - 1), dilation[1] * (kw - 1))
        full_pads = ((extent[0], extent[0]), (extent[1], extent[1]))
        used, _ = conv2d_array(spread, flipped, (1, 1), full_pads, dilation, groups)
        # ``used`` covers the padded-input rows the forward read; the rest get zero gradient
        (top, _), (left, _) = pads
        dx = np.zeros((n, c_in, h, width), dtype=grad.dtype)
        rows = min(used.shape[2], top + h) - top
        cols = min(used.shape[3], left + width) - left
        dx[:, :, :rows, :cols] = used[:, :, top : top + rows, left : left + cols]
        return dx


def _check_inputs(op, x, w, b, groups, x_rank, layout):
    if x.ndim != x_rank:
        raise ValueError(f"{op}: expected input x of shape {layout[0]} ({x_rank}-D), got shape {x.shape}")
    if w.ndim != x_rank:
        raise ValueError(f"{op}: expected weights w of shape {layout[1]} ({x_rank}-D), got shape {w.shape}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got groups={groups!r}")
    c_in, c_out = x.shape[1], w.shape[0]
    if c_in % groups:
        raise ValueError(f"{op}: input channels C_in={c_in} are not divisible by groups={groups}")
    if c_out % groups:
        raise ValueError(f"{op}: output channels C_out={c_out} (w.shape[0]) are not divisible by groups={groups}")
    if w.shape[1] != c_in // groups:
        raise ValueError(
            f"{op}: weights w of shape {w.shape} have {w.shape[1]} input channels, expected "
            f"C_in/groups = {c_in}/{groups} = {c_in // groups} for input x of shape {x.shape}"
        )
    if b is not None and b.shape != (c_out,):
        raise ValueError(f"{op}: bias b must have shape (C_out,) = ({c_out},), got shape {b.shape}")
    for name, t in (("x", x), ("w", w), ("b", b)):
        if t is not None and t.dtype.kind != "f":
            raise ValueError(f"{op}: {name} must be a floating-point tensor, got dtype {t.dtype}")
    dtypes = {t.dtype for t in (x, w, b) if t is not None}
    if len(dtypes) > 1:
        raise ValueError(
            f"{op}: x, w and b must share one dtype, got {', '.join(str(t.dtype) for t in (x, w, b) if t is not None)}"
        )


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D convolution (cross-correlation) of a batch of images.

    y[n, o, i, j] = b[o] + Σ_{c, u, v} w[o, c, u, v] · x_padded[n, c, s·i + d·u, s·j + d·v]

    Args:
        x: input (N, C_in, H, W).
        w: weights (C_out, C_in/groups, K_h, K_w).
        b: optional bias (C_out,).
        stride: int or (s_h, s_w), >= 1.
        padding: int or (p_h, p_w) zeros on each side, or 'valid' (no padding) or
            'same' (output size ceil(H / s): TensorFlow's rule, which for stride 1
            is PyTorch's — an odd total padding puts the extra row/column after).
        dilation: int or (d_h, d_w), spacing between kernel taps.
        groups: C_in and C_out are split into this many independent groups
            (groups = C_in is a depthwise convolution).

    Shape:
        output (N, C_out, OH, OW), OH = floor((H + 2p_h − d_h(K_h − 1) − 1) / s_h) + 1, likewise OW.

    Example:
        >>> y = conv2d(Tensor(np.ones((1, 1, 6, 6))), Tensor(np.ones((2, 1, 3, 3))))
        >>> y.shape
        (1, 2, 4, 4)
    """
    x, w = as_tensor(x), as_tensor(w)
    b = None if b is None else as_tensor(b)
    _check_inputs(
        "conv2d", x, w, b, groups, 4, ("(N, C_in, H, W)", "(C_out, C_in/groups, K_h, K_w)")
    )
    stride = _pair(stride, "stride", "conv2d", minimum=1)
    dilation = _pair(dilation, "dilation", "conv2d", minimum=1)
    kernel = w.shape[2:]
    pads = _resolve_padding(padding, x.shape[2:], kernel, stride, dilation, "conv2d")
    for axis, name in ((0, "height"), (1, "width")):
        extent = dilation[axis] * (kernel[axis] - 1) + 1
        padded = x.shape[2 + axis] + sum(pads[axis])
        if extent > padded:
            raise ValueError(
                f"conv2d: kernel {name} {kernel[axis]} (dilated extent {extent}) is larger than the "
                f"padded input {name} {padded} (input shape {x.shape}, padding {padding!r}); "
                f"expected extent <= padded input"
            )
    tensors = (x, w) if b is None else (x, w, b)
    return Conv2d.apply(*tensors, stride=stride, pads=pads, dilation=dilation, groups=int(groups))


def _single(value, name, op, minimum):
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise ValueError(f"{op}: {name} must be an int, got {name}={value!r}")  # noqa: TRY004 - agreed API
    if value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {name}={value!r}")
    return int(value)


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """1-D convolution (cross-correlation): filters slide along the last axis only.

    y[n, o, i] = b[o] + Σ_{c, u} w[o, c, u] · x_padded[n, c, s·i + d·u]

    For a sentence, C_in is the embedding size, so each filter spans the whole
    embedding and slides along the words; for a spectrogram, C_in is the
    frequency bins. Computed as ``conv2d`` on an (N, C_in, 1, L) view, so the
    backward pass is conv2d's.

    Args:
        x: input (N, C_in, L).
        w: weights (C_out, C_in/groups, K).
        b: optional bias (C_out,).
        stride, dilation: int >= 1.
        padding: int >= 0, 'valid' or 'same' (see ``conv2d``).
        groups: as in ``conv2d``.

    Shape:
        output (N, C_out, OL), OL = floor((L + 2p − d(K − 1) − 1) / s) + 1.
    """
    x, w = as_tensor(x), as_tensor(w)
    b = None if b is None else as_tensor(b)
    _check_inputs("conv1d", x, w, b, groups, 3, ("(N, C_in, L)", "(C_out, C_in/groups, K)"))
    stride = _single(stride, "stride", "conv1d", 1)
    dilation = _single(dilation, "dilation", "conv1d", 1)
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(f"conv1d: padding must be an int, 'valid' or 'same', got padding={padding!r}")
        pads = _resolve_padding(padding, (1,) + x.shape[2:], (1,) + w.shape[2:], (1, stride), (1, dilation), "conv1d")
    else:
        p = _single(padding, "padding", "conv1d", 0)
        pads = ((0, 0), (p, p))
    extent = dilation * (w.shape[2] - 1) + 1
    if extent > x.shape[2] + sum(pads[1]):
        raise ValueError(
            f"conv1d: kernel size {w.shape[2]} (dilated extent {extent}) is larger than the padded "
            f"input length {x.shape[2] + sum(pads[1])} (input shape {x.shape}, padding {padding!r})"
        )
    n, c_in, length = x.shape
    x4 = reshape(x, (n, c_in, 1, length))
    w4 = reshape(w, w.shape[:2] + (1, w.shape[2]))
    tensors = (x4, w4) if b is None else (x4, w4, b)
    y = Conv2d.apply(*tensors, stride=(1, stride), pads=pads, dilation=(1, dilation), groups=int(groups))
    return reshape(y, (n, w.shape[0], y.shape[3]))
