"""The edge shapes of the tunable ops (algorithms.py registers them with each algorithm): the
node with its other dimensions changed where tiles break, for the tuner's correctness gate.

Spatial sizes no tile divides, 1x1 outputs, reduction channels not a multiple of any vector
width, odd batches; the column count stays, since a variant's block must divide it. A fused
node (a layer with a batch norm folded in) keeps its batch norm's parameters.
"""

from __future__ import annotations

from cnnc.backends.opencl.primitives import conv_geometry, uses_im2col
from cnnc.backends.opencl.tunable import EdgeShape, Shape
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node


def _odd_group(groups: int, per_group: int) -> int:
    """Channels with an odd count per group (near per_group): no vector width divides them."""
    return groups * (per_group + 1 if per_group % 2 == 0 else per_group)


def _odd(n: int) -> int:
    return n + 1 if n % 2 == 0 else n


def _spatial_edges(attrs: Attrs) -> list[tuple[str, int, int, int]]:
    """(label, H, W, batch): a size no tile divides, and the smallest (1x1 output)."""
    kh, kw = attrs["kernel_size"]
    dh, dw = attrs["dilation_rate"]
    same = attrs["padding"] == "same"
    mh, mw = (1, 1) if same else ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    return [("odd sizes", mh + 2, mw + 4, 3), ("1x1", mh, mw, 1)]


def _layer_state(node: Node, kernel: Shape, units: int) -> dict[str, Shape]:
    """A conv2d's or dense's state shapes, or a fused one's (bias, then the batch norm's
    per-channel tensors), for a kernel of shape `kernel`."""
    state = {node.params[0]: kernel}
    for p in node.params[1:]:
        state[p] = (units,)
    return state


def conv2d_edges(node: Node, graph: Graph) -> list[EdgeShape]:
    """Odd spatial sizes and a 1x1 output, with an odd number of input channels per group
    (unless the windows are copied out: few channels, kept)."""
    a = node.attrs
    g = a["groups"]
    _, h, w, c = graph.shape_of(node.inputs[0])
    geo = conv_geometry(a, (1, h, w, c))
    odd_c = c if uses_im2col(node, geo) else _odd_group(g, c // g)
    f = a["filters"]
    edges = []
    for label, eh, ew, batch in _spatial_edges(a):
        state = _layer_state(node, (*a["kernel_size"], odd_c // g, f), f)
        edges.append(EdgeShape(f"{label}, {odd_c} input channels",
                               {node.inputs[0]: (eh, ew, odd_c)}, state, a, batch))
    return edges


def depthwise_edges(node: Node, graph: Graph) -> list[EdgeShape]:
    """Odd spatial sizes and a 1x1 output; the channels (the columns, times the depth
    multiplier) stay, and each output channel's reduction is its own KH x KW taps."""
    a = node.attrs
    c = graph.shape_of(node.inputs[0])[-1]
    m = a["depth_multiplier"]
    edges = []
    for label, eh, ew, batch in _spatial_edges(a):
        state = _layer_state(node, (*a["kernel_size"], c, m), c * m)
        edges.append(EdgeShape(label, {node.inputs[0]: (eh, ew, c)}, state, a, batch))
    return edges


def conv2d_grad_input_edges(node: Node, graph: Graph) -> list[EdgeShape]:
    """Columns: the input's channels (kept); reduction: an odd number of filters per group."""
    a = node.attrs
    g = a["groups"]
    _, _, c = a["input_shape"]
    odd_f = _odd_group(g, a["filters"] // g)
    dy, kernel = node.inputs
    edges = []
    for label, eh, ew, batch in _spatial_edges(a):
        geo = conv_geometry(a, (1, eh, ew, c))
        attrs = a.replace(input_shape=(eh, ew, c), filters=odd_f)
        edges.append(EdgeShape(f"{label}, {odd_f} filters", {dy: (geo["OH"], geo["OW"], odd_f)},
                               {kernel: (*a["kernel_size"], c // g, odd_f)}, attrs, batch))
    return edges


def conv2d_grad_kernel_edges(node: Node, graph: Graph) -> list[EdgeShape]:
    """Columns: the filters (kept); rows: taps x an odd number of input channels per group
    (unless the windows are copied out)."""
    a = node.attrs
    g = a["groups"]
    h, w, c = a["input_shape"]
    f = a["filters"]
    geo = conv_geometry(a, (1, h, w, c))
    odd_c = c if uses_im2col(node, geo) else _odd_group(g, c // g)
    x, dy = node.inputs
    edges = []
    for label, eh, ew, batch in _spatial_edges(a):
        geo = conv_geometry(a, (1, eh, ew, odd_c))
        attrs = a.replace(input_shape=(eh, ew, odd_c))
        edges.append(EdgeShape(f"{label}, {odd_c} input channels",
                               {x: (eh, ew, odd_c), dy: (geo["OH"], geo["OW"], f)}, {}, attrs,
                               batch))
    return edges


def _batches(label: str, inputs: dict[str, Shape], state: dict[str, Shape],
             attrs: Attrs) -> list[EdgeShape]:
    return [EdgeShape(f"batch {b}, {label}", inputs, state, attrs, b) for b in (3, 1)]


def dense_edges(node: Node, graph: Graph) -> list[EdgeShape]:
    """Odd batches, an odd number of inputs (the reduction)."""
    units = node.attrs["units"]
    odd_k = _odd(graph.shape_of(node.inputs[0])[-1])
    state = _layer_state(node, (odd_k, units), units)
    return _batches(f"{odd_k} inputs", {node.inputs[0]: (odd_k,)}, state, node.attrs)


def dense_grad_input_edges(node: Node, graph: Graph) -> list[EdgeShape]:
    """Odd batches, an odd number of units (the reduction)."""
    dy, kernel = node.inputs
    k_in, units = graph.shape_of(kernel)
    odd_u = _odd(units)
    return _batches(f"{odd_u} units", {dy: (odd_u,)}, {kernel: (k_in, odd_u)}, node.attrs)


def dense_grad_kernel_edges(node: Node, graph: Graph) -> list[EdgeShape]:
    """Odd batches (the reduction), an odd number of inputs (the rows); columns: the units."""
    x, dy = node.inputs
    k_in, units = node.shape
    odd_k = _odd(k_in)
    return _batches(f"{odd_k} inputs", {x: (odd_k,), dy: (units,)}, {}, node.attrs)
