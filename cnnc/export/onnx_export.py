"""ONNX export: a layer graph and its weights -> an ONNX model that onnx.checker accepts.

The body is NCHW, as the ONNX world expects: kernels are converted once (HWIO -> OIHW), and
cnnc's NHWC flatten becomes either ONNX's Flatten with the next dense kernel's rows permuted
(PyTorch's form, when only dense layers read it) or a transpose back to NHWC first. With
layout='nhwc' the model's 4-D inputs and outputs stay NHWC, behind a transpose each (tf2onnx's
form). Every ONNX node is named after its cnnc layer ('conv2d_1'; helper nodes
'conv2d_1/relu'), initialisers after cnnc's parameters ('conv2d_1/kernel'), and what ONNX
cannot state (Keras' default pool strides, 'same' on a window that needs no padding, a batch
norm without gamma) goes into the model's metadata, so importing the file gives back an equal
graph (cnnc/frontend/onnx_import.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnc.atomic import atomic_write
from cnnc.backends.numpy.fused_impls import fold_batchnorm
from cnnc.errors import CnncError, InternalError
from cnnc.export.onnx_activations import DECOMPOSITIONS
from cnnc.frontend.onnx_file import require_onnx
from cnnc.frontend.onnx_import import LAYER_ARGS_KEY, PRODUCER, TRAIN_KEY
from cnnc.frontend.onnx_ops import flatten_order
from cnnc.ir.activations import ACTIVATIONS as CNNC_ACTIVATIONS
from cnnc.ir.activations import parameters
from cnnc.ir.conv_transpose import transpose_window
from cnnc.ir.convpool import pad_amounts
from cnnc.ir.graph import Graph, Node
from cnnc.ir.layers import pool_strides
from cnnc.passes.fold_batchnorm import folds_into

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax over one axis, Dropout's ratio input, Clip's bounds as inputs
LAYOUTS = ("nchw", "nhwc")
NCHW = (0, 3, 1, 2)  # ONNX axis i of a 4-D body value is cnnc axis NCHW[i]
TO_NCHW = (0, 3, 1, 2)  # Transpose perm: NHWC -> NCHW
TO_NHWC = (0, 2, 3, 1)  # Transpose perm: NCHW -> NHWC
BATCH_DIM = "batch"


class ExportError(CnncError):
    """A graph or setting that cannot be written as ONNX."""


@dataclass
class Value:
    """How the ONNX body holds a cnnc value: the tensor's name and, for a flattened NCHW value,
    the cnnc column of each ONNX column (absorbed by the dense kernel that reads it)."""

    name: str
    order: np.ndarray | None = None


@dataclass
class Exporter:
    graph: Graph
    weights: Mapping[str, np.ndarray]
    layout: str
    fold_bn: bool
    helper: Any
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    values: dict[str, Value] = field(default_factory=dict)
    layer_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    folded: dict[str, str] = field(default_factory=dict)  # batch norm -> the layer it joins
    opset: int = DEFAULT_OPSET  # the file's: an activation without an operator there decomposes

    # ------------------------------------------------------------ helpers

    def rank(self, value: str) -> int:
        return len(self.graph.shape_of(value))

    def out(self, node: Node) -> str:
        """The tensor name of a layer's final result: its name, unless a transpose back to
        NHWC (layout='nhwc') must come after it as the graph's output."""
        name = self.folded_into.get(node.name, node.name)
        if self.layout == "nhwc" and name in self.graph.outputs and self.rank(name) == 4:
            return f"{name}/nchw"
        return name

    def value(self, name: str) -> Value:
        return self.values[name]

    def weight(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        # np.array, not np.ascontiguousarray, which makes a 0-d ratio 1-d.
        self.initializers.append(numpy_helper.from_array(
            np.array(array, dtype=np.float32, order="C"), name))
        return name

    def weight_ints(self, name: str, values: list[int]) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.array(values, np.int64), name))
        return name

    def add(self, op: str, inputs: list[str], outputs: list[str], name: str,
            **attrs: Any) -> None:
        self.nodes.append(self.helper.make_node(op, inputs, outputs, name=name, **attrs))

    def note(self, layer: str, arg: str, value: Any) -> None:
        self.layer_args.setdefault(layer, {})[arg] = value

    @property
    def folded_into(self) -> dict[str, str]:
        """conv/dense name -> the batch norm folded into it (whose name its result takes)."""
        return {v: k for k, v in self.folded.items()}

    def kernel_and_bias(self, node: Node) -> tuple[np.ndarray, np.ndarray | None]:
        """A conv/dense node's kernel and bias (None without one), with the batch norm after it
        folded in where --fold-bn folds it: as the inference graph's folded op computes them
        (cnnc/backends/numpy/fused_impls.py), so the file's weights are the ones cnnc runs."""
        kernel = np.asarray(self.weights[node.params[0]], dtype=np.float32)
        bias = (np.asarray(self.weights[node.params[1]], dtype=np.float32)
                if node.attrs["use_bias"] else None)
        if node.name not in self.folded_into:
            return kernel, bias
        bn = self.graph.node(self.folded_into[node.name])
        state = [np.asarray(self.weights[p], dtype=np.float32) for p in bn.params]
        return fold_batchnorm(bn.attrs, kernel, bias, state, np.dtype(np.float32))

    def activation(self, node: Node, act: str, src: str, dst: str, rank: int,
                   name: str) -> None:
        """The ONNX node computing cnnc activation `act` from src into dst: the ONNX operator
        its row of the activations table names, with its constants, or for a ReLU the Keras
        ReLU it equals (relu6: Clip(0, 6))."""
        row = CNNC_ACTIVATIONS[act]
        if act == "linear":
            self.add("Identity", [src], [dst], name)
        elif act == "softmax":
            self.add("Softmax", [src], [dst], name, axis=1 if rank == 4 else -1)
        elif row.relu is not None:
            self.keras_relu(src, dst, name, row.relu)
        elif row.onnx is not None and self.opset >= row.onnx_since:
            self.add(row.onnx, [src], [dst], name, **row.constants, **row.onnx_attrs)
        elif act in DECOMPOSITIONS:  # no operator at this opset (gelu before 20)
            DECOMPOSITIONS[act](self, src, dst, name)
        else:
            raise ExportError(f"{node.name}: activation '{act}' has no ONNX export yet")

    def keras_relu(self, src: str, dst: str, name: str, given: Mapping[str, float]) -> None:
        """Keras' ReLU with at most one argument off its default: Relu, Clip(0, max_value),
        LeakyRelu or ThresholdedRelu."""
        if not given:
            self.add("Relu", [src], [dst], name)
        elif "max_value" in given:
            low = self.weight(f"{name}/min", np.array(0.0))
            high = self.weight(f"{name}/max", np.array(given["max_value"]))
            self.add("Clip", [src, low, high], [dst], name)
        elif "negative_slope" in given:
            self.add("LeakyRelu", [src], [dst], name, alpha=given["negative_slope"])
        else:
            self.add("ThresholdedRelu", [src], [dst], name, alpha=given["threshold"])

    def with_activation(self, node: Node, op: str, inputs: list[str], **attrs: Any) -> None:
        """A conv/dense node, then its fused activation as a node named '<layer>/<act>'."""
        act = node.attrs["activation"]
        out = self.out(node)
        if act == "linear":
            self.add(op, inputs, [out], node.name, **attrs)
        else:
            self.add(op, inputs, [f"{node.name}/preact"], node.name, **attrs)
            self.activation(node, act, f"{node.name}/preact", out, self.rank(node.name),
                            f"{node.name}/{act}")
        self.values[self.folded_into.get(node.name, node.name)] = Value(out)


def _window_pads(node: Node, in_shape: tuple, kernel: tuple[int, int],
                 strides: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> list[int]:
    """ONNX pads [top, left, bottom, right] for the node's Keras padding."""
    padding = node.attrs["padding"]
    (pt, pb), (pl, pr) = (pad_amounts(in_shape[i + 1], kernel[i], strides[i], padding,
                                      dilation[i]) for i in range(2))
    return [pt, pl, pb, pr]


def _note_padding(ex: Exporter, node: Node, pads: list[int]) -> None:
    if node.attrs["padding"] == "same" and not any(pads):
        ex.note(node.name, "padding", "same")  # ONNX cannot tell it from 'valid' here


# ---------------------------------------------------------------- per-op exporters


def _input(ex: Exporter, node: Node) -> None:
    if ex.rank(node.name) == 4 and ex.layout == "nhwc":
        ex.add("Transpose", [node.name], [f"{node.name}/nchw"], f"{node.name}/nchw",
               perm=list(TO_NCHW))
        ex.values[node.name] = Value(f"{node.name}/nchw")
    else:
        ex.values[node.name] = Value(node.name)


def _conv2d(ex: Exporter, node: Node) -> None:
    a = node.attrs
    x = node.inputs[0]
    kernel, bias = ex.kernel_and_bias(node)
    pads = _window_pads(node, ex.graph.shape_of(x), a["kernel_size"], a["strides"],
                        a["dilation_rate"])
    _note_padding(ex, node, pads)
    inputs = [ex.value(x).name,
              ex.weight(node.params[0], kernel.transpose(3, 2, 0, 1))]  # HWIO -> OIHW
    if bias is not None:
        inputs.append(ex.weight(f"{node.name}/bias", bias))
    ex.with_activation(node, "Conv", inputs, kernel_shape=list(a["kernel_size"]),
                       strides=list(a["strides"]), dilations=list(a["dilation_rate"]),
                       group=a["groups"], pads=pads)


def _depthwise_conv2d(ex: Exporter, node: Node) -> None:
    """A Conv with one group per input channel; the import reads it back as depthwise_conv2d
    (a grouped conv2d computes the same) because the metadata says so."""
    a = node.attrs
    x = node.inputs[0]
    kernel, bias = ex.kernel_and_bias(node)  # (kh, kw, channels, depth_multiplier)
    kh, kw, channels, mult = kernel.shape
    pads = _window_pads(node, ex.graph.shape_of(x), a["kernel_size"], a["strides"],
                        a["dilation_rate"])
    _note_padding(ex, node, pads)
    ex.note(node.name, "op", "depthwise_conv2d")
    onnx_kernel = kernel.reshape(kh, kw, channels * mult).transpose(2, 0, 1)[:, None]
    inputs = [ex.value(x).name, ex.weight(node.params[0], onnx_kernel)]
    if bias is not None:
        inputs.append(ex.weight(f"{node.name}/bias", bias))
    ex.with_activation(node, "Conv", inputs, kernel_shape=[kh, kw], strides=list(a["strides"]),
                       dilations=list(a["dilation_rate"]), group=channels, pads=pads)


def _dense(ex: Exporter, node: Node) -> None:
    x = node.inputs[0]
    if ex.rank(x) == 4:
        _dense_as_conv(ex, node)
        return
    if ex.rank(x) != 2:
        raise ExportError(f"{node.name}: a dense layer on a rank-{ex.rank(x)} input has no ONNX "
                          "export yet (flatten first)")
    src = ex.value(x)
    kernel, bias = ex.kernel_and_bias(node)
    if src.order is not None:
        kernel = kernel[src.order]  # ONNX column j is cnnc column order[j]
    inputs = [src.name, ex.weight(node.params[0], kernel)]
    if bias is not None:
        inputs.append(ex.weight(f"{node.name}/bias", bias))
    ex.with_activation(node, "Gemm", inputs)


def _dense_as_conv(ex: Exporter, node: Node) -> None:
    """A dense layer on an NHWC input acts on the channels: a 1x1 Conv on the NCHW body (the
    squeeze-excite block's Dense after Reshape((1, 1, C))); the metadata says it was a dense."""
    kernel, bias = ex.kernel_and_bias(node)
    inputs = [ex.value(node.inputs[0]).name,
              ex.weight(node.params[0], kernel.T[:, :, None, None])]
    if bias is not None:
        inputs.append(ex.weight(f"{node.name}/bias", bias))
    ex.note(node.name, "op", "dense")
    ex.with_activation(node, "Conv", inputs, kernel_shape=[1, 1])


def _pool(ex: Exporter, node: Node) -> None:
    a = node.attrs
    x = node.inputs[0]
    strides = pool_strides(a)
    if a["pads"] is None:
        pads = _window_pads(node, ex.graph.shape_of(x), a["pool_size"], strides,
                            a["dilation_rate"])
        _note_padding(ex, node, pads)
    else:
        t, b, left, r = a["pads"]
        pads = [t, left, b, r]  # ONNX: begins, then ends
        ex.note(node.name, "pads", list(a["pads"]))  # not Keras' even where they agree
    if a["strides"] is not None and a["strides"] == a["pool_size"]:
        ex.note(node.name, "strides", list(a["strides"]))  # given, though Keras' default
    attrs: dict[str, Any] = {"kernel_shape": list(a["pool_size"]), "strides": list(strides),
                             "pads": pads}
    attrs.update(_pool_onnx_attrs(ex, node))
    op = "MaxPool"
    if node.op == "avgpool2d":
        op = "AveragePool"  # cnnc averages the real cells unless count_include_pad says
        attrs["count_include_pad"] = int(a["count_include_pad"])
        if a["count_include_pad"] and a["padding"] == "same":
            ex.note(node.name, "padding", "same")  # else read back as the pads it gives
    ex.add(op, [ex.value(x).name], [ex.out(node)], node.name, **attrs)
    ex.values[node.name] = Value(ex.out(node))


AVGPOOL_DILATIONS_OPSET = 19  # AveragePool's dilations attribute


def _pool_onnx_attrs(ex: Exporter, node: Node) -> dict[str, Any]:
    """ceil_mode and dilations, written only when used (older readers know neither)."""
    a = node.attrs
    attrs: dict[str, Any] = {}
    if a["ceil_mode"]:
        attrs["ceil_mode"] = 1
    if a["dilation_rate"] != (1, 1):
        if node.op == "avgpool2d" and ex.opset < AVGPOOL_DILATIONS_OPSET:
            raise ExportError(f"{node.name}: ONNX's AveragePool takes dilations from opset "
                              f"{AVGPOOL_DILATIONS_OPSET}; got opset {ex.opset}")
        attrs["dilations"] = list(a["dilation_rate"])
    return attrs


def _global_avgpool2d(ex: Exporter, node: Node) -> None:
    src = ex.value(node.inputs[0]).name
    if node.attrs["keepdims"]:
        ex.add("GlobalAveragePool", [src], [ex.out(node)], node.name)
    else:
        ex.add("GlobalAveragePool", [src], [f"{node.name}/pooled"], node.name)
        ex.add("Flatten", [f"{node.name}/pooled"], [ex.out(node)], f"{node.name}/flatten",
               axis=1)
    ex.values[node.name] = Value(ex.out(node))


def _zero_padding2d(ex: Exporter, node: Node) -> None:
    (t, b), (left, r) = node.attrs["padding"]
    pads = ex.weight_ints(f"{node.name}/pads", [0, 0, t, left, 0, 0, b, r])  # NCHW begins, ends
    ex.add("Pad", [ex.value(node.inputs[0]).name, pads], [ex.out(node)], node.name,
           mode="constant")
    ex.values[node.name] = Value(ex.out(node))


def _flatten(ex: Exporter, node: Node) -> None:
    x = node.inputs[0]
    shape = ex.graph.shape_of(x)
    src = ex.value(x).name
    readers = ex.graph.consumers.get(node.name, ())
    out = ex.out(node)
    if len(shape) != 4:
        ex.add("Flatten", [src], [out], node.name, axis=1)
        ex.values[node.name] = Value(out)
        return
    if readers and node.name not in ex.graph.outputs and all(
            ex.graph.node(r).op == "dense" for r in readers):
        # PyTorch's form: flatten NCHW, and the dense kernels take the permutation.
        ex.add("Flatten", [src], [out], node.name, axis=1)
        ex.values[node.name] = Value(out, flatten_order(shape, NCHW))
        return
    ex.add("Transpose", [src], [f"{node.name}/nhwc"], f"{node.name}/nhwc", perm=list(TO_NHWC))
    ex.add("Flatten", [f"{node.name}/nhwc"], [out], node.name, axis=1)
    ex.values[node.name] = Value(out)


def _dropout(ex: Exporter, node: Node) -> None:
    ratio = ex.weight(f"{node.name}/ratio", np.array(node.attrs["rate"], dtype=np.float32))
    if node.attrs["seed"] is not None:
        ex.note(node.name, "seed", node.attrs["seed"])
    ex.add("Dropout", [ex.value(node.inputs[0]).name, ratio], [ex.out(node)], node.name)
    ex.values[node.name] = Value(ex.out(node))


def _batchnorm(ex: Exporter, node: Node) -> None:
    if node.name in ex.folded:
        return  # computed by the layer it was folded into
    a = node.attrs
    x = node.inputs[0]
    if ex.value(x).order is not None:
        raise InternalError(f"{node.name}: batch norm on a permuted flatten")
    by_suffix = {p.rsplit("/", 1)[-1]: p for p in node.params}
    channels = ex.graph.shape_of(x)[-1]
    names = []
    for suffix, default in (("gamma", 1.0), ("beta", 0.0)):
        if suffix in by_suffix:
            names.append(ex.weight(by_suffix[suffix], ex.weights[by_suffix[suffix]]))
        else:
            ex.note(node.name, "scale" if suffix == "gamma" else "center", False)
            names.append(ex.weight(f"{node.name}/{suffix}", np.full(channels, default)))
    for suffix in ("moving_mean", "moving_variance"):
        names.append(ex.weight(by_suffix[suffix], ex.weights[by_suffix[suffix]]))
    ex.add("BatchNormalization", [ex.value(x).name, *names], [ex.out(node)], node.name,
           epsilon=a["epsilon"], momentum=a["momentum"])
    ex.values[node.name] = Value(ex.out(node))


def _activation(ex: Exporter, node: Node) -> None:
    src = ex.value(node.inputs[0])
    if parameters(node.attrs):
        _relu_with_parameters(ex, node, src.name)
    else:
        ex.activation(node, node.attrs["activation"], src.name, ex.out(node),
                      ex.rank(node.name), node.name)
    ex.values[node.name] = Value(ex.out(node), src.order)


def _relu_with_parameters(ex: Exporter, node: Node, src: str) -> None:
    """Keras' ReLU with one argument as Clip(0, max), LeakyRelu or ThresholdedRelu; the metadata
    says it had parameters (`op: relu`, as the export of the former relu layer said), so that
    the import does not make ReLU(max_value=6) the relu6 activation."""
    given = parameters(node.attrs)
    if len(given) > 1:
        raise ExportError(f"{node.name}: a relu with more than one of max_value, negative_slope "
                          f"and threshold ({', '.join(sorted(given))}) has no ONNX export yet")
    ex.note(node.name, "op", "relu")
    ex.keras_relu(src, ex.out(node), node.name, given)


def _add(ex: Exporter, node: Node) -> None:
    srcs = _merge_operands(ex, node)
    ex.add("Add" if len(srcs) == 2 else "Sum", srcs, [ex.out(node)], node.name)
    ex.values[node.name] = Value(ex.out(node))


# ---------------------------------------------------------------- broadcasting merges, reshape


def _merge_operands(ex: Exporter, node: Node) -> list[str]:
    """A merge's inputs as ONNX tensors that broadcast as cnnc's do: cnnc gives a lower-rank
    input size-1 axes after the batch axis, ONNX before it, so such an input is reshaped to
    its cnnc broadcast shape in the body's layout ((N, C) -> NCHW (N, C, 1, 1))."""
    out_rank = ex.rank(node.name)
    names = []
    for i, v in enumerate(node.inputs):
        src = ex.value(v)
        if src.order is not None:
            raise InternalError(f"{node.name}: {node.op} of a permuted flatten")
        shape = ex.graph.shape_of(v)
        if len(shape) == out_rank:
            names.append(src.name)
            continue
        name = src.name
        padded = (*(1,) * (out_rank - len(shape)), *shape[1:])
        if out_rank == 4:
            if len(shape) == 3 and shape[1] != 1:  # (N, W, C): the channels first
                name = f"{node.name}/in{i}/nchw"
                ex.add("Transpose", [src.name], [name], name, perm=[0, 2, 1])
            padded = (padded[2], padded[0], padded[1])
        dims = ex.weight_ints(f"{node.name}/in{i}/shape", [0, *padded])
        out = f"{node.name}/in{i}"
        ex.add("Reshape", [name, dims], [out], out)
        names.append(out)
    return names


# cnnc merge -> its ONNX operator and whether that one takes more than two inputs
MERGE_OPS = {"multiply": ("Mul", False), "subtract": ("Sub", False), "maximum": ("Max", True),
             "minimum": ("Min", True), "average": ("Mean", True)}


def _merge(ex: Exporter, node: Node) -> None:
    op, variadic = MERGE_OPS[node.op]
    srcs = _merge_operands(ex, node)
    acc = srcs[0]
    rest = [srcs[1:]] if variadic else [[s] for s in srcs[1:]]
    for k, more in enumerate(rest):
        last = k == len(rest) - 1
        out = ex.out(node) if last else f"{node.name}/{k}"
        ex.add(op, [acc, *more], [out], node.name if last else out)
        acc = out
    ex.values[node.name] = Value(ex.out(node))


def _reshape(ex: Exporter, node: Node) -> None:
    """Channels only, so the bytes are in the same order in every layout: one Reshape to the
    body's shape of the result ((1, 1, C) is NCHW (C, 1, 1))."""
    src = ex.value(node.inputs[0])
    if src.order is not None:
        raise InternalError(f"{node.name}: reshape of a permuted flatten")
    target = ex.graph.shape_of(node.name)[1:]
    body = (target[-1], *target[:-1]) if len(target) == 3 else target
    dims = ex.weight_ints(f"{node.name}/shape", [0, *body])
    ex.add("Reshape", [src.name, dims], [ex.out(node)], node.name)
    ex.note(node.name, "target_shape", list(node.attrs["target_shape"]))
    ex.values[node.name] = Value(ex.out(node))


def _concatenate(ex: Exporter, node: Node) -> None:
    rank = ex.rank(node.name)
    axis = node.attrs["axis"] % rank
    onnx_axis = NCHW.index(axis) if rank == 4 else axis
    if node.attrs["axis"] != axis - rank:
        ex.note(node.name, "axis", node.attrs["axis"])  # the import writes channels as -1
    ex.add("Concat", [ex.value(v).name for v in node.inputs], [ex.out(node)], node.name,
           axis=onnx_axis)
    ex.values[node.name] = Value(ex.out(node))


# ---------------------------------------------------------------- resampling, transposed convs


def _cropping2d(ex: Exporter, node: Node) -> None:
    (t, b), (left, r) = node.attrs["cropping"]
    _, h, w, _ = ex.graph.shape_of(node.inputs[0])
    starts = ex.weight_ints(f"{node.name}/starts", [t, left])
    ends = ex.weight_ints(f"{node.name}/ends", [h - b, w - r])
    axes = ex.weight_ints(f"{node.name}/axes", [2, 3])  # NCHW height, width
    ex.add("Slice", [ex.value(node.inputs[0]).name, starts, ends, axes], [ex.out(node)],
           node.name)
    ex.values[node.name] = Value(ex.out(node))


def _upsampling2d(ex: Exporter, node: Node) -> None:
    """Resize by integer scales: nearest as PyTorch writes it (asymmetric, floor), bilinear
    with half-pixel centres (Keras 3 = PyTorch align_corners=False)."""
    sh, sw = node.attrs["size"]
    scales = ex.weight(f"{node.name}/scales", np.array([1, 1, sh, sw], np.float32))
    if node.attrs["interpolation"] == "nearest":
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                 "nearest_mode": "floor"}
    else:
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    ex.add("Resize", [ex.value(node.inputs[0]).name, "", scales], [ex.out(node)], node.name,
           **attrs)
    ex.values[node.name] = Value(ex.out(node))


def transpose_pads(attrs: Any, in_hw: tuple[int, int]) -> tuple[list[int], list[int]]:
    """ONNX ConvTranspose pads [top, left, bottom, right] and output_padding giving Keras'
    output size: ONNX's output is s * (n - 1) + output_padding + span - pad_begin - pad_end."""
    win = transpose_window(attrs, in_hw)
    begin, end, extra = [], [], []
    for i in range(2):
        span = attrs["dilation_rate"][i] * (attrs["kernel_size"][i] - 1) + 1
        cut = attrs["strides"][i] * (in_hw[i] - 1) + span - win.pad_before[i] - win.out_hw[i]
        begin.append(win.pad_before[i])
        end.append(max(cut, 0))
        extra.append(max(-cut, 0))  # rows past every window: zeros (then bias), as in Keras
    return begin + end, extra


def _conv2d_transpose(ex: Exporter, node: Node) -> None:
    a = node.attrs
    x = node.inputs[0]
    kernel, bias = ex.kernel_and_bias(node)  # (kh, kw, filters, in_channels)
    pads, extra = transpose_pads(a, tuple(ex.graph.shape_of(x)[1:3]))
    if a["padding"] == "same":
        ex.note(node.name, "padding", "same")
    if a["output_padding"] is not None:
        ex.note(node.name, "output_padding", list(a["output_padding"]))
    inputs = [ex.value(x).name, ex.weight(node.params[0], kernel.transpose(3, 2, 0, 1))]
    if bias is not None:
        inputs.append(ex.weight(f"{node.name}/bias", bias))
    ex.with_activation(node, "ConvTranspose", inputs, kernel_shape=list(a["kernel_size"]),
                       strides=list(a["strides"]), dilations=list(a["dilation_rate"]),
                       pads=pads, output_padding=extra)


def _separable_conv2d(ex: Exporter, node: Node) -> None:
    """Its two parts: a Conv with one group per channel (no bias), then a 1x1 Conv with the
    bias and activation. The import reads them back as depthwise_conv2d and conv2d."""
    a = node.attrs
    x = node.inputs[0]
    depthwise = np.asarray(ex.weights[node.params[0]], dtype=np.float32)
    pointwise = np.asarray(ex.weights[node.params[1]], dtype=np.float32)
    kh, kw, channels, mult = depthwise.shape
    pads = _window_pads(node, ex.graph.shape_of(x), a["kernel_size"], a["strides"],
                        a["dilation_rate"])
    middle = f"{node.name}/depthwise"
    ex.add("Conv", [ex.value(x).name, ex.weight(node.params[0], depthwise.reshape(
               kh, kw, channels * mult).transpose(2, 0, 1)[:, None])], [middle], middle,
           kernel_shape=[kh, kw], strides=list(a["strides"]),
           dilations=list(a["dilation_rate"]), group=channels, pads=pads)
    inputs = [middle, ex.weight(node.params[1], pointwise.transpose(3, 2, 0, 1))]
    if a["use_bias"]:
        inputs.append(ex.weight(node.params[2], np.asarray(ex.weights[node.params[2]])))
    ex.with_activation(node, "Conv", inputs, kernel_shape=[1, 1], strides=[1, 1],
                       dilations=[1, 1], group=1, pads=[0, 0, 0, 0])


RESAMPLE_EXPORTERS: dict[str, Callable[[Exporter, Node], None]] = {
    "separable_conv2d": _separable_conv2d,
    "conv2d_transpose": _conv2d_transpose,
    "cropping2d": _cropping2d,
    "upsampling2d": _upsampling2d,
}


# How each layer op exports, for every layer op (tests/onnx/test_onnx_tables.py holds it to the op
# table); graphs of other ops are refused whole (build_model).
EXPORTERS: dict[str, Callable[[Exporter, Node], None]] = {
    "input": _input,
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise_conv2d,
    "maxpool2d": _pool,
    "avgpool2d": _pool,
    "global_avgpool2d": _global_avgpool2d,
    "zero_padding2d": _zero_padding2d,
    "dense": _dense,
    "flatten": _flatten,
    "dropout": _dropout,
    "batchnorm": _batchnorm,
    "activation": _activation,
    "add": _add,
    "concatenate": _concatenate,
    **dict.fromkeys(MERGE_OPS, _merge),
    "reshape": _reshape,
    **RESAMPLE_EXPORTERS,
}


# ---------------------------------------------------------------- layer norm, global max
# pooling, channel shuffle (cnnc/ir/layer_norm.py, global_maxpool.py, channel_shuffle.py)

LAYER_NORM_OPSET = 17  # ONNX's LayerNormalization


def _layer_norm(ex: Exporter, node: Node) -> None:
    """LayerNormalization over ONNX's last axis: on a 4-D (NCHW) body value between transposes
    to NHWC and back, as PyTorch's ConvNeXt permutes around nn.LayerNorm. ONNX requires Scale:
    a layer without gamma writes ones and says so in the metadata; one without beta writes no
    B (ONNX's default, zeros)."""
    if ex.opset < LAYER_NORM_OPSET:
        raise ExportError(f"{node.name}: a layer_norm layer needs ONNX LayerNormalization, "
                          f"opset {LAYER_NORM_OPSET} or later; got opset {ex.opset}")
    a = node.attrs
    x = node.inputs[0]
    src = ex.value(x)
    channels = ex.graph.shape_of(x)[-1]
    gamma, beta, *_ = (*node.params, None, None) if a["scale"] else (None, *node.params, None)
    scale = (np.asarray(ex.weights[gamma], dtype=np.float32) if gamma is not None
             else np.ones(channels, np.float32))
    if gamma is None:
        ex.note(node.name, "scale", False)
    shift = np.asarray(ex.weights[beta], dtype=np.float32) if a["center"] else None
    if src.order is not None:  # a permuted flatten: ONNX column j is cnnc column order[j]
        scale = scale[src.order]
        shift = shift[src.order] if shift is not None else None
    inputs = [ex.weight(gamma or f"{node.name}/gamma", scale)]
    if shift is not None:
        inputs.append(ex.weight(beta, shift))
    out = ex.out(node)
    if ex.rank(x) == 4:
        ex.add("Transpose", [src.name], [f"{node.name}/nhwc"], f"{node.name}/nhwc",
               perm=list(TO_NHWC))
        ex.add("LayerNormalization", [f"{node.name}/nhwc", *inputs],
               [f"{node.name}/normalised"], node.name, axis=-1, epsilon=a["epsilon"])
        ex.add("Transpose", [f"{node.name}/normalised"], [out], f"{node.name}/nchw",
               perm=list(TO_NCHW))
    else:
        ex.add("LayerNormalization", [src.name, *inputs], [out], node.name, axis=-1,
               epsilon=a["epsilon"])
    ex.values[node.name] = Value(out, src.order)


def _global_maxpool2d(ex: Exporter, node: Node) -> None:
    src = ex.value(node.inputs[0]).name
    if node.attrs["keepdims"]:
        ex.add("GlobalMaxPool", [src], [ex.out(node)], node.name)
    else:
        ex.add("GlobalMaxPool", [src], [f"{node.name}/pooled"], node.name)
        ex.add("Flatten", [f"{node.name}/pooled"], [ex.out(node)], f"{node.name}/flatten",
               axis=1)
    ex.values[node.name] = Value(ex.out(node))


def _channel_shuffle(ex: Exporter, node: Node) -> None:
    """PyTorch's form, Reshape (N, G, C/G, ...) -> Transpose -> Reshape (N, C, ...), on ONNX's
    channel axis (1 for a 4-D NCHW body value, else the last); 0 keeps the batch size."""
    src = ex.value(node.inputs[0])
    if src.order is not None:
        raise ExportError(f"{node.name}: a channel shuffle of a flattened NCHW map has no ONNX "
                          "export (its columns are not channels)")
    shape = ex.graph.shape_of(node.name)
    groups = node.attrs["groups"]
    channels = shape[-1]
    onnx_shape = [shape[i] for i in NCHW] if len(shape) == 4 else list(shape)
    axis = 1 if len(shape) == 4 else len(shape) - 1
    grouped = [0, *onnx_shape[1:axis], groups, channels // groups, *onnx_shape[axis + 1:]]
    perm = list(range(len(grouped)))
    perm[axis], perm[axis + 1] = axis + 1, axis
    name = node.name
    ex.add("Reshape", [src.name, ex.weight_ints(f"{name}/grouped_shape", grouped)],
           [f"{name}/grouped"], f"{name}/grouped")
    ex.add("Transpose", [f"{name}/grouped"], [f"{name}/transposed"], f"{name}/transposed",
           perm=perm)
    ex.add("Reshape", [f"{name}/transposed", ex.weight_ints(f"{name}/shape",
                                                            [0, *onnx_shape[1:]])],
           [ex.out(node)], name)
    ex.values[node.name] = Value(ex.out(node))


EXPORTERS.update({
    "layer_norm": _layer_norm,
    "global_maxpool2d": _global_maxpool2d,
    "channel_shuffle": _channel_shuffle,
})


# ---------------------------------------------------------------- channel slice
# (cnnc/ir/channel_slice.py)


def _channel_slice(ex: Exporter, node: Node) -> None:
    """Slice on ONNX's channel axis (1 for a 4-D NCHW body value, else the last): what
    PyTorch's `chunk` and `split` on dim 1 write."""
    src = ex.value(node.inputs[0])
    if src.order is not None:
        raise ExportError(f"{node.name}: a channel slice of a flattened NCHW map has no ONNX "
                          "export (its columns are not channels)")
    rank = ex.rank(node.name)
    axis = 1 if rank == 4 else rank - 1
    name = node.name
    ex.add("Slice", [src.name, ex.weight_ints(f"{name}/starts", [node.attrs["start"]]),
                     ex.weight_ints(f"{name}/ends", [node.attrs["stop"]]),
                     ex.weight_ints(f"{name}/axes", [axis])], [ex.out(node)], name)
    ex.values[node.name] = Value(ex.out(node))


EXPORTERS["channel_slice"] = _channel_slice


# ---------------------------------------------------------------- the model


def _foldable(graph: Graph) -> dict[str, str]:
    """The batch norms the inference pipeline folds (fold_batchnorm.py): bn -> its layer."""
    out = {}
    for node in graph.nodes:
        layer = folds_into(graph, node)
        if layer is not None:
            out[node.name] = layer.name
    return out


def _value_info(helper: Any, name: str, shape: tuple) -> Any:
    from onnx import TensorProto

    dims = [BATCH_DIM if d is None else int(d) for d in shape]
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def _io_shape(shape: tuple, layout: str) -> tuple:
    """A 4-D cnnc (NHWC) shape as the model's input/output declares it."""
    if len(shape) == 4 and layout == "nchw":
        return tuple(shape[i] for i in NCHW)
    return shape


def build_model(graph: Graph, weights: Mapping[str, np.ndarray], *, layout: str = "nchw",
                fold_bn: bool = False, opset: int = DEFAULT_OPSET) -> Any:
    """The onnx.ModelProto of `graph` with `weights` (checked with onnx.checker, full check)."""
    onnx = require_onnx()
    from onnx import helper

    if layout not in LAYOUTS:
        raise ExportError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ExportError(f"opset must be an integer from {MIN_OPSET} to {newest} (this onnx "
                          f"package's newest), got {opset!r}")
    missing = [s.name for s in graph.weights if s.name not in weights]
    if missing:
        raise ExportError(f"no values for the weights {', '.join(missing[:5])}"
                          + (" ..." if len(missing) > 5 else ""))
    ex = Exporter(graph, weights, layout, fold_bn, helper, opset=opset)
    if fold_bn:
        ex.folded = _foldable(graph)
    for node in graph.nodes:
        if node.opdef.group != "layer":
            raise ExportError(f"only layer graphs can be exported; '{node.name}' is a {node.op} "
                              "node")
        EXPORTERS[node.op](ex, node)
    outputs = []
    for o in graph.outputs:
        name = ex.folded_into.get(o, o)
        if ex.values[o].order is not None:
            raise InternalError(f"output {o} is a permuted flatten")
        if ex.values[o].name != o:  # layout='nhwc': a transpose back to NHWC
            ex.add("Transpose", [ex.values[o].name], [o], f"{o}/nhwc", perm=list(TO_NHWC))
        outputs.append(_value_info(helper, o, _io_shape(graph.shape_of(name), layout)))
    inputs = [_value_info(helper, i, _io_shape(graph.shape_of(i), layout)) for i in graph.inputs]
    body = helper.make_graph(ex.nodes, graph.name, inputs, outputs, ex.initializers)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(body, opset_imports=opsets, producer_name=PRODUCER,
                              producer_version=_version(),
                              ir_version=helper.find_min_ir_version_for(opsets))
    model.doc_string = (f"cnnc network '{graph.name}', {layout.upper()} inputs"
                        + (", batch norm folded" if ex.folded else ""))
    meta = {}
    if ex.layer_args:
        meta[LAYER_ARGS_KEY] = json.dumps(ex.layer_args, sort_keys=True)
    if graph.train is not None:
        from cnnc.frontend.writers import train_settings

        meta[TRAIN_KEY] = json.dumps(train_settings(graph.train), sort_keys=True)
    helper.set_model_props(model, meta)
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise InternalError(f"the exported model does not pass onnx.checker: {err}") from None
    return model


def _version() -> str:
    from cnnc.version import __version__

    return __version__


def export_onnx(graph: Graph, weights: Mapping[str, np.ndarray], path: str | os.PathLike, *,
                layout: str = "nchw", fold_bn: bool = False, opset: int = DEFAULT_OPSET) -> Any:
    """Write `graph` with `weights` to `path` as ONNX (atomically); returns the ModelProto."""
    model = build_model(graph, weights, layout=layout, fold_bn=fold_bn, opset=opset)
    target = os.fspath(path)
    folder = os.path.dirname(target) or "."
    if not os.path.isdir(folder):
        raise ExportError(f"cannot write '{target}': the folder '{folder}' does not exist")
    atomic_write(target, model.SerializeToString())
    return model


__all__ = ["DEFAULT_OPSET", "EXPORTERS", "LAYOUTS", "ExportError", "build_model", "export_onnx"]


# ---------------------------------------------------------------- preprocessing layers
# (cnnc/ir/preprocessing.py): the model carries its own input scaling, as Mul/Add and Sub/Div
# by constants (scalars for rescaling; per channel, on ONNX's channel axis, for normalization).


def _channel_constant(ex: Exporter, node: Node, name: str, values: np.ndarray) -> str:
    """Per-channel constants broadcast on ONNX's channel axis: (C, 1, 1) against a 4-D NCHW
    value, else (C,) against the last axis (reordered like a permuted flatten's columns)."""
    src = ex.value(node.inputs[0])
    values = np.asarray(values, dtype=np.float32)
    if ex.rank(node.inputs[0]) == 4:
        values = values.reshape(-1, 1, 1)
    elif src.order is not None:
        values = values[src.order]
    return ex.weight(name, values)


def _rescaling(ex: Exporter, node: Node) -> None:
    src = ex.value(node.inputs[0])
    a, name = node.attrs, node.name
    # The first node carries the layer's name: the import names the layer after it.
    scaled = ex.out(node) if a["offset"] == 0 else f"{name}/scaled"
    ex.add("Mul", [src.name, ex.weight(f"{name}/scale", np.float32(a["scale"]))], [scaled], name)
    if a["offset"] != 0:
        ex.add("Add", [scaled, ex.weight(f"{name}/offset", np.float32(a["offset"]))],
               [ex.out(node)], f"{name}/offset")
    ex.values[name] = Value(ex.out(node), src.order)


def _normalization(ex: Exporter, node: Node) -> None:
    """Sub the mean, Div by Keras' max(sqrt(variance), 1e-7), computed here in float32."""
    from cnnc.ir.preprocessing import NORMALIZATION_EPSILON

    src = ex.value(node.inputs[0])
    mean_name, var_name = node.params
    mean = np.asarray(ex.weights[mean_name], dtype=np.float32)
    std = np.maximum(np.sqrt(np.asarray(ex.weights[var_name], dtype=np.float32)),
                     np.float32(NORMALIZATION_EPSILON))
    name = node.name
    ex.add("Sub", [src.name, _channel_constant(ex, node, mean_name, mean)], [f"{name}/centred"],
           name)
    ex.add("Div", [f"{name}/centred", _channel_constant(ex, node, f"{name}/std", std)],
           [ex.out(node)], f"{name}/std")
    ex.values[name] = Value(ex.out(node), src.order)


EXPORTERS.update({"rescaling": _rescaling, "normalization": _normalization})


# ---------------------------------------------------------------- local response normalisation
# (cnnc/ir/lrn.py)


def _lrn(ex: Exporter, node: Node) -> None:
    """ONNX LRN normalises across axis 1 of a 4-D tensor (onnxruntime takes no other rank): a
    4-D body value is NCHW already. Another rank holds cnnc's channels last: they move to axis 1
    (none to move at rank 2), the other axes fold into one, and all goes back after."""
    src = ex.value(node.inputs[0])
    if src.order is not None:
        raise ExportError(f"{node.name}: an lrn layer on a flattened NCHW map has no ONNX export "
                          "(its columns are not channels)")
    a = node.attrs
    attrs = {"size": a["size"], "alpha": a["alpha"], "beta": a["beta"], "bias": a["bias"]}
    shape = ex.graph.shape_of(node.name)
    rank = len(shape)
    if rank == 4:
        ex.add("LRN", [src.name], [ex.out(node)], node.name, **attrs)
        ex.values[node.name] = Value(ex.out(node))
        return
    name = node.name
    channels, middle = shape[-1], [int(d) for d in shape[1:-1]]
    first = src.name
    if rank > 2:
        first = f"{name}/channels_first"
        ex.add("Transpose", [src.name], [first], first, perm=[0, rank - 1, *range(1, rank - 1)])
    ex.add("Reshape", [first, ex.weight_ints(f"{name}/as_4d", [0, channels, -1, 1])],
           [f"{name}/4d"], f"{name}/4d")
    ex.add("LRN", [f"{name}/4d"], [f"{name}/normalised"], name, **attrs)
    back = ex.out(node) if rank == 2 else f"{name}/normalised_first"
    ex.add("Reshape", [f"{name}/normalised", ex.weight_ints(f"{name}/shape",
                                                            [0, channels, *middle])],
           [back], f"{name}/unfold")
    if rank > 2:
        ex.add("Transpose", [back], [ex.out(node)], f"{name}/channels_last",
               perm=[0, *range(2, rank), 1])
    ex.values[node.name] = Value(ex.out(node))


EXPORTERS["lrn"] = _lrn
