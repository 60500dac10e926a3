"""The tuner's correctness gate: a kernel variant is admitted only if it computes what the NumPy
reference backend computes, on the node's real shape and on edge shapes.

Each check runs the node alone (a one-node graph, cnnc/crosscheck.py's single_node_graph) on the
OpenCL device with the variant installed, and the same graph on the NumPy backend in float64,
on the same random inputs (standard normal: signed, so sums cancel as in a network). The error
relative to max|reference| must stay within crosscheck.py's float32 tolerance, which grows with the
square root of the number of terms the op sums (its OpDef.reduction), times the variant's own
error factor (1 for the direct algorithm; Winograd's larger error is stated by its provider,
space.error_factor). Edge shapes are the node with its other dimensions changed where tiles
break: spatial sizes no tile divides, 1x1 outputs, reduction channels not a multiple of any
vector width, odd batches; the column count stays, since a variant's block must divide it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from math import sqrt
from typing import Any

import numpy as np

from cnnc.backends.opencl.primitives import conv_geometry, uses_im2col
from cnnc.crosscheck import LOCAL_TOLERANCE, errors, single_node_graph
from cnnc.errors import CnncError
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node, StateSpec, infer_shapes
from cnnc.ir.ops import OPS
from cnnc.ir.residual import LAYER_OF
from cnnc.tune.space import as_layer, error_factor

# The batch the real shape is checked at: the kernels take the batch as an argument and only
# their grids grow with it, so a small batch checks the same program; the float64 reference of
# a whole batch would cost more than the tuning.
GATE_BATCH = 4


@dataclass(frozen=True)
class Case:
    """One shape a variant is checked on: a one-node graph at a batch size."""

    label: str
    graph: Graph
    batch: int

    @property
    def node(self) -> Node:
        return self.graph.nodes[-1]


@dataclass
class Verdict:
    admitted: bool
    reason: str = ""  # why not, naming the shape
    worst: float = 0.0  # the largest error over the cases, as a fraction of the tolerance


# ---------------------------------------------------------------- shapes


def _input(name: str, shape: tuple[int, ...], dtype: str = "float32") -> Node:
    return Node(name, "input", attrs=Attrs(shape=shape, dtype=dtype), shape=(None, *shape))


def _graph(node: Node, inputs: Mapping[str, tuple[int, ...]],
           state: Mapping[str, tuple[int, ...]], attrs: Attrs) -> Graph:
    """`node` alone with new attrs, its batched operands `inputs` (shapes without the batch) and
    its other operands `state`; its output shape inferred."""
    if node.op in LAYER_OF:
        node, inputs = _with_residual_input(node, inputs, attrs)
    nodes = [_input(name, shape) for name, shape in inputs.items()]
    nodes.append(replace(node, attrs=attrs, shape=None))
    specs = tuple(StateSpec(name, shape) for name, shape in state.items())
    g = Graph(f"gate:{node.name}", tuple(nodes), (node.name,), specs)
    return infer_shapes(g)


def _with_residual_input(node: Node, inputs: Mapping[str, tuple[int, ...]],
                         attrs: Attrs) -> tuple[Node, dict[str, tuple[int, ...]]]:
    """A residual op (cnnc/ir/residual.py) and `inputs` with its added operand, shaped like its
    layer's output on the edge shape's input (renamed where it was the layer's input too)."""
    x, other = node.inputs
    if other == x:  # add(conv(x), x): x changes shape in the edge cases
        other = f"{x}/residual"
        node = replace(node, inputs=(x, other))
    out = OPS[LAYER_OF[node.op]].infer(attrs, ((None, *inputs[x]),))
    return node, {**inputs, other: tuple(out[1:])}


def _odd_group(groups: int, per_group: int) -> int:
    """Channels with an odd count per group (near per_group): no vector width divides them."""
    return groups * (per_group + 1 if per_group % 2 == 0 else per_group)


def _spatial_edges(attrs: Attrs) -> list[tuple[str, int, int, int]]:
    """(label, H, W, batch): a size no tile divides, and the smallest (1x1 output)."""
    kh, kw = attrs["kernel_size"]
    dh, dw = attrs["dilation_rate"]
    same = attrs["padding"] == "same"
    mh, mw = (1, 1) if same else ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    return [("odd sizes", mh + 2, mw + 4, 3), ("1x1", mh, mw, 1)]


def _layer_state(node: Node, kernel: tuple[int, ...], units: int) -> dict[str, tuple[int, ...]]:
    """A conv2d's or dense's state shapes, or a fused one's (bias, then the batch norm's
    per-channel tensors), for a kernel of shape `kernel`."""
    state = {node.params[0]: kernel}
    for p in node.params[1:]:
        state[p] = (units,)
    return state


def _conv_edges(node: Node, graph: Graph) -> list[Case]:
    a = node.attrs
    g = a["groups"]
    cases = []
    if as_layer(node).op == "conv2d":
        _, h, w, c = graph.shape_of(node.inputs[0])
        geo = conv_geometry(a, (1, h, w, c))
        odd_c = c if uses_im2col(node, geo) else _odd_group(g, c // g)
        f = a["filters"]
        for label, eh, ew, batch in _spatial_edges(a):
            state = _layer_state(node, (*a["kernel_size"], odd_c // g, f), f)
            gr = _graph(node, {node.inputs[0]: (eh, ew, odd_c)}, state, a)
            cases.append(Case(f"{label}, {odd_c} input channels", gr, batch))
        return cases
    h, w, c = a["input_shape"]
    f = a["filters"]
    if node.op == "conv2d_grad_input":  # columns: the input's channels; reduction: filters
        odd_f = _odd_group(g, f // g)
        for label, eh, ew, batch in _spatial_edges(a):
            geo = conv_geometry(a, (1, eh, ew, c))
            attrs = a.replace(input_shape=(eh, ew, c), filters=odd_f)
            dy, kernel = node.inputs
            gr = _graph(node, {dy: (geo["OH"], geo["OW"], odd_f)},
                        {kernel: (*a["kernel_size"], c // g, odd_f)}, attrs)
            cases.append(Case(f"{label}, {odd_f} filters", gr, batch))
        return cases
    # conv2d_grad_kernel: columns: the filters; rows: taps x input channels
    geo = conv_geometry(a, (1, h, w, c))
    odd_c = c if uses_im2col(node, geo) else _odd_group(g, c // g)
    for label, eh, ew, batch in _spatial_edges(a):
        geo = conv_geometry(a, (1, eh, ew, odd_c))
        attrs = a.replace(input_shape=(eh, ew, odd_c))
        x, dy = node.inputs
        gr = _graph(node, {x: (eh, ew, odd_c), dy: (geo["OH"], geo["OW"], f)}, {}, attrs)
        cases.append(Case(f"{label}, {odd_c} input channels", gr, batch))
    return cases


def _dense_edges(node: Node, graph: Graph) -> list[Case]:
    a = node.attrs
    if as_layer(node).op == "dense":
        k = graph.shape_of(node.inputs[0])[-1]
        units = a["units"]
        odd_k = k + 1 if k % 2 == 0 else k
        state = _layer_state(node, (odd_k, units), units)
        gr = _graph(node, {node.inputs[0]: (odd_k,)}, state, a)
        return [Case(f"batch 3, {odd_k} inputs", gr, 3), Case(f"batch 1, {odd_k} inputs", gr, 1)]
    if node.op == "dense_grad_input":
        dy, kernel = node.inputs
        k_in, units = graph.shape_of(kernel)
        odd_u = units + 1 if units % 2 == 0 else units
        gr = _graph(node, {dy: (odd_u,)}, {kernel: (k_in, odd_u)}, a)
        return [Case(f"batch 3, {odd_u} units", gr, 3), Case(f"batch 1, {odd_u} units", gr, 1)]
    x, dy = node.inputs  # dense_grad_kernel: columns: units; rows: inputs; reduction: batch
    k_in, units = node.shape
    odd_k = k_in + 1 if k_in % 2 == 0 else k_in
    gr = _graph(node, {x: (odd_k,), dy: (units,)}, {}, a)
    return [Case(f"batch 3, {odd_k} inputs", gr, 3), Case(f"batch 1, {odd_k} inputs", gr, 1)]


def cases(graph: Graph, node: Node, batch: int) -> list[Case]:
    """The real shape (at up to GATE_BATCH) and the edge shapes `node` is checked on."""
    real = Case("real shape", single_node_graph(graph, node, batch), min(batch, GATE_BATCH))
    edges = _dense_edges(node, graph) if node.op.startswith("dense") else _conv_edges(node, graph)
    return [real, *edges]


# ---------------------------------------------------------------- the check


def random_values(graph: Graph, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Standard normal inputs and state for a one-node graph (float32)."""
    rng = np.random.default_rng(seed)
    values = {}
    for n in graph.nodes:
        if n.op == "input":
            shape = graph.concrete_shape(n.name, batch)
            values[n.name] = rng.standard_normal(shape, dtype=np.float32)
    for s in graph.state:
        values[s.name] = rng.standard_normal(s.shape, dtype=np.float32)
        if s.name.endswith("moving_variance"):  # a folded batch norm's: a variance
            values[s.name] = np.abs(values[s.name]) + np.float32(0.5)
    return values


def run_case(backend: Any, case: Case, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """The node's output on `backend` (its choose_variants as set by the caller)."""
    g = case.graph
    backend.init_state(g.state, {s.name: values[s.name] for s in g.state})
    feeds = {n.name: values[n.name] for n in g.nodes if n.op == "input"}
    exe = backend.compile(g, case.batch)
    return exe.run(feeds, [case.node.name], step=0)[case.node.name]


def reference(case: Case, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """The NumPy reference backend's output in float64."""
    from cnnc.backends.numpy.backend import NumpyBackend

    return run_case(NumpyBackend("float64"), case, values)


def tolerance(case: Case, variant: Mapping[str, Any]) -> float:
    """Allowed error relative to max|reference|: crosscheck.py's float32 tolerance, times the
    square root of the terms summed, times the variant's error factor."""
    g, node = case.graph, case.node
    in_shapes = tuple(g.concrete_shape(v, case.batch) for v in node.inputs)
    terms = max(node.opdef.reduction(node.attrs, in_shapes), 1)
    return LOCAL_TOLERANCE * sqrt(terms) * error_factor(variant)


def prebuild(backend: Any, jobs: Sequence[tuple[Graph, str, int, Mapping[str, Any]]]) -> None:
    """Build at once (several compiles overlapping, ProgramCache.prebuild) the programs that
    `backend` will run for one-node graphs: (graph, node name, batch, variant)s. What cannot be
    planned or built here is left for the run to report."""
    saved = backend.choose_variants
    requests = []
    try:
        for graph, name, batch, variant in jobs:
            backend.choose_variants = lambda g, b, v=dict(variant), n=name: {n: v}
            try:
                plan = backend.plan(graph, batch)
            except CnncError:
                continue
            requests += [(lau.file, lau.kernel, lau.define_map) for _, lau in plan.launches()]
    finally:
        backend.choose_variants = saved
    backend.programs.prebuild(requests)


class Gate:
    """Checks variants of one node; the references are computed once per shape."""

    def __init__(self, backend: Any, graph: Graph, node: Node, batch: int):
        self.backend = backend
        self.cases = cases(graph, node, batch)
        self._values = [random_values(c.graph, c.batch, seed=i) for i, c in
                        enumerate(self.cases)]
        self._refs: list[np.ndarray | None] = [None] * len(self.cases)

    def check(self, variant: Mapping[str, Any]) -> Verdict:
        """Admit `variant` or say why not (the first shape it fails on)."""
        worst = 0.0
        saved = self.backend.choose_variants
        try:
            prebuild(self.backend, [(c.graph, c.node.name, c.batch, variant) for c in self.cases])
            for i, case in enumerate(self.cases):
                name = case.node.name
                self.backend.choose_variants = lambda g, b, v=dict(variant), n=name: {n: v}
                try:
                    got = run_case(self.backend, case, self._values[i])
                except CnncError as err:  # a variant that cannot build or launch is refused
                    return Verdict(False, f"{case.label}: failed to run: {err}", float("inf"))
                if self._refs[i] is None:
                    self._refs[i] = reference(case, self._values[i])
                _, rel = errors(self._refs[i], got)
                tol = tolerance(case, variant)
                worst = max(worst, rel / tol)
                if not rel <= tol:  # NaN fails too
                    return Verdict(
                        False,
                        f"{case.label} (batch {case.batch}, {case.graph.shape_of(name)}): error "
                        f"{rel:.2e} of max|reference| over the tolerance {tol:.2e}",
                        worst,
                    )
        finally:
            self.backend.choose_variants = saved
        return Verdict(True, "", worst)
