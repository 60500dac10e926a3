"""ONNX front end: the state of one import, which the per-op rules of onnx_ops.py read and extend.

ONNX tensors are NCHW; cnnc's are NHWC. Rather than insert transposes, every ONNX value that
cnnc computes is a `Tensor`: the cnnc layer that computes it plus how ONNX sees that layer's
output. `perm` says which cnnc axis each ONNX axis is (ONNX value = np.transpose(cnnc value,
perm)): (0, 3, 1, 2) is the usual NCHW view of an NHWC tensor, and a Transpose node only changes
`perm`. A flattened NCHW tensor keeps its cnnc (NHWC) order plus `order`, the cnnc column of each
ONNX column, which the next dense layer absorbs by permuting its kernel's rows. So the graph
stays the plain layer graph every other front end makes, and every conversion happens once, on
the weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnc.errors import CnncError, InternalError
from cnnc.frontend.lower import NAME_PATTERN, RESERVED_NAMES, LayerDecl
from cnnc.frontend.onnx_graph import OnnxGraph, OnnxNode
from cnnc.ir.args import ArgError
from cnnc.ir.ops import OPS, Shape

NCHW = (0, 3, 1, 2)  # ONNX axis i of a 4-D value is cnnc axis NCHW[i]
DYNAMO_NAME = r"node_\w+|n\d+(_\d+)*"  # what torch.onnx's dynamo exporter names nodes


class Unsupported(Exception):
    """A node cnnc cannot lower exactly; the message names the attribute or value."""


@dataclass(eq=False)
class Layer:
    """A cnnc layer being declared: what lowering will get, and its weights by suffix."""

    decl: LayerDecl
    node: OnnxNode | None
    shape: Shape
    params: dict[str, np.ndarray] = field(default_factory=dict)
    hint: str | None = None  # the name it should get, from the ONNX node
    value: str | None = None  # the ONNX value it was made for (fusions extend that one only)

    @property
    def op(self) -> str:
        return self.decl.op

    @property
    def keywords(self) -> dict[str, Any]:
        return self.decl.keywords  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class Tensor:
    """An ONNX value computed by a cnnc layer (see the module doc)."""

    layer: Layer
    perm: tuple[int, ...]
    order: np.ndarray | None = None  # rank 2 only: ONNX column j is cnnc column order[j]
    nonneg: bool = False  # known >= 0 (after relu, sigmoid, softmax): zero padding = -inf

    @property
    def shape(self) -> Shape:
        return self.layer.shape

    @property
    def onnx_shape(self) -> Shape:
        return tuple(self.shape[p] for p in self.perm)

    @property
    def rank(self) -> int:
        return len(self.perm)


def clean_name(name: str, op: str) -> str | None:
    """A cnnc layer name from an ONNX node name, or None when it says nothing of its own.

    PyTorch names nodes by module path and op ('/layer1/layer1.0/conv1/Conv'): that becomes
    'layer1.0.conv1', as in its state_dict. A bare op name ('/Relu_1') gives None (an auto name).
    tf2onnx names them by Keras layer and TensorFlow op ('sequential/conv2d/Conv2D'): that
    becomes 'sequential.conv2d'. The dynamo exporter's names ('node_conv2d_3', 'n0_2') say
    only the op: None (weight_path then names a layer by its weight).
    """
    if re.fullmatch(DYNAMO_NAME, name.strip()):
        return None
    parts = [p for p in name.strip().split("/") if p]
    if parts and (re.fullmatch(re.escape(op) + r"(_\d+)?", parts[-1])
                  or (len(parts) > 1 and parts[-1][:1].isupper())):
        parts.pop()
    # PyTorch repeats each parent: layer1/layer1.0 -> keep the longer one.
    parts = [p for i, p in enumerate(parts)
             if not (i + 1 < len(parts) and parts[i + 1].startswith(p + "."))]
    text = ".".join(parts)
    text = re.sub(r"[^A-Za-z0-9_.\-]", "_", text)
    if not text:
        return None
    if not re.match(r"[A-Za-z_]", text):
        text = "_" + text
    if not re.fullmatch(NAME_PATTERN, text) or text in RESERVED_NAMES:
        return None
    return text


def weight_path(node: OnnxNode) -> str | None:
    """The module path of a node's PyTorch weight ('layer1.0.conv1.weight' -> 'layer1.0.conv1'):
    the dynamo exporter keeps state_dict names on initialisers, not on nodes."""
    for v in node.inputs[1:]:
        if v.endswith(".weight"):
            text = v[:-len(".weight")]
            if re.fullmatch(NAME_PATTERN, text) and text not in RESERVED_NAMES:
                return text
    return None


class Context:
    """Everything the rules share: the ONNX graph, known constants, the values lowered so far,
    and the cnnc layers declared (in order)."""

    def __init__(self, graph: OnnxGraph, layer_args: dict[str, dict[str, Any]]):
        self.graph = graph
        self.opset = graph.opset
        self.constants: dict[str, np.ndarray] = dict(graph.constants)
        self.tensors: dict[str, Tensor] = {}
        self.layers: list[Layer] = []
        self.stand_ins: list[Layer] = []
        # Values that are a computed tensor flattened batch and all (PyTorch's as_strided
        # exports as Reshape to [-1] then Gather): only a Gather that undoes it may read them.
        self.flat: dict[str, Tensor] = {}
        self.readers = graph.consumers()
        self.outputs = set(graph.outputs)
        self.layer_args = layer_args  # from cnnc's own export: choices ONNX cannot state
        self.batch: int | None = None  # a batch size fixed by the model, if any
        # Nodes a pattern of several nodes lowered with the first (onnx_norm_ops.PATTERNS): the
        # import skips them.
        self.absorbed: set[int] = set()

    # ------------------------------------------------------------ reading values

    def tensor(self, node: OnnxNode, i: int) -> Tensor:
        """Input i of `node` as a computed tensor (Unsupported if it is a constant)."""
        name = node.inputs[i] if i < len(node.inputs) else ""
        if not name:
            raise Unsupported(f"input {i} is missing")
        if name not in self.tensors:
            raise Unsupported(f"input {i} ('{name}') is a constant where cnnc needs a computed "
                              "tensor")
        return self.tensors[name]

    def has_tensor(self, node: OnnxNode, i: int) -> bool:
        return i < len(node.inputs) and node.inputs[i] in self.tensors

    def constant(self, node: OnnxNode, i: int, what: str) -> np.ndarray | None:
        """Input i of `node` as a constant array; None if omitted; Unsupported if computed."""
        name = node.inputs[i] if i < len(node.inputs) else ""
        if not name:
            return None
        if name not in self.constants:
            raise Unsupported(f"{what} ('{name}') must be a constant (an initialiser or a "
                              "constant subgraph)")
        return self.constants[name]

    def weight(self, node: OnnxNode, i: int, what: str, shape: tuple[int, ...] | None = None
               ) -> np.ndarray | None:
        """A float weight input, finite, of `shape` when given, as float32."""
        value = self.constant(node, i, what)
        if value is None:
            return None
        if value.dtype.kind != "f":
            raise Unsupported(f"{what} holds {value.dtype} values; cnnc weights are floats")
        if shape is not None and value.shape != shape:
            raise Unsupported(f"{what} has shape {value.shape}, expected {shape}")
        if not np.isfinite(value).all():
            raise Unsupported(f"{what} contains NaN or infinity")
        return value.astype(np.float32)

    def sole_reader(self, t: Tensor, value: str, node: OnnxNode) -> bool:
        """Whether `node` is the only reader of `value`, which is what `t`'s layer was made for
        and no graph output: then the layer may absorb the node (a bias, an activation)."""
        return (t.layer.value == value and value not in self.outputs
                and [n.index for n in self.readers.get(value, ())] == [node.index])

    # ------------------------------------------------------------ defining values

    def define(self, node: OnnxNode, t: Tensor, i: int = 0) -> None:
        if i < len(node.outputs) and node.outputs[i]:
            self.tensors[node.outputs[i]] = t

    def layer(self, node: OnnxNode | None, op: str, inputs: list[Tensor],
              keywords: dict[str, Any], params: dict[str, np.ndarray] | None = None,
              hint: str | None = None, value: str | None = None) -> Layer:
        """Declare a cnnc layer; its arguments and shape are checked now, so that a problem is
        reported at this node."""
        shape = self.infer(op, keywords, [t.shape for t in inputs])
        decl = LayerDecl(op=op, keywords=dict(keywords), inputs=[t.layer.decl for t in inputs],
                         path=f"node {node.label} ({node.op})" if node is not None else None)
        layer = Layer(decl, node, shape, dict(params or {}), hint,
                      value if value is not None else (node.outputs[0] if node else None))
        self.layers.append(layer)
        return layer

    def infer(self, op: str, keywords: dict[str, Any], shapes: list[Shape]) -> Shape:
        opdef = OPS[op]
        try:
            attrs = opdef.check_attrs(keywords)
        except ArgError as err:
            raise Unsupported(f"as cnnc's {op}: {err}") from None
        try:
            shape = opdef.infer(attrs, tuple(shapes))
        except CnncError as err:
            raise Unsupported(f"as cnnc's {op}: {err.message}") from None
        if shape is None:
            raise InternalError(f"layer op {op} produced no value")
        return shape

    def relayer(self, layer: Layer, **keywords: Any) -> None:
        """Change arguments of a declared layer (a fusion), re-checking its shape."""
        merged = {**layer.keywords, **keywords}
        shapes = [self.shape_of(d) for d in layer.decl.inputs or ()]
        layer.shape = self.infer(layer.op, merged, shapes)
        layer.decl.keywords = merged

    def shape_of(self, decl: Any) -> Shape:
        for layer in (*self.layers, *self.stand_ins):
            if layer.decl is decl:
                return layer.shape
        raise InternalError("a layer reads a declaration that is not in the import")

    def stand_in(self, shape: Shape) -> Layer:
        """A layer of this shape for the output of a node that failed: never lowered (the
        import fails anyway), it lets the nodes after it be checked and reported too."""
        layer = Layer(LayerDecl(op="<unsupported>"), None, shape)
        self.stand_ins.append(layer)
        return layer

    def layer_arg(self, name: str | None, arg: str) -> Any:
        """What cnnc's own export recorded for this layer's argument (None if nothing)."""
        if name is None:
            return None
        return self.layer_args.get(name, {}).get(arg)


__all__ = ["NCHW", "Context", "Layer", "Tensor", "Unsupported", "clean_name", "weight_path"]
