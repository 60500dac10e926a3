"""A float64 training step that decides as a judged float32 backend did at rounding ties.

Cross-backend step tests compare a backend's weight updates with NumPy's and, where the two
differ, ask a float64 step which one strayed. That fails for the wrong reason where a decision
(a ReLU's side of 0, a max-pool window's winner) rests on a value within float32 rounding of
the boundary: the float32 backend may go either way, and one element routed the other way
moves a whole channel's update through training-mode batch norm. The arbiter here computes the
float64 step *as that backend decided* wherever float64's value is within the backend's
measured rounding of the boundary, and as float64 decides everywhere else:

1. `judged_step` runs one training step on a Model and fetches the values its decisions read
   (`decision_values`: each plain ReLU's output, each max-pool's input).
2. `arbiter_graph` is the training graph with each ReLU a node of its own (split from the
   conv/dense/depthwise layer that fuses it) and without the fusions that recompute a ReLU's
   side inside batch norm's gradient, so that every decision of the backward pass reads a
   value of the graph: the ReLU's output y (activation_grad reads y > 0), the max-pool's input
   x (maxpool2d_grad takes the first maximum of each window).
3. `float64_step_as` runs that graph in float64 on the NumPy interpreter, substituting (through
   the interpreter's `exchange`, cnnc/backends/base.py) the judged backend's value for
   float64's at each element or window where their decisions differ and both lie within the
   band of the boundary; forward values change by rounding only, decisions follow the backend.

The band ("within float32 rounding") is measured, not chosen: per tensor, the largest
distance between the backend's value and float64's where both decided alike (for a ReLU, over
the elements both pass: the pre-activation's rounding; for a max-pool, over its input away
from the windows whose winners differ),
times FLIP_FACTOR. A flip is accepted only where float64's value and the backend's both lie
within that band of the boundary; and the band itself must be rounding: given a `reference`
(NumPy float32's values of the same step, the specification computed in float32), within
the per-kernel rule `cnnc verify` judges OpenCL's kernels by (cnnc/crosscheck.py): sqrt(K) x
max(2e-6 of the tensor's largest value, `spread` x the reference's own distance from float64
on that tensor), K here the longest sum on the way to that value (a kernel's admitted error
travels to every value after it: ZFNet's direct convolutions, 8x NumPy's BLAS, reach its
max-pools through LRN), so that a wrong forward kernel cannot widen it (the reference itself
is judged without one: its distance from float64 is float32 rounding by definition). Anything else is reported as refused, and float64 keeps
its own decision there. Parameterised ReLUs (a threshold, a cap, a slope) and other kinked
ops keep float64's own decisions: stricter, never laxer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from math import sqrt
from typing import Any

import numpy as np

from cnnc.backends.numpy.pool import maxpool_argmax, pool_geometry
from cnnc.initializers import initial_values
from cnnc.inputs import check_targets, input_feeds
from cnnc.ir import activations
from cnnc.ir.graph import Graph, Node
from cnnc.passes import names
from cnnc.passes.graph_builder import GraphBuilder
from cnnc.passes.pipeline import run_pipeline, training_pipeline

# The band is the tensor's largest measured rounding (a max over thousands of elements); a
# flipped element's own rounding is one more draw from the same sums, so it may exceed that
# max by a little, not by orders. Twice the max covers it; a flip from a wrong value (the
# backend's pre-activation far from float64's) lies orders outside.
FLIP_FACTOR = 2.0
# crosscheck.LOCAL_TOLERANCE (not imported: that module loads the OpenCL backend).
LOCAL_TOLERANCE = 2e-6
# A max-pool input whose windows keep flipping after its substitutions (each round takes the
# backend's values over whole windows, so neighbours sharing cells may flip in turn).
_MAX_ROUNDS = 20


def _plain_relu(node: Node) -> bool:
    """A ReLU whose output y tells its side (y > 0 iff x > 0): no threshold, cap or slope."""
    return node.attrs.get("activation") == "relu" and not activations.parameters(node.attrs)


def split_relus(graph: Graph) -> Graph:
    """Each layer with a fused plain ReLU as the layer (linear, named <layer>/preact) and an
    activation node under the layer's name: the same values, the pre-activation visible."""
    b = GraphBuilder(graph)
    for node in graph.nodes:
        if node.op != "activation" and node.opdef.fuses_activation and _plain_relu(node):
            pre = b.add(names.preactivation(node.name), node.op, node.inputs,
                        node.attrs.replace(activation="linear"), node.params, like=node)
            b.add(node.name, "activation", (pre,), {"activation": "relu"}, like=node)
        else:
            b.keep(node)
    return b.build()


def arbiter_graph(model: Any) -> Graph:
    """The training graph of `model` (a cnnc.Model) with every decision read from a value: its
    ReLUs split out, and none of the pipeline's fuse_* passes (fuse_batchnorm_act_grad
    recomputes a ReLU's side from batch norm's input inside the gradient)."""
    config = model.train_config
    passes = [p for p in training_pipeline(
        loss=config.loss, optimizer=config.optimizer, seed=model.seed,
        label_smoothing=config.label_smoothing, soft_targets=config.soft_targets)
        if not p.name.startswith("fuse_")]
    return run_pipeline(split_relus(model.spec_graph), passes)


def decision_values(graph: Graph) -> tuple[str, ...]:
    """The values an arbiter graph's decisions read: each plain ReLU's output, each max-pool's
    input. The judged backend's training graph computes each under the same name."""
    out: list[str] = []
    for node in graph.nodes:
        if node.op == "activation" and _plain_relu(node):
            out.append(node.name)
        elif node.op == "maxpool2d":
            out.append(node.inputs[0])
    return tuple(dict.fromkeys(out))


def _feeds(model: Any, x: np.ndarray, y: Any, graph: Graph) -> dict[str, np.ndarray]:
    feeds = input_feeds(model.spec_graph, x)
    count = len(next(iter(feeds.values())))
    feeds[names.TARGET] = check_targets(y, graph.node(names.TARGET),
                                        graph.shape_of(graph.outputs[1]), count)
    return feeds


def judged_step(model: Any, x: np.ndarray, y: Any, values: Sequence[str]
                ) -> tuple[float, dict[str, np.ndarray]]:
    """One training step of `model` (its own training graph, on its own backend), as
    train_step takes it, returning the loss and the named forward values of that step."""
    graph = model.training_graph()
    feeds = _feeds(model, x, y, graph)
    exe = model.backend.compile(graph, len(x), keep=(names.TARGET, *values))
    out = exe.run(feeds, [names.LOSS, *values], step=model.step)
    model.step += 1
    return float(out[names.LOSS]), {v: out[v] for v in values}


@dataclass
class Arbitration:
    """What float64_step_as did: the loss, flips taken from the backend per value (elements
    for a ReLU, windows for a max-pool), flips refused (with why), and each value's band."""

    loss: float = 0.0
    taken: dict[str, int] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    bands: dict[str, float] = field(default_factory=dict)


def _band(name: str, measured: float, cap: float, report: Arbitration) -> float | None:
    """FLIP_FACTOR x the measured rounding, or None (refused) where the measurement is more
    than the cap allows: not rounding."""
    report.bands[name] = measured
    if measured > cap:
        report.refused.append(f"{name}: the backend's values are {measured:.3g} from "
                              f"float64's, more than rounding ({cap:.3g})")
        return None
    return FLIP_FACTOR * measured


Cap = Callable[[str, np.ndarray], float]


def _relu_rule(name: str, judged: np.ndarray, pre: dict[str, np.ndarray], cap: Cap,
               report: Arbitration) -> Callable[[np.ndarray], np.ndarray]:
    def rule(y: np.ndarray) -> np.ndarray:
        z = pre["z"]
        yb = judged.astype(np.float64)
        on_b, on = yb > 0, y > 0
        both = on_b & on
        measured = float(np.abs(yb - y)[both].max()) if both.any() else 0.0
        band = _band(name, measured, cap(name, y), report)
        flips = on_b != on
        report.taken.setdefault(name, 0)
        if not flips.any():
            return y
        # Either side's value at a flip: float64's pre-activation, and the backend's output
        # (its pre-activation where it passed; where it blocked, at most 0, unseen).
        near = (np.abs(z) <= band) & (yb <= band) if band is not None else np.zeros_like(on)
        take = flips & near
        for index in zip(*np.nonzero(flips & ~near), strict=True):
            report.refused.append(f"{name}{tuple(int(i) for i in index)}: ReLU decided "
                                  f"{'on' if on_b[index] else 'off'} at {yb[index]:.3g}, "
                                  f"float64's pre-activation {z[index]:.3g}, band {band}")
        report.taken[name] = report.taken.get(name, 0) + int(take.sum())
        return np.where(take, yb, y)
    return rule


def _window_cells(shape: tuple[int, ...], attrs: Any, windows: np.ndarray
                  ) -> tuple[np.ndarray, ...]:
    """Indices into x of every real cell of the given windows ((k, 4) rows of n, oh, ow, c)."""
    geo = pool_geometry(shape, attrs)
    kh, kw = np.meshgrid(np.arange(geo["KH"]), np.arange(geo["KW"]), indexing="ij")
    n, oh, ow, c = (windows[:, i, None] for i in range(4))
    rows = oh * geo["SH"] + kh.reshape(1, -1) * geo["DH"] - geo["PT"]
    cols = ow * geo["SW"] + kw.reshape(1, -1) * geo["DW"] - geo["PL"]
    real = (rows >= 0) & (rows < shape[1]) & (cols >= 0) & (cols < shape[2])
    full = [np.broadcast_to(a, rows.shape)[real] for a in (n, rows, cols, c)]
    return tuple(full)


def _cell(shape: tuple[int, ...], attrs: Any, window: tuple[int, ...], tap: int
          ) -> tuple[int, ...]:
    geo = pool_geometry(shape, attrs)
    n, oh, ow, c = window
    return (n, oh * geo["SH"] + (tap // geo["KW"]) * geo["DH"] - geo["PT"],
            ow * geo["SW"] + (tap % geo["KW"]) * geo["DW"] - geo["PL"], c)


def _maxpool_rule(name: str, pool: Node, judged: np.ndarray, cap: Cap,
                  report: Arbitration) -> Callable[[np.ndarray], np.ndarray]:
    key = f"{name} -> {pool.name}"

    def rule(x: np.ndarray) -> np.ndarray:
        xb = judged.astype(np.float64)
        want = maxpool_argmax(xb, pool.attrs)
        # The rounding measured away from the windows that decide differently, as for a ReLU
        # away from its flips: a wrong value there cannot widen its own band.
        alike = np.ones(x.shape, dtype=bool)
        flipped = np.argwhere(maxpool_argmax(x, pool.attrs) != want)
        if len(flipped):
            alike[_window_cells(x.shape, pool.attrs, flipped)] = False
        measured = float(np.abs(xb - x)[alike].max()) if alike.any() else 0.0
        band = _band(key, measured, cap(name, x), report)
        x = x.copy()
        taken: set[tuple[int, ...]] = set()
        refused: set[tuple[int, ...]] = set()
        for _ in range(_MAX_ROUNDS):
            mine = maxpool_argmax(x, pool.attrs)
            near = []
            for window in (tuple(int(i) for i in w) for w in np.argwhere(mine != want)):
                if window in refused:
                    continue
                ours = _cell(x.shape, pool.attrs, window, int(mine[window]))
                theirs = _cell(x.shape, pool.attrs, window, int(want[window]))
                gaps = (x[ours] - x[theirs], xb[theirs] - xb[ours])
                if band is not None and window not in taken and max(gaps) <= band:
                    near.append(window)
                else:
                    refused.add(window)
                    report.refused.append(f"{key} window {window}: float64's two largest "
                                          f"differ by {gaps[0]:.3g}, the backend's by "
                                          f"{gaps[1]:.3g}, band {band}")
            if not near:
                break
            # The backend's values over each whole window: its winner then wins in float64
            # too; a neighbour sharing cells may flip in turn, hence the rounds.
            cells = _window_cells(x.shape, pool.attrs, np.array(near))
            x[cells] = xb[cells]
            taken.update(near)
        else:
            report.refused.append(f"{key}: windows still flip after {_MAX_ROUNDS} rounds")
        report.taken[key] = len(taken)
        return x
    return rule


def _chain(steps: list[Callable[[np.ndarray], np.ndarray]]
           ) -> Callable[[np.ndarray], np.ndarray]:
    def run(value: np.ndarray) -> np.ndarray:
        for step in steps:
            value = step(value)
        return value
    return run


def _exchange(graph: Graph, judged: Mapping[str, np.ndarray], cap: Cap,
              report: Arbitration) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Per value, the substitutions the float64 run makes on it: a ReLU's own output first,
    then the max-pools that read it; last, a note of the value as a later ReLU reads it."""
    rules: dict[str, list[Callable[[np.ndarray], np.ndarray]]] = {}
    relus = [n for n in graph.nodes
             if n.op == "activation" and _plain_relu(n) and n.name in judged]
    pres: dict[str, dict[str, np.ndarray]] = {n.name: {} for n in relus}
    for node in relus:
        rules.setdefault(node.name, []).append(
            _relu_rule(node.name, judged[node.name], pres[node.name], cap, report))
    for node in graph.nodes:
        if node.op == "maxpool2d" and node.inputs[0] in judged:
            x = node.inputs[0]
            rules.setdefault(x, []).append(
                _maxpool_rule(x, node, judged[x], cap, report))
    for node in relus:
        def note(z: np.ndarray, pre: dict[str, np.ndarray] = pres[node.name]) -> np.ndarray:
            pre["z"] = z
            return z
        rules.setdefault(node.inputs[0], []).append(note)
    return {value: _chain(steps) for value, steps in rules.items()}


def _longest_sums(graph: Graph, batch: int) -> dict[str, int]:
    """Per value, the most terms any node computing it or a value before it sums into one
    output (the op table's `reduction`, as cnnc/crosscheck.py reads it)."""
    out: dict[str, int] = {}
    for node in graph.nodes:
        if node.shape is None:
            continue
        shapes = tuple(graph.concrete_shape(v, batch) for v in node.inputs)
        own = max(node.opdef.reduction(node.attrs, shapes), 1)
        out[node.name] = max([own, *(out.get(v, 1) for v in node.inputs)])
    return out


def float64_step_as(model: Any, x: np.ndarray, y: Any, judged: Mapping[str, np.ndarray], *,
                    reference: Mapping[str, np.ndarray] | None = None, spread: float = 2.0,
                    step: int = 0) -> Arbitration:
    """One training step of a float64 NumPy `model` (a cnnc.Model, its weights where the
    judged backend's step started) that takes the judged backend's decisions at ties: see the
    module's docstring. Its weights are then the arbiter's; returns what it took and refused.
    reference: NumPy float32's values of the same step, which cap each band as the module's
    docstring says (None: the judged values are the reference's)."""
    if model.dtype != "float64" or model.backend.name != "numpy":
        raise ValueError("the arbiter's step runs on the NumPy backend in float64")

    graph = arbiter_graph(model)
    sums = _longest_sums(graph, len(x))

    def cap(value: str, exact: np.ndarray) -> float:
        if reference is None:
            return float("inf")
        distance = float(np.abs(reference[value].astype(np.float64) - exact).max())
        return sqrt(sums[value]) * max(LOCAL_TOLERANCE * float(np.abs(exact).max()),
                                       spread * distance)
    slots = [s for s in graph.state if s.role == "slot"]
    model.backend.init_state(slots, initial_values(slots, model.seed, model.dtype))
    report = Arbitration()
    exchange = _exchange(graph, judged, cap, report)
    exe = model.backend.compile(graph, len(x))
    out = exe.run(_feeds(model, x, y, graph), [names.LOSS], step=step, exchange=exchange)
    report.loss = float(out[names.LOSS])
    return report
