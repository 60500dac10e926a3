"""ONNX front end, before lowering: the element-wise subgraphs exporters write for one activation,
each replaced by the ONNX operator that says it (which onnx_ops.py lowers by the table).

    Sigmoid(x), Mul(x, s) (either order)                          -> Swish (silu)
    HardSigmoid(x; 1/6, 0.5), Mul(x, h)                           -> HardSwish (hard_swish)
    Softplus(x), Tanh, Mul(x, t)                                  -> Mish (mish)
    Softplus(x), Greater(x, t >= 15), Where(g, x, softplus)       -> Softplus (PyTorch's
        threshold: above 15, softplus(x) and x are the same float32)
    Div(x, sqrt 2) or Mul(x, 1/sqrt 2), Erf, Add 1, then x and 0.5 multiplied in in any order
                                                                  -> Gelu approximate='none'
    x^3 (Pow(x, 3) or two Muls), Mul 0.044715, Add x, Mul sqrt(2/pi), Tanh, Add 1, then x and
        0.5 as above                                              -> Gelu approximate='tanh'

PyTorch's TorchScript exporter writes these (SiLU at every opset, GELU below 20, Mish below
18, Hardswish below 14); the dynamo exporter writes SiLU's pair and Softplus' threshold. A
pattern matches only where each inner value has that one reader and is no graph output, and
the replacement takes the last node's place, name and outputs, so an error names that node.
Running before any rule, these win over general element-wise rules (Mul, Add, Div) for
exactly these shapes; anything else is left to them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from cnnc.frontend.onnx_graph import DEFAULT_DOMAINS, OnnxGraph, OnnxNode
from cnnc.ir.activations import ACTIVATIONS, GELU_TANH_C, GELU_TANH_K

REL = 1e-6  # float32 constants written from float64 ones


class _View:
    """The graph's producers, readers and constants, for matching."""

    def __init__(self, g: OnnxGraph, nodes: list[OnnxNode]):
        self.g = g
        self.producer = {v: n for n in nodes for v in n.outputs if v}
        self.readers: dict[str, list[OnnxNode]] = {}
        for n in nodes:
            for v in n.inputs:
                if v:
                    self.readers.setdefault(v, []).append(n)
        self.outputs = set(g.outputs)

    def node(self, value: str, op: str) -> OnnxNode | None:
        n = self.producer.get(value)
        return n if n is not None and n.op == op and n.domain in DEFAULT_DOMAINS else None

    def sole(self, value: str) -> OnnxNode | None:
        """The one reader of an inner value (None if more, none, or it is an output)."""
        readers = self.readers.get(value, [])
        if len(readers) != 1 or value in self.outputs:
            return None
        return readers[0]

    def scalar(self, value: str) -> float | None:
        """A one-element float constant (initialiser or Constant node), else None."""
        array = self.g.constants.get(value)
        if array is None:
            n = self.node(value, "Constant")
            array = n.attrs.get("value") if n is not None else None
            if n is not None and "value_float" in n.attrs:
                return float(n.attrs["value_float"])
        if not isinstance(array, np.ndarray) or array.size != 1 or array.dtype.kind not in "fi":
            return None
        return float(array.reshape(-1)[0])

    def is_scalar(self, value: str, expected: float) -> bool:
        got = self.scalar(value)
        return got is not None and math.isclose(got, expected, rel_tol=REL)


def _other(node: OnnxNode, value: str) -> str | None:
    """The other operand of a two-input node one of whose operands is `value`."""
    if len(node.inputs) != 2 or value not in node.inputs:
        return None
    a, b = node.inputs
    return b if a == value else a


def _binary(v: _View, value: str, op: str) -> tuple[OnnxNode, str] | None:
    """The sole reader of `value` if it is `op` with two inputs, and its other operand."""
    n = v.sole(value)
    if n is None or n.op != op or n.domain not in DEFAULT_DOMAINS or n.attrs:
        return None
    other = _other(n, value)
    return None if other is None else (n, other)


Match = tuple[list[OnnxNode], str, dict]  # nodes replaced (last one last), x, attributes


def _times_x(v: _View, value: str, x: str) -> list[OnnxNode] | None:
    """Mul(x, value) (either order), value read by it alone: the Muls, else None."""
    hit = _binary(v, value, "Mul")
    return [hit[0]] if hit is not None and hit[1] == x else None


def _times_x_half(v: _View, p: str, x: str) -> list[OnnxNode] | None:
    """p * x * 0.5 in any order the exporters write: (x p) 0.5, (p 0.5) x, or p (x 0.5) where
    x * 0.5 is a Mul of its own read only here."""
    hit = _binary(v, p, "Mul")
    if hit is None:
        return None
    m1, other = hit
    if other == x:
        second = _binary(v, m1.outputs[0], "Mul")
        return [m1, second[0]] if second is not None and v.is_scalar(second[1], 0.5) else None
    if v.is_scalar(other, 0.5):
        second = _binary(v, m1.outputs[0], "Mul")
        return [m1, second[0]] if second is not None and second[1] == x else None
    half = v.node(other, "Mul")
    if (half is not None and v.sole(other) is m1 and x in half.inputs
            and v.is_scalar(_other(half, x) or "", 0.5)):
        return [half, m1]
    return None


def _gelu_tail(v: _View, inner: OnnxNode, x: str) -> list[OnnxNode] | None:
    """Add(inner, 1) then the multiplications by x and 0.5."""
    plus = _binary(v, inner.outputs[0], "Add")
    if plus is None or not v.is_scalar(plus[1], 1.0):
        return None
    rest = _times_x_half(v, plus[0].outputs[0], x)
    return None if rest is None else [plus[0], *rest]


def _silu(v: _View, n: OnnxNode) -> Match | None:
    (x,) = n.inputs
    tail = _times_x(v, n.outputs[0], x)
    return None if tail is None else ([n, *tail], x, {})


def _hard_swish(v: _View, n: OnnxNode) -> Match | None:
    consts = ACTIVATIONS["hard_sigmoid"].constants
    if any(not math.isclose(n.attrs.get(k, 0.2 if k == "alpha" else 0.5), c, rel_tol=REL)
           for k, c in consts.items()):
        return None
    (x,) = n.inputs
    tail = _times_x(v, n.outputs[0], x)
    return None if tail is None else ([n, *tail], x, {})


def _softplus(v: _View, n: OnnxNode) -> Match | None:
    """Mish (Softplus, Tanh, Mul x), or PyTorch's thresholded Softplus."""
    (x,) = n.inputs
    t = v.sole(n.outputs[0])
    if t is not None and t.op == "Tanh":
        tail = _times_x(v, t.outputs[0], x)
        return None if tail is None else ([n, t, *tail], x, {"op": "Mish"})
    where = v.sole(n.outputs[0])
    if where is None or where.op != "Where" or list(where.inputs[1:]) != [x, n.outputs[0]]:
        return None
    greater = v.node(where.inputs[0], "Greater")
    if (greater is None or v.sole(greater.outputs[0]) is not where or greater.inputs[0] != x
            or (v.scalar(greater.inputs[1]) or 0.0) < 15.0):
        return None
    return [greater, n, where], x, {"op": "Softplus"}


def _cube_of(v: _View, value: str) -> str | None:
    """x when `value` is x^3 as Pow(x, 3) or x * (x * x) (any order), its inner values read
    only there."""
    pw = v.node(value, "Pow")
    if pw is not None and v.is_scalar(pw.inputs[1], 3.0):
        return pw.inputs[0]
    m = v.node(value, "Mul")
    if m is None or len(m.inputs) != 2:
        return None
    for i in (0, 1):
        x, sq = m.inputs[i], m.inputs[1 - i]
        s = v.node(sq, "Mul")
        if s is not None and list(s.inputs) == [x, x] and v.sole(sq) is m:
            return x
    return None


def _cube_nodes(v: _View, value: str) -> list[OnnxNode]:
    pw = v.node(value, "Pow")
    if pw is not None:
        return [pw]
    m = v.node(value, "Mul")
    sq = next(v.node(i, "Mul") for i in m.inputs if v.node(i, "Mul") is not None)
    return [sq, m]


def _erf(v: _View, n: OnnxNode) -> Match | None:
    scale = v.node(n.inputs[0], "Div") or v.node(n.inputs[0], "Mul")
    if scale is None or v.sole(n.inputs[0]) is not n or len(scale.inputs) != 2:
        return None
    if scale.op == "Div":
        x, ok = scale.inputs[0], v.is_scalar(scale.inputs[1], math.sqrt(2))
    else:
        x = next((i for i in scale.inputs if v.scalar(i) is None), "")
        ok = v.is_scalar(_other(scale, x) or "", math.sqrt(0.5))
    tail = _gelu_tail(v, n, x) if ok else None
    return None if tail is None else ([scale, n, *tail], x, {"approximate": "none"})


def _tanh(v: _View, n: OnnxNode) -> Match | None:
    """tanh(k (x + c x^3)), then + 1 and times x and 0.5."""
    u = v.node(n.inputs[0], "Mul")
    if u is None or v.sole(n.inputs[0]) is not n or len(u.inputs) != 2:
        return None
    k_at = next((i for i in (0, 1) if v.is_scalar(u.inputs[i], GELU_TANH_K)), None)
    if k_at is None:
        return None
    poly = v.node(u.inputs[1 - k_at], "Add")
    if poly is None or v.sole(poly.outputs[0]) is not u or len(poly.inputs) != 2:
        return None
    for i in (0, 1):
        x, term = poly.inputs[i], poly.inputs[1 - i]
        cm = v.node(term, "Mul")
        if cm is None or v.sole(term) is not poly or len(cm.inputs) != 2:
            continue
        c_at = next((j for j in (0, 1) if v.is_scalar(cm.inputs[j], GELU_TANH_C)), None)
        if c_at is None:
            continue
        cube = cm.inputs[1 - c_at]
        if v.sole(cube) is not cm or _cube_of(v, cube) != x:
            continue
        tail = _gelu_tail(v, n, x)
        if tail is not None:
            return ([*_cube_nodes(v, cube), cm, poly, u, n, *tail], x,
                    {"approximate": "tanh"})
    return None


# The node each pattern starts from -> its matcher, and the operator that replaces it.
PATTERNS: dict[str, tuple[Callable[[_View, OnnxNode], Match | None], str]] = {
    "Sigmoid": (_silu, "Swish"),
    "HardSigmoid": (_hard_swish, "HardSwish"),
    "Softplus": (_softplus, "Mish"),
    "Erf": (_erf, "Gelu"),
    "Tanh": (_tanh, "Gelu"),
}


def rewrite_activation_patterns(g: OnnxGraph) -> OnnxGraph:
    """`g` with each exporter's decomposition of an activation as its one operator."""
    nodes = list(g.nodes)
    changed = False
    view = _View(g, nodes)
    for start in list(nodes):
        if start.op not in PATTERNS or start.domain not in DEFAULT_DOMAINS or start not in nodes:
            continue
        matcher, op = PATTERNS[start.op]
        match = matcher(view, start)
        if match is None:
            continue
        replaced, x, attrs = match
        op = attrs.pop("op", op)
        last = max(replaced, key=nodes.index)
        new = replace(last, op=op, domain="", inputs=(x,), outputs=(last.outputs[0],),
                      attrs=attrs)
        at = nodes.index(last)
        gone = {id(n) for n in replaced}
        nodes = [new if i == at else n for i, n in enumerate(nodes) if id(n) not in gone
                 or i == at]
        view = _View(g, nodes)
        changed = True
    return replace(g, nodes=nodes) if changed else g
