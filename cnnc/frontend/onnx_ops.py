"""ONNX front end: the one table from ONNX operators to cnnc layers, each lowered exactly.

`RULES` maps an ONNX op type to the function that lowers one such node (through the Context of
onnx_lowering.py) and the attributes it understands: a node with any other attribute is refused,
never lowered with the attribute ignored. `ACTIVATIONS` maps the elementwise ONNX ops to cnnc
activation names: the ReLU family and softmax by rules of their own, every other one by its row
of the activations table (`Activation.onnx`), so a new cnnc activation needs no line here. A rule that cannot lower its node
raises Unsupported naming the attribute or value; the importer collects them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import isclose, prod
from typing import Any

import numpy as np

from cnnc.frontend import onnx_arith, onnx_preprocessing, onnx_resample, onnx_split
from cnnc.frontend.onnx_fold import BATCH, slice_shape
from cnnc.frontend.onnx_graph import OnnxNode
from cnnc.frontend.onnx_lowering import (
    NCHW,
    Context,
    Layer,
    Tensor,
    Unsupported,
    clean_name,
    weight_path,
)
from cnnc.frontend.onnx_windows import Window, WindowError, pool_pads, read_window
from cnnc.ir.activations import ACTIVATIONS as CNNC_ACTIVATIONS
from cnnc.ir.activations import Activation
from cnnc.ir.ops import OPS, node_op_names

NONNEGATIVE = frozenset({"relu", "relu6", "sigmoid", "softmax"})
# The layers an import gives a bias (a constant added after them, per output channel) and an
# activation (one right after them): those with `use_bias` and a fused activation in the op table.
KERNEL_LAYERS = tuple(
    name for name in node_op_names("layer")
    if OPS[name].fuses_activation and any(a.name == "use_bias" for a in OPS[name].args))
PAD_OP = "zero_padding2d"  # Keras ZeroPadding2D, when cnnc has it


def float32_value(value: float) -> float:
    """An ONNX float (stored as float32) as the shortest decimal that reads back as it:
    0.30000001192092896 -> 0.3, as the spec that was exported said."""
    return float(str(np.float32(value)))


def _hint(node: OnnxNode) -> str | None:
    own = clean_name(node.name, node.op)
    return own if own is not None else weight_path(node)


def _needs_layout(x: Tensor, what: str = "input") -> None:
    """A 4-D tensor in ONNX's NCHW view of a cnnc NHWC tensor (what Conv and pooling read)."""
    if x.rank != 4 or x.perm != NCHW:
        layout = "" if x.rank != 4 else " (a transposed layout)"
        raise Unsupported(f"the {what} has ONNX shape {x.onnx_shape}{layout}; cnnc lowers this "
                          "op on 4-D NCHW tensors only")


def _hw(x: Tensor) -> tuple[int, int]:
    return (int(x.shape[1]), int(x.shape[2]))


def _window(node: OnnxNode, x: Tensor, kernel: tuple[int, int], ceil: bool = False) -> Window:
    try:
        return read_window(node.attrs, _hw(x), kernel, ceil_mode=ceil)
    except WindowError as err:
        raise Unsupported(str(err)) from None


def _pads_text(win: Window) -> str:
    (t, b), (left, r) = win.declared
    (ut, ub), (ul, ur) = win.pads
    used = "" if win.pads == win.declared else f" (of which the outputs use {[ut, ul, ub, ur]})"
    return f"pads={[t, left, b, r]}{used}"


def _padding(cx: Context, node: OnnxNode, win: Window, *, zero_pad: bool, why: str = ""
             ) -> tuple[str, tuple[tuple[int, int], tuple[int, int]] | None]:
    """The Keras padding to use, plus explicit zero padding to put first when neither Keras
    padding gives this window (None when one does)."""
    chosen = cx.layer_arg(_hint(node), "padding")
    if chosen in win.modes:
        return chosen, None
    for mode in ("valid", "same"):
        if mode in win.modes:
            return mode, None
    if not zero_pad:
        raise Unsupported(f"{_pads_text(win)} equal neither Keras 'valid' nor 'same' padding"
                          f"{why}")
    if PAD_OP not in OPS:
        raise Unsupported(f"{_pads_text(win)} equal neither Keras 'valid' nor 'same' padding, "
                          "and this cnnc has no zero-padding layer to put first")
    return "valid", win.pads


def _with_padding(cx: Context, node: OnnxNode, x: Tensor, pads: Any, op: str,
                  keywords: dict[str, Any]) -> Tensor:
    """x, zero-padded first when `pads` is given; checks the layer after it before emitting."""
    if pads is None:
        cx.infer(op, keywords, [x.shape])
        return x
    pad_keywords = {"padding": pads}
    padded = cx.infer(PAD_OP, pad_keywords, [x.shape])
    cx.infer(op, keywords, [padded])
    hint = _hint(node)
    pad = cx.layer(node, PAD_OP, [x], pad_keywords, hint=f"{hint}.pad" if hint else None,
                   value="")
    return Tensor(pad, x.perm, None, x.nonneg)


def _check_outputs_unused(cx: Context, node: OnnxNode, first: int, what: str) -> None:
    for v in node.outputs[first:]:
        if v and (v in cx.readers or v in cx.outputs):
            raise Unsupported(f"its {what} output ('{v}') is used")


# ---------------------------------------------------------------- convolution and pooling


def _conv(cx: Context, node: OnnxNode) -> None:
    x = cx.tensor(node, 0)
    _needs_layout(x)
    w = cx.weight(node, 1, "the weight W")
    if (cx.layer_arg(_hint(node), "op") == "dense" and w.ndim == 4 and w.shape[2:] == (1, 1)
            and node.attrs.get("group", 1) == 1):
        # cnnc's dense on a 4-D input (on the channels), as its export wrote it: a 1x1 Conv
        bias = cx.weight(node, 2, "the bias B", (w.shape[0],))
        params = {"kernel": np.ascontiguousarray(w[:, :, 0, 0].T)}
        if bias is not None:
            params["bias"] = bias
        keywords = {"units": int(w.shape[0]), "use_bias": bias is not None}
        cx.define(node, Tensor(cx.layer(node, "dense", [x], keywords, params,
                                        hint=_hint(node)), NCHW))
        return
    if w.ndim != 4:
        raise Unsupported(f"W has shape {w.shape}: cnnc lowers 2-D convolutions (4-D weights)")
    filters, cin_g, kh, kw = w.shape
    group = node.attrs.get("group", 1)
    if group < 1 or cin_g * group != x.shape[3]:
        raise Unsupported(f"group={group} with W of shape {w.shape} does not fit an input of "
                          f"{x.shape[3]} channels")
    if node.attrs.get("kernel_shape", (kh, kw)) != (kh, kw):
        raise Unsupported(f"kernel_shape={node.attrs['kernel_shape']} differs from W's "
                          f"{(kh, kw)}")
    bias = cx.weight(node, 2, "the bias B", (filters,))
    win = _window(node, x, (kh, kw))
    padding, pads = _padding(cx, node, win, zero_pad=True)
    channels = x.shape[3]
    if cx.layer_arg(_hint(node), "op") == "depthwise_conv2d" and group == channels and cin_g == 1:
        # Keras' DepthwiseConv2D, as cnnc's export wrote it: output c * m_count + m is input
        # channel c with filter m, kernel (kh, kw, channels, depth_multiplier).
        op = "depthwise_conv2d"
        keywords = {"kernel_size": (kh, kw), "strides": win.strides, "padding": padding,
                    "depth_multiplier": filters // channels, "dilation_rate": win.dilations,
                    "use_bias": bias is not None}
        kernel = w[:, 0].reshape(channels, filters // channels, kh, kw).transpose(2, 3, 0, 1)
    else:
        op = "conv2d"
        keywords = {"filters": filters, "kernel_size": (kh, kw), "strides": win.strides,
                    "padding": padding, "dilation_rate": win.dilations, "groups": group,
                    "use_bias": bias is not None}
        kernel = w.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    x = _with_padding(cx, node, x, pads, op, keywords)
    params = {"kernel": np.ascontiguousarray(kernel)}
    if bias is not None:
        params["bias"] = bias
    layer = cx.layer(node, op, [x], keywords, params, hint=_hint(node))
    cx.define(node, Tensor(layer, NCHW))


def _pool_kernel(node: OnnxNode) -> tuple[int, int]:
    kernel = node.attrs.get("kernel_shape")
    if not isinstance(kernel, tuple) or len(kernel) != 2:
        raise Unsupported(f"kernel_shape={kernel!r}: cnnc pools 2-D windows")
    return kernel


def _pool_strides(cx: Context, node: OnnxNode, win: Window) -> tuple[int, int] | None:
    """Keras' default strides (None: the pool size) unless the export said they were given."""
    given = cx.layer_arg(_hint(node), "strides")
    if win.strides == win.kernel and given is None:
        return None
    return win.strides


def _maxpool(cx: Context, node: OnnxNode) -> None:
    _check_outputs_unused(cx, node, 1, "Indices")
    x = cx.tensor(node, 0)
    _needs_layout(x)
    kernel = _pool_kernel(node)
    win = _window(node, x, kernel, bool(node.attrs.get("ceil_mode", 0)))
    keywords = _pool_keywords(cx, node, x, win, count_pads=False)
    cx.infer("maxpool2d", keywords, [x.shape])
    layer = cx.layer(node, "maxpool2d", [x], keywords, hint=_hint(node))
    cx.define(node, Tensor(layer, NCHW, None, x.nonneg))


def _avgpool(cx: Context, node: OnnxNode) -> None:
    x = cx.tensor(node, 0)
    _needs_layout(x)
    kernel = _pool_kernel(node)
    win = _window(node, x, kernel, bool(node.attrs.get("ceil_mode", 0)))
    count_pads = bool(node.attrs.get("count_include_pad", 0))
    keywords = _pool_keywords(cx, node, x, win, count_pads=count_pads)
    cx.infer("avgpool2d", keywords, [x.shape])
    layer = cx.layer(node, "avgpool2d", [x], keywords, hint=_hint(node))
    cx.define(node, Tensor(layer, NCHW, None, x.nonneg))


def _pool_keywords(cx: Context, node: OnnxNode, x: Tensor, win: Window, *,
                   count_pads: bool) -> dict[str, Any]:
    """A pooling layer's arguments for an ONNX window: Keras 'valid' or 'same' where one gives
    it (what cnnc's own export wrote), else explicit pads, ceil_mode and count_include_pad."""
    keywords: dict[str, Any] = {"pool_size": win.kernel,
                                "strides": _pool_strides(cx, node, win)}
    if win.dilations != (1, 1):
        keywords["dilation_rate"] = win.dilations
    # A mean over Keras 'same' windows counts only the real cells, as count_include_pad=0 does.
    chosen = cx.layer_arg(_hint(node), "padding")
    keras = ("valid", "same") if not count_pads or chosen == "same" else ("valid",)
    modes = [m for m in (chosen, *keras) if m in win.modes and m in keras]
    ceil = bool(node.attrs.get("ceil_mode", 0))
    if cx.layer_arg(_hint(node), "pads") is not None:
        # cnnc's export of explicit pads: read back as written, even where Keras' agree.
        (t, b), (left, r) = win.declared
        pads, ceil_mode = (t, b, left, r), ceil
    elif modes:
        keywords["padding"] = modes[0]
        if count_pads and modes[0] == "same":
            keywords["count_include_pad"] = True
        return keywords
    else:
        try:
            pads, ceil_mode = pool_pads(win, _hw(x), ceil)
        except WindowError as err:
            raise Unsupported(str(err)) from None
    span = [d * (k - 1) + 1 for k, d in zip(win.kernel, win.dilations)]
    if max(pads[:2]) >= span[0] or max(pads[2:]) >= span[1]:
        raise Unsupported(f"{_pads_text(win)}: a window would lie wholly in the padding")
    keywords.update(padding="valid", pads=pads if any(pads) else None, ceil_mode=ceil_mode)
    if count_pads:
        keywords["count_include_pad"] = True
    return keywords


def _global_avgpool(cx: Context, node: OnnxNode) -> None:
    x = cx.tensor(node, 0)
    _needs_layout(x)
    layer = cx.layer(node, "global_avgpool2d", [x], {"keepdims": True}, hint=_hint(node))
    cx.define(node, Tensor(layer, NCHW, None, x.nonneg))


def _reduce_axes(cx: Context, node: OnnxNode, x: Tensor) -> tuple[int, ...] | None:
    """A Reduce* node's axes: the attribute (before opset 18), else the optional second input
    (from 18 on; ReduceSum from 13); None when neither is given."""
    axes = node.attrs.get("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        value = cx.constant(node, 1, "axes")
        if value.dtype.kind not in "iu":
            raise Unsupported(f"axes hold {value.dtype} values, not integers")
        axes = tuple(int(a) for a in value.reshape(-1))
    if axes is not None and any(not -x.rank <= a < x.rank for a in axes):
        raise Unsupported(f"axes={axes} are out of range for rank {x.rank}")
    return axes


def _reduce_mean(cx: Context, node: OnnxNode) -> None:
    """ReduceMean over the two spatial axes: global average pooling (tf2onnx's
    GlobalAveragePooling2D, PyTorch's x.mean([2, 3]) and the dynamo exporter's
    AdaptiveAvgPool2d(1)); with no axes and noop_with_empty_axes=1, the identity."""
    x = cx.tensor(node, 0)
    axes = _reduce_axes(cx, node, x)
    if not axes and node.attrs.get("noop_with_empty_axes", 0):
        cx.define(node, x)  # ONNX: no axes and noop_with_empty_axes=1 pass the input through
        return
    if x.rank != 4 or not axes or {x.perm[a % 4] for a in axes} != {1, 2}:
        shown = "none (every axis)" if not axes else axes
        raise Unsupported(f"axes={shown}: cnnc lowers ReduceMean only over the spatial axes of "
                          "a 4-D tensor (global average pooling)")
    keep = bool(node.attrs.get("keepdims", 1))
    layer = cx.layer(node, "global_avgpool2d", [x], {"keepdims": keep}, hint=_hint(node))
    perm = x.perm if keep else tuple(0 if p == 0 else 1 for p in x.perm if p in (0, 3))
    cx.define(node, Tensor(layer, perm, None, x.nonneg))


def _pad(cx: Context, node: OnnxNode) -> None:
    x = cx.tensor(node, 0)
    if node.attrs.get("mode", "constant") != "constant":
        raise Unsupported(f"mode={node.attrs['mode']!r}: only zero padding is supported")
    if "pads" in node.attrs:
        pads = list(node.attrs["pads"])
        value = node.attrs.get("value", 0.0)
    else:
        pads = [int(p) for p in cx.constant(node, 1, "pads").reshape(-1)]
        v = cx.constant(node, 2, "constant_value")
        value = 0.0 if v is None else float(v.reshape(-1)[0])
    axes = list(range(x.rank))
    if len(node.inputs) > 3 and node.inputs[3]:
        axes = [int(a) % x.rank for a in cx.constant(node, 3, "axes").reshape(-1)]
    if value != 0.0:
        raise Unsupported(f"constant_value={value}: only zero padding is supported")
    if len(pads) != 2 * len(axes) or any(p < 0 for p in pads):
        raise Unsupported(f"pads={pads} for axes {axes}")
    by_axis = {x.perm[a]: (pads[i], pads[i + len(axes)]) for i, a in enumerate(axes)}
    if x.rank != 4 or any(by_axis.get(a, (0, 0)) != (0, 0) for a in (0, 3)):
        raise Unsupported(f"pads={pads}: cnnc pads only the height and width of 4-D tensors")
    if PAD_OP not in OPS:
        raise Unsupported("this cnnc has no zero-padding layer")
    keywords = {"padding": (by_axis.get(1, (0, 0)), by_axis.get(2, (0, 0)))}
    layer = cx.layer(node, PAD_OP, [x], keywords, hint=_hint(node))
    cx.define(node, Tensor(layer, x.perm, None, x.nonneg))


# ---------------------------------------------------------------- dense


def _rows_in_cnnc_order(x: Tensor, kernel: np.ndarray) -> np.ndarray:
    """A kernel whose rows follow ONNX's column order, reordered to the cnnc input's columns
    (the flatten of an NCHW tensor, absorbed here)."""
    if x.order is None:
        return kernel
    out = np.empty_like(kernel)
    out[x.order] = kernel
    return out


# Rows and units of ONNX's B per block when building a dense kernel: a block's source rows and
# destination rows stay in the cache while it is transposed (VGG-19's 103-million-element B).
KERNEL_TILE = 256


def dense_kernel(b: np.ndarray, order: np.ndarray | None, transposed: bool = False,
                 scale: float = 1.0) -> np.ndarray:
    """cnnc's (features, units) dense kernel from ONNX's B ((features, units), or (units,
    features) when `transposed`), its ONNX row j moved to row order[j] (a Tensor's `order`:
    the flatten of an NCHW tensor), times `scale`: in one pass over tiles. (A transposed copy
    of B and then a scatter of its rows is two passes, the first reading B a column at a time:
    tens of seconds for VGG-19's first dense layer on 2 cores.)"""
    features, units = b.shape[::-1] if transposed else b.shape
    source = None if order is None else np.argsort(order)  # cnnc row r is ONNX row source[r]
    out = np.empty((features, units), np.float32)
    for r0 in range(0, features, KERNEL_TILE):
        rows = slice(r0, r0 + KERNEL_TILE) if source is None else source[r0:r0 + KERNEL_TILE]
        if not transposed:
            out[r0:r0 + KERNEL_TILE] = b[rows]
            continue
        for u0 in range(0, units, KERNEL_TILE):
            out[r0:r0 + KERNEL_TILE, u0:u0 + KERNEL_TILE] = b[u0:u0 + KERNEL_TILE, rows].T
    if scale != 1.0:
        out *= np.float32(scale)
    return out


def _dense(cx: Context, node: OnnxNode, x: Tensor, b: np.ndarray, bias: np.ndarray | None,
           transposed: bool = False, scale: float = 1.0) -> None:
    # On a 4-D map whose ONNX last axis is cnnc's channels (PyTorch's nn.Linear after a permute
    # to channels-last, as in ConvNeXt), the product is cnnc's dense on the last axis.
    channels_last = x.rank > 2 and x.perm[-1] == x.rank - 1 and x.order is None
    features = b.shape[-1 if transposed else 0] if b.ndim == 2 else None
    if (x.rank != 2 and not channels_last) or features != x.shape[-1]:
        shape = b.shape[::-1] if transposed else b.shape
        raise Unsupported(f"a product of ONNX shapes {x.onnx_shape} and {shape}: cnnc "
                          "lowers (batch, features) x (features, units), or a channels-last "
                          "map x (channels, units), with a constant second operand")
    kernel = dense_kernel(b, x.order, transposed, scale)
    params = {"kernel": kernel}
    if bias is not None:
        params["bias"] = bias
    keywords = {"units": int(kernel.shape[1]), "use_bias": bias is not None}
    layer = cx.layer(node, "dense", [x], keywords, params, hint=_hint(node))
    cx.define(node, Tensor(layer, x.perm if channels_last else (0, 1)))


def _gemm(cx: Context, node: OnnxNode) -> None:
    a = node.attrs
    if a.get("transA", 0):
        raise Unsupported("transA=1: the batch would be a reduced axis")
    x = cx.tensor(node, 0)
    b = cx.weight(node, 1, "B")
    if b.ndim != 2:
        raise Unsupported(f"B has shape {b.shape}; expected a matrix")
    transposed = bool(a.get("transB", 0))
    c = cx.weight(node, 2, "C")
    bias = None
    if c is not None:
        units = b.shape[0 if transposed else 1]
        if c.size not in (1, units) or (c.ndim == 2 and c.shape[0] != 1) or c.ndim > 2:
            raise Unsupported(f"C has shape {c.shape}; cnnc adds a bias of ({units},)")
        bias = np.broadcast_to(c.reshape(-1), (units,)) * np.float32(a.get("beta", 1.0))
    _dense(cx, node, x, b, None if bias is None else bias.astype(np.float32), transposed,
           a.get("alpha", 1.0))


def _matmul(cx: Context, node: OnnxNode) -> None:
    x = cx.tensor(node, 0)
    _dense(cx, node, x, cx.weight(node, 1, "the second operand"), None)


# ---------------------------------------------------------------- elementwise


def _bias_vector(t: Tensor, c: np.ndarray) -> np.ndarray | None:
    """A constant added to a conv/dense output as its per-channel bias, or None if it is not
    one."""
    layer = t.layer
    if layer.op == "dense":
        units = t.shape[-1]
        ok = c.size in (1, units) and (c.ndim <= 1 or c.shape[:-1] == (1,) * (c.ndim - 1))
        return np.broadcast_to(c.reshape(-1), (units,)).astype(np.float32) if ok else None
    filters = t.shape[-1]
    if c.size == 1:
        return np.full((filters,), c.reshape(-1)[0], dtype=np.float32)
    if c.ndim in (3, 4) and c.shape[-3:] == (filters, 1, 1) and c.shape[:-3] in ((), (1,)):
        return c.reshape(-1).astype(np.float32)
    return None


def _add(cx: Context, node: OnnxNode) -> None:
    present = [i for i, v in enumerate(node.inputs) if v]
    computed = [i for i in present if cx.has_tensor(node, i)]
    if len(computed) == len(present) and len(present) >= 2:
        onnx_arith.merge(cx, node, [cx.tensor(node, i) for i in computed])  # broadcasting
        return
    if node.op == "Add" and len(computed) == 1 and len(present) == 2:
        i = computed[0]
        t = cx.tensor(node, i)
        c = cx.weight(node, 1 - i, "the constant addend")
        layer = t.layer
        bias = _bias_vector(t, c) if layer.op in KERNEL_LAYERS else None
        if (bias is not None and not layer.keywords.get("use_bias", True)
                and layer.keywords.get("activation", "linear") == "linear"
                and cx.sole_reader(t, node.inputs[i], node)):
            cx.relayer(layer, use_bias=True)
            layer.params["bias"] = bias
            layer.value = node.outputs[0]
            cx.define(node, Tensor(layer, t.perm, t.order))
            return
        onnx_arith.affine(cx, node)  # a scalar or per-channel shift
        return
    raise Unsupported("cnnc adds computed tensors, or a bias right after a Conv/MatMul")


# Patterns tried, in order, before the generic rules of the arithmetic ops (SiLU's
# Sigmoid -> Mul(x, s), GELU's Erf decomposition, ...): each returns True when it lowered the
# node, False to leave it to the next. `arithmetic` is the one entry of every such op.
ARITHMETIC_PATTERNS: list[Callable[[Context, OnnxNode], bool]] = []
# Input normalisation by constants: cnnc's rescaling and normalization layers.
ARITHMETIC_PATTERNS.append(onnx_preprocessing.input_scaling)


def arithmetic(cx: Context, node: OnnxNode) -> None:
    """Add, Sum, Sub, Mul, Div, Max, Min, Mean: the patterns first, then Add's bias folding,
    then the merges of computed tensors or a per-channel affine with a constant
    (onnx_arith.py)."""
    for pattern in ARITHMETIC_PATTERNS:
        if pattern(cx, node):
            return
    if node.op in ("Add", "Sum"):
        _add(cx, node)
        return
    present = [i for i, v in enumerate(node.inputs) if v]
    if all(cx.has_tensor(node, i) for i in present):
        onnx_arith.merge(cx, node, [cx.tensor(node, i) for i in present])
    else:
        onnx_arith.affine(cx, node)


def _same_order(a: Tensor, b: Tensor) -> bool:
    if a.order is None or b.order is None:
        return a.order is None and b.order is None
    return bool(np.array_equal(a.order, b.order))


def _softmax(cx: Context, node: OnnxNode, x: Tensor) -> str:
    axis = node.attrs.get("axis", 1 if cx.opset < 13 else -1)
    if not -x.rank <= axis < x.rank:
        raise Unsupported(f"axis={axis} is out of range for rank {x.rank}")
    axis %= x.rank
    last = x.rank - 1
    if cx.opset < 13:  # softmax over all axes from `axis` on, flattened
        covered = {x.perm[i] for i in range(axis, x.rank)}
        ok = all(x.shape[i] == 1 for i in covered if i != last) and last in covered \
            and axis > 0
    else:
        ok = x.perm[axis] == last
    if not ok:
        raise Unsupported(f"axis={node.attrs.get('axis')}: cnnc's softmax is over the channels "
                          f"(here ONNX axis {x.perm.index(last)})")
    return "softmax"


def _onnx_default(op: str, attribute: str) -> Any:
    from onnx.defs import get_schema  # onnx is there: a file is being read
    from onnx.helper import get_attribute_value

    value = get_attribute_value(get_schema(op).attributes[attribute].default_value)
    # A string default comes back as bytes; node.attrs holds str (onnx_graph.py), so Gelu
    # without `approximate` compared b'none' with 'none' and was refused.
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _by_table(act: Activation) -> Callable[[Context, OnnxNode, Tensor], str]:
    """The rule for an activation whose row of the table names its ONNX operator: the node's
    attributes (ONNX's defaults where absent) must be the row's constants."""
    def rule(cx: Context, node: OnnxNode, x: Tensor) -> str:
        for const, value in act.constants.items():
            given = node.attrs.get(const, _onnx_default(node.op, const))
            if not isclose(given, value, rel_tol=1e-6):
                raise Unsupported(f"{const}={float32_value(given)}: cnnc's {act.name} has "
                                  f"{const} {value}")
        return act.name
    return rule


# The activations of the table that name their ONNX operator (elu, sigmoid, tanh, ...); those
# that an attribute tells apart (Gelu's approximate) are BY_ATTRIBUTES'.
BY_TABLE = {a.onnx: a for a in CNNC_ACTIVATIONS.values()
            if a.onnx is not None and not a.onnx_attrs}


# ---- issue 20: operators whose attributes select the activation (Gelu: approximate='none' is
# gelu, 'tanh' gelu_tanh; Swish with alpha 1 is silu). The decompositions PyTorch writes (SiLU
# as Sigmoid and Mul, GELU through Erf or Tanh, ...) become these operators before lowering
# (onnx_patterns.py).
BY_ATTRIBUTES: dict[str, list[Activation]] = {}
for _act in CNNC_ACTIVATIONS.values():
    if _act.onnx is not None and _act.onnx_attrs:
        BY_ATTRIBUTES.setdefault(_act.onnx, []).append(_act)


def _attribute_text(value: Any) -> str:
    return float32_value(value) if isinstance(value, float) else repr(value)


def _by_attributes(op: str) -> Callable[[Context, OnnxNode, Tensor], str]:
    """The row of the table whose ONNX attributes the node has (ONNX's defaults where absent)."""
    def rule(cx: Context, node: OnnxNode, x: Tensor) -> str:
        given = {k: node.attrs.get(k, _onnx_default(op, k))
                 for act in BY_ATTRIBUTES[op] for k in act.onnx_attrs}
        for act in BY_ATTRIBUTES[op]:
            if all(isclose(given[k], v, rel_tol=1e-6) if isinstance(v, float) else given[k] == v
                   for k, v in act.onnx_attrs.items()):
                return act.name
        told = ", ".join(f"{k}={_attribute_text(v)}" for k, v in given.items())
        known = "; ".join(", ".join(f"{k}={_attribute_text(v)}" for k, v in a.onnx_attrs.items())
                          + f" ({a.name})" for a in BY_ATTRIBUTES[op])
        raise Unsupported(f"{told}: cnnc computes {op} with {known} only")
    return rule


def _attribute_names(op: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(k for act in BY_ATTRIBUTES[op] for k in act.onnx_attrs))


def _leaky_relu(cx: Context, node: OnnxNode, x: Tensor) -> dict[str, float]:
    alpha = node.attrs.get("alpha", 0.01)
    if alpha < 0:
        raise Unsupported(f"alpha={float32_value(alpha)}: cnnc's relu takes a slope >= 0")
    return {"negative_slope": float32_value(alpha)}


def _thresholded_relu(cx: Context, node: OnnxNode, x: Tensor) -> dict[str, float]:
    return {"threshold": float32_value(node.attrs.get("alpha", 1.0))}


def _clip_bounds(cx: Context, node: OnnxNode) -> tuple[float, float]:
    if cx.opset < 11:
        return node.attrs.get("min", -np.inf), node.attrs.get("max", np.inf)
    lo, hi = cx.constant(node, 1, "min"), cx.constant(node, 2, "max")
    return (-np.inf if lo is None else float(lo.reshape(-1)[0]),
            np.inf if hi is None else float(hi.reshape(-1)[0]))


def _clip(cx: Context, node: OnnxNode, x: Tensor) -> dict[str, float]:
    lo, hi = _clip_bounds(cx, node)
    if lo == 0.0 and hi == np.inf:
        return {}
    if lo == 0.0 and 0.0 < hi < np.inf:
        return {"max_value": float32_value(hi)}  # Keras' ReLU(max_value=hi)
    raise Unsupported(f"min={lo}, max={hi}: cnnc lowers Clip(0, max) only (a capped relu)")


# ONNX elementwise op -> what cnnc computes it with, given the node and its input: an
# activation name, or for the ReLU family the arguments of Keras' ReLU (the relu activation's
# parameters), which become a name of the table where one says exactly that (`_relu_as`).
ACTIVATIONS: dict[str, Callable[[Context, OnnxNode, Tensor], str | dict[str, float]]] = {
    "Relu": lambda cx, node, x: {},
    **{op: _by_table(act) for op, act in BY_TABLE.items()},
    **{op: _by_attributes(op) for op in BY_ATTRIBUTES},
    "LeakyRelu": _leaky_relu,
    "ThresholdedRelu": _thresholded_relu,
    "Clip": _clip,
    "Softmax": _softmax,
}


def _relu_as(params: dict[str, float], parameterised: bool) -> str | dict[str, float]:
    """Keras' ReLU with these arguments as the activation of the table that it equals (relu,
    relu6, leaky_relu), which then may join the layer before it; left with its parameters when
    the metadata says cnnc's export wrote a relu with parameters (`op: relu`, as its export of
    a ReLU layer did), or when no name says it."""
    if not params:
        return "relu"
    if not parameterised:
        for act in CNNC_ACTIVATIONS.values():
            if act.relu is not None and act.relu.keys() == params.keys() and all(
                    isclose(params[k], v, rel_tol=1e-6) for k, v in act.relu.items()):
                return act.name
    return params


def _activation(cx: Context, node: OnnxNode) -> None:
    x = cx.tensor(node, 0)
    name = ACTIVATIONS[node.op](cx, node, x)
    hint = _hint(node)
    if isinstance(name, dict):
        name = _relu_as(name, cx.layer_arg(hint, "op") == "relu")
    if isinstance(name, dict):
        layer = cx.layer(node, "activation", [x], {"activation": "relu", **name}, hint=hint)
        nonneg = not name.get("negative_slope") and name.get("threshold", 0.0) >= 0.0
        cx.define(node, Tensor(layer, x.perm, x.order, nonneg))
        return
    producer = x.layer
    nonneg = name in NONNEGATIVE
    if _fusable(cx, node, x, producer):
        cx.relayer(producer, activation=name)
        producer.value = node.outputs[0]
        cx.define(node, Tensor(producer, x.perm, x.order, nonneg))
        return
    layer = cx.layer(node, "activation", [x], {"activation": name}, hint=hint)
    cx.define(node, Tensor(layer, x.perm, x.order, nonneg))


def _parent(name: str) -> str:
    return name.rsplit("/", 1)[0] if "/" in name else ""


def _fusable(cx: Context, node: OnnxNode, x: Tensor, producer: Layer) -> bool:
    """An activation joins the conv/dense before it when nothing else reads that layer's output
    and the activation node has no name of its own (PyTorch's '/Relu'), is named after the
    layer ('conv2d/relu', as cnnc's export writes a fused activation) or belongs to the same
    layer (tf2onnx's 'model/conv2d/Conv2D' then 'model/conv2d/Relu')."""
    if producer.op not in KERNEL_LAYERS:
        return False
    if producer.keywords.get("activation", "linear") != "linear":
        return False
    if not cx.sole_reader(x, node.inputs[0], node):
        return False
    own = producer.node.name if producer.node is not None else ""
    return _hint(node) is None or bool(own) and (
        node.name.startswith(own + "/") or _parent(node.name) == _parent(own) != "")


# ---------------------------------------------------------------- normalisation, dropout


def _batchnorm(cx: Context, node: OnnxNode) -> None:
    a = node.attrs
    if a.get("training_mode", 0) or not a.get("spatial", 1) or a.get("is_test", 1) == 0:
        raise Unsupported("training mode: cnnc imports batch normalisation for inference")
    _check_outputs_unused(cx, node, 1, "running statistics")
    x = cx.tensor(node, 0)
    if x.rank < 2 or x.perm[1] != x.rank - 1:
        raise Unsupported(f"an input of ONNX shape {x.onnx_shape} whose channels are not cnnc's "
                          "last axis")
    c = x.shape[-1]
    named = ("scale", "B", "input_mean", "input_var")
    values = [cx.weight(node, i + 1, name, (c,)) for i, name in enumerate(named)]
    if any(v is None for v in values):
        raise Unsupported("scale, B, mean and var must all be given")
    gamma, beta, mean, var = (_rows_in_cnnc_order(x, v) for v in values)
    hint = _hint(node)
    keywords: dict[str, Any] = {"momentum": float32_value(a.get("momentum", 0.9)),
                                "epsilon": float32_value(a.get("epsilon", 1e-5))}
    params = {"gamma": gamma, "beta": beta, "moving_mean": mean, "moving_variance": var}
    # cnnc's export writes ones/zeros for a layer without gamma/beta and says so in metadata.
    if cx.layer_arg(hint, "scale") is False and (gamma == 1).all():
        keywords["scale"] = False
        del params["gamma"]
    if cx.layer_arg(hint, "center") is False and (beta == 0).all():
        keywords["center"] = False
        del params["beta"]
    layer = cx.layer(node, "batchnorm", [x], keywords, params, hint=hint)
    cx.define(node, Tensor(layer, x.perm, x.order))


def _dropout(cx: Context, node: OnnxNode) -> None:
    _check_outputs_unused(cx, node, 1, "mask")
    x = cx.tensor(node, 0)
    if cx.opset < 12:
        rate = node.attrs.get("ratio", 0.5)
    else:
        ratio = cx.constant(node, 1, "ratio")
        rate = 0.5 if ratio is None else float(ratio.reshape(-1)[0])
        mode = cx.constant(node, 2, "training_mode")
        if mode is not None and bool(mode.reshape(-1)[0]):
            raise Unsupported("training_mode=true")
    keywords: dict[str, Any] = {"rate": float32_value(rate)}
    seed = cx.layer_arg(_hint(node), "seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        keywords["seed"] = seed
    layer = cx.layer(node, "dropout", [x], keywords, hint=_hint(node))
    cx.define(node, Tensor(layer, x.perm, x.order, x.nonneg))


# ---------------------------------------------------------------- layout: flatten, reshape


def flatten_order(shape: tuple[int, ...], perm: tuple[int, ...]) -> np.ndarray | None:
    """For an ONNX value np.transpose(v, perm) of a cnnc value v of `shape`, flattened after
    the batch: the cnnc (row-major) column of each ONNX column; None when they agree."""
    cells = np.arange(prod(shape[1:])).reshape(shape[1:])
    order = np.transpose(cells, [p - 1 for p in perm[1:]]).reshape(-1)
    return None if (order == np.arange(order.size)).all() else order


def _flatten_value(cx: Context, node: OnnxNode, x: Tensor) -> None:
    if x.rank == 2:
        cx.define(node, x)
        return
    if x.perm[0] != 0:
        raise Unsupported("the batch axis is not the first")
    producer = x.layer
    if (producer.op in ("global_avgpool2d", "global_maxpool2d")
            and producer.keywords.get("keepdims")
            and cx.sole_reader(x, node.inputs[0], node)):
        cx.relayer(producer, keepdims=False)  # Global*Pool + Flatten: Keras' global pooling
        producer.value = node.outputs[0]
        cx.define(node, Tensor(producer, (0, 1), None, x.nonneg))
        return
    layer = cx.layer(node, "flatten", [x], {}, hint=_hint(node))
    cx.define(node, Tensor(layer, (0, 1), flatten_order(x.shape, x.perm), x.nonneg))


def _flatten(cx: Context, node: OnnxNode) -> None:
    x = cx.tensor(node, 0)
    axis = node.attrs.get("axis", 1)
    if axis % max(x.rank, 1) != 1 and not (x.rank == 2 and axis in (-1, 1)):
        raise Unsupported(f"axis={axis}: cnnc flattens everything after the batch axis")
    _flatten_value(cx, node, x)


def _reshape(cx: Context, node: OnnxNode) -> None:
    x = cx.tensor(node, 0)
    shape = cx.constant(node, 1, "shape")
    target = [int(v) for v in shape.reshape(-1)]
    have = x.onnx_shape
    per = prod(have[1:])
    rest = [have[i + 1] if d == 0 and not node.attrs.get("allowzero", 0) and i + 1 < len(have)
            else d for i, d in enumerate(target[1:])]
    known = prod(d for d in rest if d != -1)
    if rest.count(-1) == 1 and known and per % known == 0:
        rest = [per // known if d == -1 else d for d in rest]
    first = target[0] if target else None
    batch_first = first in (BATCH, 0) or (first == -1 and prod(rest) == per) or (
        cx.batch is not None and first == cx.batch)
    regroup = _channel_regroup(x, rest) if batch_first and "reshape" in OPS else None
    if regroup is not None and (cx.layer_arg(_hint(node), "target_shape") is not None
                                or not (rest == [per] or tuple(rest) == tuple(have[1:]))):
        # cnnc's reshape (its own export recorded it, or nothing else lowers it): the
        # squeeze-excite block's view(N, C, 1, 1) of a (N, C) vector, and back
        shape, perm = regroup
        given = cx.layer_arg(_hint(node), "target_shape")  # as written, with its -1
        if isinstance(given, list) and len(given) == len(shape) and all(
                g in (d, -1) for g, d in zip(given, shape)) and given.count(-1) <= 1:
            shape = tuple(given)
        layer = cx.layer(node, "reshape", [x], {"target_shape": shape}, hint=_hint(node))
        cx.define(node, Tensor(layer, perm, None, x.nonneg))
        return
    if batch_first and rest == [per]:
        _flatten_value(cx, node, x)
        return
    if batch_first and tuple(rest) == tuple(have[1:]):
        cx.define(node, x)
        return
    whole = cx.batch * per if cx.batch is not None else None
    if target in ([-1], [whole]) and whole is not None:
        cx.flat[node.outputs[0]] = x  # read only by a Gather that restores it (_gather_flat)
        return
    shown = ["batch" if d == BATCH else d for d in target]
    raise Unsupported(f"reshaping ONNX shape {have} to {shown}: cnnc lowers only flattening "
                      "to (batch, features) and reshapes that change nothing")


def _channel_regroup(x: Tensor, rest: list[int]
                     ) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The cnnc reshape (target_shape, the result's perm) that gives ONNX non-batch shape
    `rest` from a tensor holding channels only ((N, C), (N, 1, C), NCHW (N, C, 1, 1)); None if
    that is not what it is."""
    c = x.shape[-1]
    if x.order is not None or any(d != 1 for d in x.shape[1:-1]) or x.perm[0] != 0:
        return None
    if rest == [c, 1, 1]:
        return (1, 1, c), NCHW
    if rest == [c]:
        return (c,), (0, 1)
    if rest == [1, c]:
        return (1, c), (0, 1, 2)
    return None


def _transpose(cx: Context, node: OnnxNode) -> None:
    x = cx.tensor(node, 0)
    perm = node.attrs.get("perm", tuple(reversed(range(x.rank))))
    if sorted(perm) != list(range(x.rank)):
        raise Unsupported(f"perm={perm} is not a permutation of {x.rank} axes")
    new = tuple(x.perm[q] for q in perm)
    if new[0] != 0:
        raise Unsupported(f"perm={perm} moves the batch axis")
    if new != x.perm and x.order is not None:
        raise Unsupported(f"perm={perm} on a flattened tensor")
    cx.define(node, Tensor(x.layer, new, x.order, x.nonneg))


def _concat(cx: Context, node: OnnxNode) -> None:
    xs = [cx.tensor(node, i) for i, v in enumerate(node.inputs) if v]
    if not xs:
        raise Unsupported("no inputs")
    first = xs[0]
    if len(xs) == 1:  # valid ONNX (DenseNet's torch.cat([x])): the identity
        axis = node.attrs.get("axis")
        if axis is None or not -first.rank <= axis < first.rank:
            raise Unsupported(f"axis={axis} for a rank-{first.rank} input")
        cx.define(node, first)
        return
    if any(x.perm != first.perm or x.order is not None for x in xs):
        raise Unsupported("inputs in different layouts, or flattened ones")
    axis = node.attrs.get("axis")
    if axis is None or not -first.rank <= axis < first.rank:
        raise Unsupported(f"axis={axis} for rank-{first.rank} inputs")
    cnnc_axis = first.perm[axis % first.rank]
    if cnnc_axis == 0:
        raise Unsupported("concatenating along the batch axis")
    given = cx.layer_arg(_hint(node), "axis")
    keyword = given if isinstance(given, int) and given % first.rank == cnnc_axis else (
        cnnc_axis - first.rank)
    layer = cx.layer(node, "concatenate", xs, {"axis": keyword}, hint=_hint(node))
    cx.define(node, Tensor(layer, first.perm, None, all(x.nonneg for x in xs)))


def _identity(cx: Context, node: OnnxNode) -> None:
    cx.define(node, cx.tensor(node, 0))


def _gather_flat(cx: Context, node: OnnxNode) -> None:
    """Gather(axis 0) of a whole tensor flattened, with constant indices that lay the
    elements out as the tensor itself or a transpose of it keeping the batch first: what
    PyTorch's dynamo exporter writes for as_strided (ConvNeXt's LayerNorm2d after pooling)."""
    x = cx.flat.get(node.inputs[0]) if node.inputs else None
    if x is None:
        raise Unsupported("cnnc gathers only constants, or the elements of a tensor flattened "
                          "batch and all, put back in place")
    idx = cx.constant(node, 1, "indices")
    if node.attrs.get("axis", 0) != 0 or idx is None or idx.dtype.kind not in "iu":
        raise Unsupported("cnnc gathers a flattened tensor only along axis 0 with integer "
                          "indices")
    have = (cx.batch, *x.onnx_shape[1:])
    cells = np.arange(prod(have)).reshape(have)
    if idx.ndim == len(have):
        from itertools import permutations

        for q in permutations(range(1, len(have))):
            view = cells.transpose((0, *q))
            if view.shape == idx.shape and np.array_equal(view, idx):
                perm = tuple(x.perm[a] for a in (0, *q))
                cx.define(node, Tensor(x.layer, perm, x.order, x.nonneg))
                return
    raise Unsupported(f"indices of shape {idx.shape} do not put a tensor of ONNX shape {have} "
                      "back in place or transpose it (cnnc gathers nothing else)")


def _cast(cx: Context, node: OnnxNode) -> None:
    """Cast of a computed tensor: to float32 it changes nothing (cnnc computes in float32);
    any other type is refused."""
    from onnx import TensorProto

    from cnnc.frontend.onnx_file import dtype_name

    to = node.attrs.get("to")
    if to != TensorProto.FLOAT:
        shown = dtype_name(to) if isinstance(to, int) else repr(to)
        raise Unsupported(f"to={shown}: cnnc computes in float32 and casts computed tensors "
                          "only to float32")
    cx.define(node, cx.tensor(node, 0))


def _shape(cx: Context, node: OnnxNode) -> None:
    """The shape of a computed tensor: a constant, with the batch size as BATCH."""
    x = cx.tensor(node, 0)
    dims = [BATCH if d is None else d for d in x.onnx_shape]
    cx.constants[node.outputs[0]] = slice_shape(dims, node)


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Rule:
    lower: Callable[[Context, OnnxNode], None]
    attrs: tuple[str, ...] = ()  # the attributes it reads; a node with any other is refused


WINDOW = ("auto_pad", "pads", "strides", "kernel_shape")

RULES: dict[str, Rule] = {
    "Conv": Rule(_conv, (*WINDOW, "dilations", "group")),
    "MaxPool": Rule(_maxpool, (*WINDOW, "ceil_mode", "dilations", "storage_order")),
    "AveragePool": Rule(_avgpool, (*WINDOW, "ceil_mode", "count_include_pad", "dilations")),
    "GlobalAveragePool": Rule(_global_avgpool),
    "ReduceMean": Rule(_reduce_mean, ("axes", "keepdims", "noop_with_empty_axes")),
    "Pad": Rule(_pad, ("mode", "pads", "value")),
    "Gemm": Rule(_gemm, ("alpha", "beta", "transA", "transB")),
    "MatMul": Rule(_matmul),
    # element-wise arithmetic, all through `arithmetic` (patterns, then onnx_arith.py)
    **{op: Rule(arithmetic) for op in ("Add", "Sum", "Sub", "Mul", "Div", "Max", "Min", "Mean")},
    "Relu": Rule(_activation),
    **{op: Rule(_activation, tuple(act.constants)) for op, act in BY_TABLE.items()},
    **{op: Rule(_activation, _attribute_names(op)) for op in BY_ATTRIBUTES},
    "LeakyRelu": Rule(_activation, ("alpha",)),
    "ThresholdedRelu": Rule(_activation, ("alpha",)),
    "Clip": Rule(_activation, ("min", "max")),
    "Softmax": Rule(_activation, ("axis",)),
    "BatchNormalization": Rule(_batchnorm, ("epsilon", "momentum", "spatial", "training_mode",
                                            "is_test")),
    "Dropout": Rule(_dropout, ("ratio", "seed", "is_test")),
    "Flatten": Rule(_flatten, ("axis",)),
    "Reshape": Rule(_reshape, ("allowzero",)),
    "Transpose": Rule(_transpose, ("perm",)),
    "Concat": Rule(_concat, ("axis",)),
    "Identity": Rule(_identity),
    "Cast": Rule(_cast, ("to", "saturate", "round_mode")),
    "Gather": Rule(_gather_flat, ("axis",)),
    "Shape": Rule(_shape, ("start", "end")),
    # Transposed convolution and resampling (onnx_resample.py)
    "ConvTranspose": Rule(onnx_resample.conv_transpose,
                          (*WINDOW, "dilations", "group", "output_padding", "output_shape")),
    "Resize": Rule(onnx_resample.resize,
                   ("mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a",
                    "exclude_outside", "extrapolation_value", "antialias", "axes",
                    "keep_aspect_ratio_policy")),
    "Slice": Rule(onnx_split.slice_, ("starts", "ends", "axes")),
}
# A split of the channels (onnx_split.py; Slice above dispatches there too)
RULES["Split"] = Rule(onnx_split.split, ("axis", "split", "num_outputs"))


# ---------------------------------------------------------------- local response normalisation
# (cnnc/ir/lrn.py): ONNX's LRN is cnnc's lrn, across the channel axis (ONNX axis 1).


def _lrn(cx: Context, node: OnnxNode) -> None:
    x = cx.tensor(node, 0)
    if x.order is not None or x.rank < 2 or x.perm[1] != x.rank - 1:
        raise Unsupported(f"an input of ONNX shape {x.onnx_shape} whose axis 1 is not cnnc's "
                          "channel axis (its last)")
    if "size" not in node.attrs:
        raise Unsupported("the required attribute size is missing")
    size = node.attrs["size"]
    if size % 2 == 0:
        raise Unsupported(f"size={size}: an even window has no centre (ONNX puts its extra "
                          "channel after, PyTorch before); cnnc's lrn takes odd sizes only")
    keywords = {"size": size, **{k: float32_value(node.attrs.get(k, default))
                                 for k, default in (("alpha", 1e-4), ("beta", 0.75),
                                                    ("bias", 1.0))}}
    layer = cx.layer(node, "lrn", [x], keywords, hint=_hint(node))
    cx.define(node, Tensor(layer, x.perm, None, x.nonneg))  # x's sign, scaled by a positive


RULES["LRN"] = Rule(_lrn, ("size", "alpha", "beta", "bias"))


# ---- issue 24 (ONNX's node cases on any rank): HardSigmoid with ONNX's own alpha, beta (its
# default 0.2, 0.5 is Keras 2's, not cnnc's hard_sigmoid): max(0, min(1, alpha x + beta)) is a
# per-channel affine map (a 1x1 depthwise convolution, as onnx_arith.affine) then a relu capped
# at 1, both exact.
def _hard_sigmoid(cx: Context, node: OnnxNode) -> None:
    table = BY_TABLE["HardSigmoid"].constants
    given = {k: node.attrs.get(k, _onnx_default(node.op, k)) for k in table}
    x = cx.tensor(node, 0)
    if (all(isclose(given[k], v, rel_tol=1e-6) for k, v in table.items())
            or x.rank != 4 or x.perm != NCHW):
        _activation(cx, node)  # cnnc's hard_sigmoid, or refused with its constants
        return
    channels = x.shape[-1]
    params = {"kernel": np.full((1, 1, channels, 1), given["alpha"], dtype=np.float32),
              "bias": np.full((channels,), given["beta"], dtype=np.float32)}
    hint = _hint(node)
    scaled = cx.layer(node, "depthwise_conv2d", [x], {"kernel_size": (1, 1), "use_bias": True},
                      params, hint=hint, value=f"{node.outputs[0]}/affine")
    layer = cx.layer(node, "activation", [Tensor(scaled, x.perm, x.order)],
                     {"activation": "relu", "max_value": 1.0}, hint=hint)
    cx.define(node, Tensor(layer, x.perm, x.order, True))


RULES["HardSigmoid"] = Rule(_hard_sigmoid, RULES["HardSigmoid"].attrs)


__all__ = ["ACTIVATIONS", "RULES", "Rule", "flatten_order", "float32_value"]
