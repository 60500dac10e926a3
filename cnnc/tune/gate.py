"""The tuner's correctness gate: a kernel variant is admitted only if it computes what the NumPy
reference backend computes, on the node's real shape and on edge shapes.

Each check runs the node alone (a one-node graph, cnnc/crosscheck.py's single_node_graph) on the
OpenCL device with the variant installed, and the same graph on the NumPy backend in float64,
on the same random inputs (standard normal: signed, so sums cancel as in a network). The error
relative to max|reference| must stay within crosscheck.py's float32 tolerance, which grows with the
square root of the number of terms the op sums (its OpDef.reduction), times the error factor
its algorithm states (1 for a direct sum; Winograd's is larger: space.error_factor). Edge shapes
are the node with its other dimensions changed where tiles break, as the op's algorithms state
them (Algorithm.edges, cnnc/backends/opencl/edge_shapes.py): spatial sizes no tile divides, 1x1
outputs, reduction channels not a multiple of any vector width, odd batches. Every buffer of
a case has guard regions filled with a known pattern before and after it (the backend's canary
mode); a variant that touches them is refused, whatever its output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from math import sqrt
from typing import Any

import numpy as np

from cnnc.backends.opencl.algorithms import algorithms_of
from cnnc.backends.opencl.tunable import EdgeShape
from cnnc.crosscheck import LOCAL_TOLERANCE, errors, single_node_graph
from cnnc.errors import CnncError
from cnnc.ir.act_grad_fused import BASE_OF
from cnnc.ir.args import Attrs
from cnnc.ir.gated import LAYER_OF_GATED
from cnnc.ir.graph import Graph, Node, StateSpec, infer_shapes
from cnnc.ir.ops import OPS
from cnnc.ir.residual import LAYER_OF
from cnnc.tune.space import as_layer, error_factor

# An algorithm that adds rounding error (an error factor over 1: Winograd) is held to its factor
# times the error float32 really makes on the case, not times LOCAL_TOLERANCE: that sits ~30x
# above float32's error to absorb summation orders, and times F(7x7)'s factor of 1024 it
# admitted errors of several percent of max|reference| (a kernel with one constant of its
# transform 600 for 599 passed at 5% of it; held to this, it fails on the seed model's layers at
# 1.6-3.9x, the right kernels pass at 0.05-0.14). The factors are bounds, with a margin, on the
# ratio to NumPy's float32 direct error (tests/numpy/test_winograd_transforms.py), here measured
# on the case. Where NumPy's float32 error is small, the floor binds: half a float32 rounding
# (2^-25) per square-rooted term (the seed model's layers), as cases NumPy sums exactly need.
FLOAT32_FLOOR = 2.0**-25

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
    if node.op in LAYER_OF_GATED:
        node, inputs = _with_gate_input(node, inputs, attrs)
    elif node.op in LAYER_OF:
        node, inputs = _with_residual_input(node, inputs, attrs)
    if node.op in BASE_OF:
        node, inputs = _with_act_grad_input(node, inputs, state, attrs)
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


def _with_gate_input(node: Node, inputs: Mapping[str, tuple[int, ...]],
                     attrs: Attrs) -> tuple[Node, dict[str, tuple[int, ...]]]:
    """A gated op (cnnc/ir/gated.py) and `inputs` with a (1, 1, C) gate for the edge shape's
    input (and its layer's residual, if any): any gate checks the scaled loads."""
    x, gate, *rest = node.inputs
    layer = replace(node, op=LAYER_OF_GATED[node.op], inputs=(x, *rest))
    if layer.op in LAYER_OF:
        layer, inputs = _with_residual_input(layer, inputs, attrs)
    gate = f"{x}/gate"
    node = replace(node, inputs=(layer.inputs[0], gate, *layer.inputs[1:]))
    return node, {**inputs, gate: (1, 1, inputs[x][-1])}


def _with_act_grad_input(node: Node, inputs: Mapping[str, tuple[int, ...]],
                         state: Mapping[str, tuple[int, ...]], attrs: Attrs
                         ) -> tuple[Node, dict[str, tuple[int, ...]]]:
    """A fused gradient op (cnnc/ir/act_grad_fused.py) and `inputs` with the activation's value
    it reads last, shaped like its producer's output on the edge shape (the producer's edge
    shapes know nothing of it)."""
    *produced_from, v = node.inputs
    shapes = tuple((None, *inputs[i]) if i in inputs else state[i] for i in produced_from)
    out = OPS[BASE_OF[node.op]].infer(attrs, shapes)
    if v in inputs or v in state:
        v = f"{v}/act"
        node = replace(node, inputs=(*produced_from, v))
    return node, {**inputs, v: tuple(out[1:])}


def _as_producer(node: Node) -> Node:
    """A fused gradient op as the producer whose edge shapes it is checked on."""
    if node.op not in BASE_OF:
        return node
    return replace(node, op=BASE_OF[node.op], inputs=node.inputs[:-1])


def _edge_case(node: Node, edge: EdgeShape) -> Case:
    return Case(edge.label, _graph(node, edge.inputs, edge.state, edge.attrs), edge.batch)


def cases(graph: Graph, node: Node, batch: int) -> list[Case]:
    """The real shape (at up to GATE_BATCH) and the edge shapes `node` is checked on."""
    real = Case("real shape", single_node_graph(graph, node, batch), min(batch, GATE_BATCH))
    # Each of the op's algorithms states its edge shapes; those it shares are checked once.
    stated = dict.fromkeys(a.edges for a in algorithms_of(as_layer(node).op))
    return [real, *(_edge_case(node, e) for edges in stated
                    for e in edges(_as_producer(node), graph))]


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


def reference(case: Case, values: Mapping[str, np.ndarray], dtype: str = "float64") -> np.ndarray:
    """The NumPy reference backend's output in float64 (or in `dtype`)."""
    from cnnc.backends.numpy.backend import NumpyBackend

    return run_case(NumpyBackend(dtype), case, values)


def tolerance(case: Case, variant: Mapping[str, Any], float32_error: float | None = None) -> float:
    """Allowed error relative to max|reference|: crosscheck.py's float32 tolerance, times the
    square root of the terms summed, times the variant's error factor; for a factor over 1, at
    most that factor times `float32_error`, the error NumPy's float32 direct algorithm makes on
    the case (at least FLOAT32_FLOOR per square-rooted term)."""
    g, node = case.graph, case.node
    in_shapes = tuple(g.concrete_shape(v, case.batch) for v in node.inputs)
    root = sqrt(max(node.opdef.reduction(node.attrs, in_shapes), 1))
    factor = error_factor(node, variant)
    loose = LOCAL_TOLERANCE * root * factor
    if factor <= 1 or float32_error is None:
        return loose
    return min(loose, factor * max(float32_error, FLOAT32_FLOOR * root))


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
        from cnnc.backends.opencl.runtime import OpenCLBackend

        # The cases run with guard regions around every buffer: a variant that computes the
        # right output but writes past it (into a neighbour's bytes in a real run's arena) is
        # refused too. Same device and target, so the same programs as `backend` runs.
        self.backend = OpenCLBackend(backend.device, target=backend.target, canary=True)
        self.cases = cases(graph, node, batch)
        self._values = [random_values(c.graph, c.batch, seed=i) for i, c in
                        enumerate(self.cases)]
        self._refs: list[np.ndarray | None] = [None] * len(self.cases)
        self._float32_errors: list[float | None] = [None] * len(self.cases)

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
                outside = self.backend.check_canaries()
                if outside:
                    return Verdict(False, f"{case.label} (batch {case.batch}): wrote outside "
                                          f"its buffers: {'; '.join(outside)}", float("inf"))
                if self._refs[i] is None:
                    self._refs[i] = reference(case, self._values[i])
                _, rel = errors(self._refs[i], got)
                float32_error = None
                if error_factor(case.node, variant) > 1:
                    if self._float32_errors[i] is None:
                        self._float32_errors[i] = errors(
                            self._refs[i], reference(case, self._values[i], "float32"))[1]
                    float32_error = self._float32_errors[i]
                tol = tolerance(case, variant, float32_error)
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
