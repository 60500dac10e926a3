"""ONNX front end rules for Split and Slice: a split or slice of the channel axis (PyTorch's
`chunk`/`split` on dim 1, ShuffleNetV2's channel split) lowered to cnnc's channel_slice, one per
output; a Slice of height and width handed to onnx_resample's cropping. Other forms are refused
with one message naming the node. Part of onnx_ops.RULES."""

from __future__ import annotations

from cnnc.frontend import onnx_resample
from cnnc.frontend.onnx_graph import OnnxNode
from cnnc.frontend.onnx_lowering import Context, Tensor, Unsupported, clean_name

SLICE_OP = "channel_slice"


def _channel_axis(x: Tensor, axis: int, what: str) -> int:
    """The ONNX axis `axis` of x, which must be its channel axis (cnnc's last); its size."""
    if x.order is not None:
        raise Unsupported(f"the input is a flattened map (its columns are not channels); cnnc "
                          f"{what} channels only")
    if not -x.rank <= axis < x.rank:
        raise Unsupported(f"axis={axis} for a rank-{x.rank} input")
    if x.perm[axis % x.rank] != x.rank - 1:
        raise Unsupported(f"axis={axis} is not the channel axis of the input (ONNX shape "
                          f"{x.onnx_shape}); cnnc {what} channels only")
    return int(x.shape[-1])


def _used(cx: Context, value: str) -> bool:
    return bool(value) and (value in cx.readers or value in cx.outputs)


def _slice_layer(cx: Context, node: OnnxNode, x: Tensor, start: int, stop: int, value: str,
                 part: int | None) -> None:
    hint = clean_name(node.name, node.op)
    if hint is not None and part is not None:
        hint = f"{hint}.{part}"
    layer = cx.layer(node, SLICE_OP, [x], {"start": start, "stop": stop}, hint=hint, value=value)
    cx.tensors[value] = Tensor(layer, x.perm, None, x.nonneg)


# ---------------------------------------------------------------- Split


def _sizes(cx: Context, node: OnnxNode, channels: int) -> list[int]:
    """The outputs' channel counts from `split` (attribute before opset 13, input from 13),
    else `num_outputs` (opset 18: ceil(C / n) each, the last the rest), else equal parts."""
    n = len(node.outputs)
    if "split" in node.attrs:
        sizes = [int(v) for v in node.attrs["split"]]
    elif len(node.inputs) > 1 and node.inputs[1]:
        sizes = [int(v) for v in cx.constant(node, 1, "split").reshape(-1)]
    elif "num_outputs" in node.attrs:
        k = int(node.attrs["num_outputs"])
        if k != n or k < 1:
            raise Unsupported(f"num_outputs={k} with {n} outputs")
        each = -(-channels // k)
        sizes = [min(each, max(channels - each * i, 0)) for i in range(k)]
    else:
        if channels % n:
            raise Unsupported(f"{channels} channels do not split into {n} equal parts")
        sizes = [channels // n] * n
    if len(sizes) != n or min(sizes) < 0 or sum(sizes) != channels:
        raise Unsupported(f"split={sizes} does not divide {channels} channels into {n} outputs")
    return sizes


def split(cx: Context, node: OnnxNode) -> None:
    """A Split of the channel axis: one channel_slice per used output (an empty or unread one
    gets none)."""
    x = cx.tensor(node, 0)
    channels = _channel_axis(x, int(node.attrs.get("axis", 0)), "splits")
    start = 0
    for i, size in enumerate(_sizes(cx, node, channels)):
        value = node.outputs[i]
        if _used(cx, value):
            if size == 0:
                raise Unsupported(f"output {i} ('{value}') is empty and is read")
            _slice_layer(cx, node, x, start, start + size, value, i)
        start += size


# ---------------------------------------------------------------- Slice


def _whole(x: Tensor, axis: int, start: int, end: int, step: int) -> bool:
    """Whether a range keeps all of its axis (PyTorch writes `0:INT64_MAX` for `:`)."""
    dim = x.onnx_shape[axis % x.rank] if -x.rank <= axis < x.rank else None
    return step == 1 and start == 0 and (end >= 2**31 - 1 or (dim is not None and end >= dim))


def slice_(cx: Context, node: OnnxNode) -> None:
    """The one dispatch point for Slice: a range of the channel axis with step 1 is a
    channel_slice; anything else goes to the cropping rule (height and width, step 1), which
    refuses what it cannot express."""
    x = cx.tensor(node, 0)
    if x.order is not None:
        raise Unsupported("the input is a flattened map (its columns are not channels)")
    channel = [r for r in onnx_resample.slice_ranges(cx, node)
               if -x.rank <= r[0] < x.rank and x.perm[r[0] % x.rank] == x.rank - 1]
    if not channel:
        onnx_resample.slice_(cx, node)
        return
    others = [r for r in onnx_resample.slice_ranges(cx, node)
              if r not in channel and not _whole(x, *r)]
    if others:
        raise Unsupported(f"it slices the channel axis together with ONNX axes "
                          f"{[r[0] for r in others]}; cnnc slices channels alone")
    (axis, start, end, step), *more = channel
    if more:
        raise Unsupported(f"axis {axis} is sliced twice")
    if step != 1:
        raise Unsupported(f"steps={step} on the channel axis: cnnc slices channels with step 1")
    n = int(x.shape[-1])
    lo = min(max(start + n if start < 0 else start, 0), n)
    hi = min(max(end + n if end < 0 else end, 0), n)
    if hi <= lo:
        raise Unsupported(f"it leaves nothing of the channel axis ({start}:{end} of {n})")
    if (lo, hi) == (0, n):
        cx.define(node, x)  # the whole axis: nothing to do
        return
    _slice_layer(cx, node, x, lo, hi, node.outputs[0], None)


__all__ = ["SLICE_OP", "slice_", "split"]
