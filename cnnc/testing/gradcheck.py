"""Finite-difference gradient checks of training graphs on the NumPy backend, in float64.

`GradientCheck(forward_graph, loss=...)` builds the loss-and-gradients training graph
(no optimizer updates, gradients with respect to inputs too), fills parameters with random
values, and compares `grad/<name>` with central differences of the loss at chosen entries.

Kinks: ReLU-family activations and max pooling are not differentiable everywhere. A
difference whose +h or -h run changes any ReLU sign pattern or max-pool winner crosses a kink;
such entries are reported as skipped, not compared (see `kink_signature`).

Relative error: |numeric - analytic| / max(|numeric|, |analytic|, floor) with floor 1e-3, so
gradients that are zero up to rounding compare absolutely.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from cnnc.backends.numpy import NumpyBackend
from cnnc.backends.numpy.activations import activate
from cnnc.backends.numpy.pool import maxpool_argmax
from cnnc.ir.activations import ACTIVATIONS, parameters
from cnnc.ir.graph import Graph, Node
from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.pipeline import loss_graph, training_graph

KINKED = tuple(a.name for a in ACTIVATIONS.values() if a.kinked)
FLOOR = 1e-3


def _kinks(graph: Graph) -> list[tuple[Node, str]]:
    """Each node with a kink, and the value whose sign pattern (ReLU-family activations' output,
    a relu with parameters' input) or window winners (max pooling) decide which side of the kink
    a run is on."""
    out = []
    for node in graph.nodes:
        # batchnorm_train: the training pass fuses the activation after it (fuse_training.py)
        fused = node.opdef.fuses_activation or node.op == "batchnorm_train"
        if fused and parameters(node.attrs):
            out.append((node, node.inputs[0]))
        elif fused and node.attrs["activation"] in KINKED:
            out.append((node, node.name))
        elif node.op == "maxpool2d":
            out.append((node, node.inputs[0]))
    return out


def kink_fetch(graph: Graph) -> list[str]:
    """The values kink_signature needs fetched, each once."""
    return list(dict.fromkeys(value for _, value in _kinks(graph)))


def _side(node: Node, v: np.ndarray) -> np.ndarray:
    """Which side of each kink every element of `v` lies on."""
    if node.op == "maxpool2d":
        return maxpool_argmax(v, node.attrs)
    act = ACTIVATIONS[node.attrs["activation"]]
    if act.kinks and not parameters(node.attrs):
        # v is the output of hard_sigmoid or hard_swish (a value the loss graph has too, where
        # batch norm may have fused with it): 0 exactly below the lower kink, at least the
        # value at the upper kink above it.
        top = float(activate(act.name, np.float64(act.kinks[-1])))
        return (v != 0).astype(int) + (v >= top)
    if parameters(node.attrs):  # v is its input: kinks at the threshold, and at 0 and the cap
        a = node.attrs
        points = [a["threshold"]] + ([0.0, a["max_value"]] if a["max_value"] is not None else [])
        return np.digitize(v, sorted(set(points)))
    # v is a fused activation's output: 0 where it is flat below, max_value where capped
    cap = ACTIVATIONS[node.attrs["activation"]].constants.get("max_value")
    return (v > 0) if cap is None else (v > 0) + (v >= cap)


def kink_signature(graph: Graph, values: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    return [_side(node, values[value]) for node, value in _kinks(graph)]


def _same(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=False))


@dataclass
class EntryResult:
    name: str
    index: tuple[int, ...]
    analytic: float
    numeric: float | None  # None: skipped, a kink lies within +-h

    @property
    def error(self) -> float:
        if self.numeric is None:
            return 0.0
        scale = max(abs(self.numeric), abs(self.analytic), FLOOR)
        return abs(self.numeric - self.analytic) / scale


@dataclass
class Report:
    entries: list[EntryResult] = field(default_factory=list)

    @property
    def checked(self) -> list[EntryResult]:
        return [e for e in self.entries if e.numeric is not None]

    @property
    def skipped(self) -> list[EntryResult]:
        return [e for e in self.entries if e.numeric is None]

    def worst(self) -> EntryResult | None:
        return max(self.checked, key=lambda e: e.error, default=None)

    def summary(self) -> str:
        w = self.worst()
        lines = [f"{len(self.checked)} entries checked, {len(self.skipped)} skipped at kinks"]
        if w is not None:
            lines.append(f"worst: {w.name}{list(w.index)} analytic {w.analytic:.10g} numeric "
                         f"{w.numeric:.10g} relative error {w.error:.3g}")
        return "\n".join(lines)


def random_weights(graph: Graph, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random parameters in a range where nothing saturates; positive moving variances."""
    out = {}
    for s in graph.state:
        if s.name.endswith(("/moving_variance", "/gamma", "/variance")):
            out[s.name] = rng.uniform(0.5, 1.5, s.shape)
        else:
            fan = s.fan[0] if s.fan else 1
            out[s.name] = rng.normal(0.0, 1.0 / np.sqrt(fan), s.shape)
    return out


def random_feeds(graph: Graph, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random inputs and targets for a training graph."""
    feeds = {}
    for node in graph.nodes:
        if node.op != "input":
            continue
        shape = (batch, *node.shape[1:])
        if node.attrs["dtype"] == "int32":
            loss = graph.node(names.LOSS)
            classes = graph.shape_of(loss.inputs[0])[-1]
            feeds[node.name] = rng.integers(0, classes, shape).astype(np.int32)
        elif node.name == names.TARGET and graph.node(names.LOSS).op != "mean_squared_error":
            # probability targets for cross-entropy: rows summing to one
            t = rng.uniform(0.1, 1.0, shape)
            feeds[node.name] = t / t.sum(axis=-1, keepdims=True)
        else:
            feeds[node.name] = rng.normal(size=shape)
    return feeds


class GradientCheck:
    """Loss and gradients of a forward graph on float64 NumPy, and their finite differences."""

    def __init__(self, forward: Graph, *, loss: str = "mean_squared_error", batch: int = 2,
                 seed: int = 0, step: int = 0, weights: Mapping[str, np.ndarray] | None = None):
        config = TrainConfig(loss=loss, seed=seed)
        self.graph = training_graph(forward, config, optimizer=False, wrt_inputs=True,
                                    check=True)
        self.rng = np.random.default_rng(seed)
        self.backend = NumpyBackend("float64")
        values = dict(weights) if weights is not None else random_weights(self.graph, self.rng)
        self.backend.init_state(self.graph.state, values)
        self.exe = self.backend.compile(self.graph, batch)
        # Finite differences only need the loss: the same forward pass without the backward.
        self.loss_graph = loss_graph(forward, config, check=True)
        self.loss_exe = self.backend.compile(self.loss_graph, batch)
        self.feeds = random_feeds(self.graph, batch, self.rng)
        self.step = step
        self._kinks = kink_fetch(self.graph)

    # ------------------------------------------------------------ runs

    def run(self, fetch: Sequence[str], feeds: Mapping[str, np.ndarray] | None = None,
            ) -> dict[str, np.ndarray]:
        return self.exe.run(feeds or self.feeds, list(fetch), step=self.step)

    def differentiable(self) -> list[str]:
        """Inputs and trainable parameters that have a gradient in the graph."""
        names_ = [n.name for n in self.graph.nodes if n.op == "input" and n.name != names.TARGET]
        names_ += [s.name for s in self.graph.state if s.trainable]
        return [n for n in names_ if names.grad(n) in self.graph.node_map]

    def _loss_and_kinks(self, feeds: Mapping[str, np.ndarray]) -> tuple[float, list]:
        out = self.loss_exe.run(feeds, [names.LOSS, *self._kinks], step=self.step)
        return float(out[names.LOSS]), kink_signature(self.graph, out)

    def _perturbed(self, name: str, index: tuple[int, ...], delta: float) -> tuple[float, list]:
        if name in self.feeds:
            feeds = {k: v.copy() for k, v in self.feeds.items()}
            feeds[name][index] += delta
            return self._loss_and_kinks(feeds)
        state = self.backend.state_arrays()[name]
        old = state[index]
        state[index] = old + delta
        try:
            return self._loss_and_kinks(self.feeds)
        finally:
            state[index] = old

    def check(self, targets: Sequence[str] | None = None, *, entries: int = 6,
              h: float = 1e-5) -> Report:
        """Compare up to `entries` random entries of each target's gradient (all if fewer)."""
        targets = list(targets) if targets is not None else self.differentiable()
        analytic = self.run([names.grad(t) for t in targets] + self._kinks)
        base_sig = kink_signature(self.graph, analytic)
        report = Report()
        for t in targets:
            grad = analytic[names.grad(t)]
            flat = self.rng.permutation(grad.size)[:entries]
            for f in flat:
                index = tuple(int(i) for i in np.unravel_index(f, grad.shape))
                up, sig_up = self._perturbed(t, index, h)
                down, sig_down = self._perturbed(t, index, -h)
                numeric = None
                if _same(sig_up, base_sig) and _same(sig_down, base_sig):
                    numeric = (up - down) / (2 * h)
                report.entries.append(EntryResult(t, index, float(grad[index]), numeric))
        return report
