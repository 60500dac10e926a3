"""ONNX front end rules for ConvTranspose, Resize and Slice: lowered exactly to cnnc's
conv2d_transpose, upsampling2d and cropping2d (with a cropping after a transposed convolution
whose padding no Keras argument gives), or refused with one message naming what is not
expressible. Part of onnx_ops.RULES."""

from __future__ import annotations

from itertools import product
from typing import Any

import numpy as np

from cnnc.frontend.onnx_fold import BATCH
from cnnc.frontend.onnx_graph import OnnxNode
from cnnc.frontend.onnx_lowering import NCHW, Context, Tensor, Unsupported, clean_name
from cnnc.ir.conv_transpose import transpose_window

CROP_OP = "cropping2d"


def _hint(node: OnnxNode) -> str | None:
    return clean_name(node.name, node.op)


def _needs_image(x: Tensor) -> None:
    if x.rank != 4 or x.perm != NCHW:
        raise Unsupported(f"the input has ONNX shape {x.onnx_shape}; cnnc lowers this op on 4-D "
                          "NCHW tensors only")


def _pair(node: OnnxNode, name: str, default: tuple[int, int]) -> tuple[int, int]:
    value = tuple(node.attrs.get(name, default))
    if len(value) != 2:
        raise Unsupported(f"{name}={list(value)}: cnnc lowers 2-D windows")
    return (int(value[0]), int(value[1]))


# ---------------------------------------------------------------- ConvTranspose


def _onnx_window(node: OnnxNode, in_hw: tuple[int, int], kernel: tuple[int, int],
                 strides: tuple[int, int], dilations: tuple[int, int]
                 ) -> tuple[tuple[int, int], tuple[int, int]]:
    """(output size, padding before) per axis, as the ONNX spec computes them."""
    extra = _pair(node, "output_padding", (0, 0))
    auto = node.attrs.get("auto_pad", "NOTSET")
    if isinstance(auto, bytes):
        auto = auto.decode()
    spans = [dilations[i] * (kernel[i] - 1) + 1 for i in range(2)]
    full = [strides[i] * (in_hw[i] - 1) + extra[i] + spans[i] for i in range(2)]
    shape = node.attrs.get("output_shape")
    if shape is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
        if shape is not None:
            out = [int(v) for v in tuple(shape)[-2:]]
        else:
            out = [in_hw[i] * strides[i] for i in range(2)]
        total = [full[i] - out[i] for i in range(2)]
        if min(total) < 0:
            raise Unsupported(f"output_shape {out} is larger than the windows reach")
        # The spec's (and onnxruntime's): the smaller half before only for SAME_UPPER.
        upper = auto == "SAME_UPPER"
        before = [t // 2 if upper else t - t // 2 for t in total]
        return (out[0], out[1]), (before[0], before[1])
    if auto == "VALID":
        return (full[0], full[1]), (0, 0)
    if auto != "NOTSET":
        raise Unsupported(f"auto_pad={auto!r}")
    pads = tuple(node.attrs.get("pads", (0, 0, 0, 0)))
    if len(pads) != 4 or min(pads) < 0:
        raise Unsupported(f"pads={list(pads)}: cnnc takes 4 non-negative pads")
    out = [full[i] - pads[i] - pads[i + 2] for i in range(2)]
    return (out[0], out[1]), (pads[0], pads[1])


def _keras_form(cx: Context, node: OnnxNode, keywords: dict[str, Any], in_hw: tuple[int, int],
                out: tuple[int, int], before: tuple[int, int]) -> dict[str, Any] | None:
    """Keras' padding and output_padding that give this window, the exported ones first."""
    hint = _hint(node)
    given_pad = cx.layer_arg(hint, "padding")
    given_op = cx.layer_arg(hint, "output_padding")
    paddings = [p for p in (given_pad, "valid", "same") if p is not None]
    ranges = [range(s) for s in keywords["strides"]]
    extras: list[Any] = [tuple(given_op) if given_op is not None else None, None,
                         *product(*ranges)]
    for padding in dict.fromkeys(paddings):
        for extra in dict.fromkeys(extras):
            attrs = {**keywords, "padding": padding, "output_padding": extra}
            win = transpose_window(attrs, in_hw)
            if win.out_hw == out and win.pad_before == before:
                return {"padding": padding, "output_padding": extra}
    return None


def conv_transpose(cx: Context, node: OnnxNode) -> None:
    x = cx.tensor(node, 0)
    _needs_image(x)
    w = cx.weight(node, 1, "the weight W")
    if w is None or w.ndim != 4:
        raise Unsupported("W must be a 4-D constant: cnnc lowers 2-D transposed convolutions")
    cin, filters, kh, kw = w.shape
    group = int(node.attrs.get("group", 1))
    if group != 1:
        raise Unsupported(f"group={group}: cnnc's conv2d_transpose has no groups")
    if cin != x.shape[3]:
        raise Unsupported(f"W of shape {w.shape} does not fit an input of {x.shape[3]} channels")
    kernel = _pair(node, "kernel_shape", (kh, kw))
    if kernel != (kh, kw):
        raise Unsupported(f"kernel_shape={list(kernel)} differs from W's {[kh, kw]}")
    strides = _pair(node, "strides", (1, 1))
    dilations = _pair(node, "dilations", (1, 1))
    bias = cx.weight(node, 2, "the bias B", (filters,))
    in_hw = (int(x.shape[1]), int(x.shape[2]))
    out, before = _onnx_window(node, in_hw, kernel, strides, dilations)
    if min(out) <= 0:
        raise Unsupported(f"the output would be {out[0]}x{out[1]}")
    keywords: dict[str, Any] = {"filters": filters, "kernel_size": kernel, "strides": strides,
                                "dilation_rate": dilations, "use_bias": bias is not None}
    form = _keras_form(cx, node, keywords, in_hw, out, before)
    crop = None
    if form is None:
        # No Keras padding gives this window: the 'valid' one, which holds it, then a crop.
        valid = transpose_window({**keywords, "padding": "valid", "output_padding": None},
                                 in_hw)
        extra = tuple(max(0, before[i] + out[i] - valid.out_hw[i]) for i in range(2))
        if any(e >= s for e, s in zip(extra, strides)):
            raise Unsupported(f"its output ({out[0]}x{out[1]}, padding before {list(before)}) "
                              "reaches past what any Keras padding gives")
        form = {"padding": "valid", "output_padding": extra if any(extra) else None}
        full = transpose_window({**keywords, **form}, in_hw).out_hw
        crop = tuple((before[i], full[i] - before[i] - out[i]) for i in range(2))
    keywords.update(form)
    hint = _hint(node)
    params = {"kernel": np.ascontiguousarray(w.transpose(2, 3, 1, 0))}  # -> (kh, kw, F, C)
    if bias is not None:
        params["bias"] = bias
    if crop is None:
        layer = cx.layer(node, "conv2d_transpose", [x], keywords, params, hint=hint)
        cx.define(node, Tensor(layer, NCHW))
        return
    cx.infer(CROP_OP, {"cropping": crop},
             [cx.infer("conv2d_transpose", keywords, [x.shape])])
    full_layer = cx.layer(node, "conv2d_transpose", [x], keywords, params, hint=hint,
                          value="")
    layer = cx.layer(node, CROP_OP, [Tensor(full_layer, NCHW)], {"cropping": crop},
                     hint=f"{hint}.crop" if hint else None)
    cx.define(node, Tensor(layer, NCHW))


# ---------------------------------------------------------------- Resize


def _text(node: OnnxNode, name: str, default: str) -> str:
    value = node.attrs.get(name, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def resize(cx: Context, node: OnnxNode) -> None:
    x = cx.tensor(node, 0)
    _needs_image(x)
    if len(node.inputs) == 2:  # opset 10: (X, scales)
        scales, sizes = cx.constant(node, 1, "scales"), None
    else:
        scales = cx.constant(node, 2, "scales") if len(node.inputs) > 2 else None
        sizes = cx.constant(node, 3, "sizes") if len(node.inputs) > 3 else None
    if scales is not None and scales.size == 0:
        scales = None
    rank = 4
    axes = tuple(int(a) % rank for a in node.attrs.get("axes", range(rank)))
    onnx_in = x.onnx_shape
    factors = {a: 1 for a in range(rank)}
    if sizes is not None and sizes.size:
        if _text(node, "keep_aspect_ratio_policy", "stretch") != "stretch":
            raise Unsupported("keep_aspect_ratio_policy other than 'stretch'")
        for a, size in zip(axes, sizes.reshape(-1)):
            if onnx_in[a] is None:  # the batch: a folded Shape, or the model's fixed batch
                if int(size) not in (BATCH, cx.batch):
                    raise Unsupported(f"sizes set the batch axis to {int(size)}")
                continue
            if int(size) % int(onnx_in[a]):
                raise Unsupported(f"sizes={[int(s) for s in sizes.reshape(-1)]} are not whole "
                                  f"multiples of the input's {list(onnx_in)}: cnnc's "
                                  "upsampling2d enlarges by integer factors only")
            factors[a] = int(size) // int(onnx_in[a])
    elif scales is not None:
        for a, scale in zip(axes, scales.reshape(-1)):
            if float(scale) != round(float(scale)) or scale < 1:
                raise Unsupported(f"scales={[float(s) for s in scales.reshape(-1)]} are not "
                                  "integer factors: cnnc's upsampling2d enlarges by whole "
                                  "numbers only")
            factors[a] = round(float(scale))
    else:
        raise Unsupported("it has neither scales nor sizes")
    if factors[0] != 1 or factors[1] != 1:
        raise Unsupported(f"it scales the batch or channel axis (factors {factors[0]}, "
                          f"{factors[1]}): cnnc's upsampling2d enlarges height and width only")
    mode = _text(node, "mode", "nearest")
    coords = _text(node, "coordinate_transformation_mode", "half_pixel")
    if mode == "nearest":
        rounding = _text(node, "nearest_mode", "round_prefer_floor")
        # Both read input pixel floor(o / s) for an integer s: PyTorch's nearest (asymmetric,
        # floor) and half-pixel centres rounded either way (no tie can occur).
        exact = ((coords == "asymmetric" and rounding == "floor")
                 or (coords in ("half_pixel", "pytorch_half_pixel")
                     and rounding in ("round_prefer_floor", "round_prefer_ceil")))
        if not exact:
            raise Unsupported(f"nearest with coordinate_transformation_mode={coords!r} and "
                              f"nearest_mode={rounding!r} does not repeat pixels as cnnc's "
                              "nearest upsampling2d does")
        interpolation = "nearest"
    elif mode == "linear":
        if coords not in ("half_pixel", "pytorch_half_pixel"):
            raise Unsupported(f"linear with coordinate_transformation_mode={coords!r}: cnnc's "
                              "bilinear upsampling2d has half-pixel centres (PyTorch "
                              "align_corners=False)")
        if int(node.attrs.get("exclude_outside", 0)):
            raise Unsupported("exclude_outside=1")
        interpolation = "bilinear"
    else:
        raise Unsupported(f"mode={mode!r}: cnnc's upsampling2d is nearest or bilinear")
    size = (factors[2], factors[3])
    layer = cx.layer(node, "upsampling2d", [x], {"size": size, "interpolation": interpolation},
                     hint=_hint(node))
    cx.define(node, Tensor(layer, NCHW, None, x.nonneg and interpolation == "nearest"))


# ---------------------------------------------------------------- Slice


def slice_ranges(cx: Context, node: OnnxNode) -> list[tuple[int, int, int, int]]:
    """(axis, start, end, step) per sliced axis, from attributes (opset 1-9) or inputs."""
    if "starts" in node.attrs:
        starts = [int(v) for v in node.attrs["starts"]]
        ends = [int(v) for v in node.attrs["ends"]]
        axes = [int(v) for v in node.attrs.get("axes", range(len(starts)))]
        steps = [1] * len(starts)
    else:
        starts = [int(v) for v in cx.constant(node, 1, "starts").reshape(-1)]
        ends = [int(v) for v in cx.constant(node, 2, "ends").reshape(-1)]
        a = cx.constant(node, 3, "axes") if len(node.inputs) > 3 else None
        s = cx.constant(node, 4, "steps") if len(node.inputs) > 4 else None
        axes = list(range(len(starts))) if a is None else [int(v) for v in a.reshape(-1)]
        steps = [1] * len(starts) if s is None else [int(v) for v in s.reshape(-1)]
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise Unsupported(f"starts, ends, axes and steps of different lengths ({len(starts)}, "
                          f"{len(ends)}, {len(axes)}, {len(steps)})")
    return list(zip(axes, starts, ends, steps))


def slice_(cx: Context, node: OnnxNode) -> None:
    """A slice of height and width only, with step 1: Keras' Cropping2D."""
    x = cx.tensor(node, 0)
    _needs_image(x)
    ranges = slice_ranges(cx, node)
    axes, starts, ends, steps = (list(v) for v in zip(*ranges)) if ranges else ([], [], [], [])
    shape = x.onnx_shape
    cut = {1: (0, 0), 2: (0, 0)}
    for axis, start, end, step in zip(axes, starts, ends, steps):
        axis %= 4
        n = int(shape[axis]) if shape[axis] is not None else None
        if step != 1:
            raise Unsupported(f"steps={steps}: cnnc crops with step 1 only")
        if n is None:
            if start == 0 and end >= 2**31 - 1:
                continue
            raise Unsupported(f"it slices the batch axis ({start}:{end})")
        lo = min(max(start + n if start < 0 else start, 0), n)
        hi = min(max(end + n if end < 0 else end, 0), n)
        if (lo, hi) == (0, n):
            continue
        if x.perm[axis] not in (1, 2):
            raise Unsupported(f"it slices ONNX axis {axis} ({start}:{end}): cnnc crops height "
                              "and width only")
        if hi <= lo:
            raise Unsupported(f"it leaves nothing of axis {axis} ({start}:{end})")
        cut[x.perm[axis]] = (lo, n - hi)
    layer = cx.layer(node, CROP_OP, [x], {"cropping": (cut[1], cut[2])}, hint=_hint(node))
    cx.define(node, Tensor(layer, x.perm, None, x.nonneg))


__all__ = ["CROP_OP", "conv_transpose", "resize", "slice_"]
