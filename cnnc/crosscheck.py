"""Cross-backend verification: the same graph, inputs and state on NumPy and on an OpenCL device.

A tool above the backends (`cnnc verify`, `cnnc doctor`, the OpenCL tests): it runs both and
compares them, node by node. What each op sums, which sets its tolerance, is the op's own
`reduction` rule in the op table.

Two comparisons per node (what `cnnc verify` prints):
- alone: the node by itself, run on identical operands (the NumPy run's values) by the OpenCL
  device, by NumPy in float32 and by NumPy in float64 (the exact answer, as far as float32 is
  concerned). This is what each kernel is judged by: the error does not depend on how far
  errors travelled through the network, so a tight tolerance can name the kernel at fault.
  Tolerance, relative to max|exact|: sqrt(K) * max(2e-6, 2 * NumPy float32's own error), K the
  number of terms the node sums into one output (its op's `reduction` rule). The second term matters where a sum cancels
  (a gradient that is mathematically zero is float32 noise in any order of summation).
- run: every value of one whole run on each backend (forward pass, or a training step with
  gradients and updated parameters), as a user sees it. The graph's outputs are judged by a
  looser tolerance; the other values are shown. Updated parameters are shown but not judged
  after the whole run: Adam-family steps divide by |g|, so a gradient that is float32 noise in
  both runs moves its parameter by up to +-lr in either; the update kernel is judged alone.

Errors are relative to the largest magnitude of the reference value: max|a - b| / max|ref|.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from math import sqrt
from typing import Any

import numpy as np

from cnnc.backends.numpy import NumpyBackend
from cnnc.backends.opencl.plan import ExecutionPlan
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Target
from cnnc.initializers import initial_values
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node, StateSpec
from cnnc.passes.schedule import mutated

# float32 has 24 bits: results computed from identical operands in another order differ by a
# few units of 2^-24 per operation, growing like the square root of the number of terms summed.
LOCAL_TOLERANCE = 2e-6  # relative to max|exact|, times sqrt(reduction length)
NUMPY_ERROR_FACTOR = 2.0  # ... or this many times NumPy float32's error, times sqrt(K)
OUTPUT_TOLERANCE = 1e-3  # the graph's outputs after a whole run, relative to max|ref|


def local_tolerance(node: Node, graph: Graph, batch: int, numpy_error: float = 0.0) -> float:
    """The allowed error relative to max|exact|, given NumPy float32's relative error."""
    in_shapes = tuple(graph.concrete_shape(v, batch) for v in node.inputs)
    root = sqrt(max(node.opdef.reduction(node.attrs, in_shapes), 1))
    return root * max(LOCAL_TOLERANCE, NUMPY_ERROR_FACTOR * numpy_error)


def errors(ref: np.ndarray, got: np.ndarray) -> tuple[float, float]:
    """(max absolute error, error relative to max|ref|); NaN anywhere gives inf."""
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    if ref.shape != got.shape:
        return float("inf"), float("inf")
    if ref.size == 0:
        return 0.0, 0.0
    if np.isnan(ref).any() or np.isnan(got).any():
        same = bool(np.array_equal(np.isnan(ref), np.isnan(got)))
        if not same:
            return float("inf"), float("inf")
        mask = ~np.isnan(ref)
        ref, got = ref[mask], got[mask]
        if ref.size == 0:
            return 0.0, 0.0
    err = float(np.max(np.abs(ref - got)))
    scale = float(np.max(np.abs(ref)))
    return err, (err / scale if scale > 0 else (0.0 if err == 0 else float("inf")))


def worst_errors(
    refs: Mapping[str, np.ndarray], gots: Mapping[str, np.ndarray], names: Iterable[str]
) -> tuple[float, float]:
    """The largest absolute and relative `errors` over the named values."""
    pairs = [errors(refs[k], gots[k]) for k in names]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


@dataclass
class NodeCheck:
    node: str
    op: str
    kernels: str
    tolerance: float
    local_abs: float = float("nan")
    local_rel: float = float("nan")
    e2e_abs: float = float("nan")
    e2e_rel: float = float("nan")
    judged_e2e: bool = False  # a graph output: the end-to-end error is judged too

    @property
    def passed(self) -> bool:
        return self.passes()

    def passes(self, factor: float = 1.0) -> bool:
        """Whether the node's own error is within `factor` times its tolerance (and, for a graph
        output, the whole run's within OUTPUT_TOLERANCE): the tuner's gate widens the tolerance
        for an algorithm that states a larger error (Winograd)."""
        ok = not self.local_rel > self.tolerance * factor  # NaN (not checked) passes
        if self.judged_e2e:
            ok = ok and not self.e2e_rel > OUTPUT_TOLERANCE
        return ok

    def describe_failure(self) -> str:
        return (f"{self.node} ({self.op}, {self.kernels}): alone {self.local_rel:.2e} > "
                f"{self.tolerance:.1e} or run {self.e2e_rel:.2e}")


@dataclass
class CrossCheck:
    graph: Graph
    batch: int
    device: str
    checks: list[NodeCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def first_failure(self) -> NodeCheck | None:
        return next((c for c in self.checks if not c.passed), None)

    def passed_kernels(self, factor: float = 1.0) -> dict[str, str]:
        """Each node's kernels ('file:kernel, ...'; '-' for none) where every check passes (see
        NodeCheck.passes); else an AssertionError naming each failure, for tests and the
        Oclgrind drivers, which ask both what ran and that it matched."""
        bad = [c.describe_failure() for c in self.checks if not c.passes(factor)]
        if bad:
            raise AssertionError("; ".join(bad))
        return {c.node: c.kernels for c in self.checks}


# ---------------------------------------------------------------- inputs


def random_feeds(graph: Graph, batch: int, seed: int) -> dict[str, np.ndarray]:
    """Inputs in [0, 1) and integer targets in 0..classes-1 (classes from the loss consuming
    them)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for node in graph.nodes:
        if node.op != "input":
            continue
        shape = graph.concrete_shape(node.name, batch)
        if node.attrs["dtype"] == "int32":
            classes = 2
            for user in graph.consumers.get(node.name, ()):
                pred = graph.node(user).inputs[0]
                classes = graph.shape_of(pred)[-1]
            feeds[node.name] = rng.integers(0, classes, size=shape).astype(np.int32)
        else:
            feeds[node.name] = rng.random(shape, dtype=np.float32)
    return feeds


# ---------------------------------------------------------------- single-node graphs


def single_node_graph(graph: Graph, node: Node, batch: int) -> Graph:
    """`node` alone: operands with a batch dimension become inputs, the others state."""
    nodes: list[Node] = []
    state: list[StateSpec] = []
    seen: set[str] = set()
    for v in node.operands:
        if v in seen:
            continue
        seen.add(v)
        shape = graph.shape_of(v)
        if v in graph.node_map and shape and shape[0] is None:
            attrs = Attrs(shape=tuple(shape[1:]), dtype=graph.dtype_of(v))
            nodes.append(Node(v, "input", attrs=attrs, shape=tuple(shape)))
        else:
            state.append(StateSpec(v, graph.concrete_shape(v, batch)))
    nodes.append(node)
    outputs = (node.name,) if node.shape is not None else ()
    return Graph(f"{graph.name}:{node.name}", tuple(nodes), outputs, tuple(state))


def _run_single(
    backend, graph: Graph, node: Node, batch: int, values: Mapping[str, np.ndarray], step: int
) -> dict[str, np.ndarray]:
    """Run `node` alone on `backend`: its value, or the state its update wrote."""
    g = single_node_graph(graph, node, batch)
    backend.init_state(g.state, {s.name: values[s.name] for s in g.state})
    feeds = {n.name: values[n.name] for n in g.nodes if n.op == "input"}
    exe = backend.compile(g, batch)
    out = exe.run(feeds, list(g.outputs), step=step)
    written = mutated(node)
    if written:
        out.update(backend.read_state(written))
    return out


# ---------------------------------------------------------------- the check


def kernels_of(plan: ExecutionPlan) -> dict[str, str]:
    """For each node, the kernels that compute it ('file:kernel, ...'; '-' for none)."""
    names: dict[str, list[str]] = {}
    for node, lau in plan.launches():
        names.setdefault(node, []).append(f"{lau.file}:{lau.kernel}")
    return {n.name: ", ".join(names.get(n.name, [])) or "-" for n in plan.graph.nodes}


def cross_check(
    graph: Graph,
    batch: int,
    *,
    device: Any = None,
    seed: int = 0,
    step: int = 0,
    local: bool = True,
    target: Target | None = None,
    isolate: bool = False,
    variants: Mapping[str, Mapping[str, Any]] | None = None,
    serial: bool = False,
) -> CrossCheck:
    """Compare the NumPy and OpenCL backends on `graph` (any graph: forward or training).

    device: a selector or a Device. target: bind for another kind of device (tests run the GPU
    tilings on a CPU this way). isolate: every tensor in its own allocation (see
    OpenCLBackend), for memory checkers. variants: kernel variants by node name (the tuner's),
    instead of the defaults. serial: bound as a plan for chains is (OpenCLBackend.serial_plans;
    the plan's launches run in chains where chains apply, else one by one).
    """
    state0 = initial_values(graph.state, seed)
    feeds = random_feeds(graph, batch, seed)
    values = [n.name for n in graph.nodes if n.shape is not None]
    written = sorted({v for n in graph.nodes for v in mutated(n)})

    ref_backend = NumpyBackend()
    ref_backend.init_state(graph.state, state0)
    ref = ref_backend.compile(graph, batch).run(feeds, values, step=step)
    ref_state = ref_backend.read_state(written)

    ocl = OpenCLBackend(device, target=target, isolate=isolate)
    ocl.serial_plans = serial
    if variants is not None:
        ocl.choose_variants = lambda g, b: variants
    ocl.init_state(graph.state, state0)
    exe = ocl.compile(graph, batch, keep=["*"])
    got = exe.run(feeds, values, step=step)
    got_state = ocl.read_state(written)

    kernels = kernels_of(exe.plan)
    report = CrossCheck(graph, batch, ocl.device.describe())
    operand_values = {**state0, **feeds, **ref}
    updated_before: set[str] = set()
    order = exe.plan.schedule.order
    exact, single = NumpyBackend("float64"), NumpyBackend()
    local_ocl = OpenCLBackend(ocl.device, target=target, isolate=isolate)
    local_ocl.serial_plans = serial
    local_ocl.choose_variants = ocl.choose_variants
    for name in order:
        node = graph.node(name)
        check = NodeCheck(
            name,
            node.op,
            kernels[name],
            local_tolerance(node, graph, batch),
            judged_e2e=name in graph.outputs,
        )
        writes = mutated(node)
        if node.shape is not None:
            check.e2e_abs, check.e2e_rel = errors(ref[name], got[name])
        else:
            check.e2e_abs, check.e2e_rel = worst_errors(ref_state, got_state, writes)
        # An operand that an earlier update already changed has no recorded value: skip.
        if local and node.op != "input" and not updated_before & set(node.operands):
            want = _run_single(exact, graph, node, batch, operand_values, step)
            f32 = _run_single(single, graph, node, batch, operand_values, step)
            mine = _run_single(local_ocl, graph, node, batch, operand_values, step)
            check.local_abs, check.local_rel = worst_errors(want, mine, want)
            _, numpy_error = worst_errors(want, f32, want)
            check.tolerance = local_tolerance(node, graph, batch, numpy_error)
        updated_before.update(writes)
        report.checks.append(check)
    return report
