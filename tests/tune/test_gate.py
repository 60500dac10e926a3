"""The correctness gate rejects a variant whose kernel computes something else, and the tuner
never keeps such a variant, saying which and why (cnnc/tune/gate.py, tuner.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from nodes import tiny_training_graph, tunable_nodes

from cnnc.backends.opencl import bind
from cnnc.backends.opencl.launches import BindContext, NodeBinding
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.tune import tuner as tuner_module
from cnnc.tune.cache import TuningCache
from cnnc.tune.gate import Gate, cases
from cnnc.tune.space import default_variant

WRONG = {"test_wrong": 1}  # a test-only key the patched binder below acts on


def _wrong_conv2d(original):
    """conv2d's binder, but a variant with "test_wrong" shifts the window one row down (wrong
    numbers, every read still in bounds): a variant that builds, runs and is fast, and is
    wrong."""

    def binder(node, ctx: BindContext) -> NodeBinding:
        binding = original(node, ctx)
        if not ctx.variant(node).get("test_wrong"):
            return binding
        launches = []
        for lau in binding.launches:
            if lau.kernel == "conv2d_forward":
                defines = dict(lau.defines)
                defines["PT"] -= 1
                lau = replace(lau, defines=tuple(sorted(defines.items())))
            launches.append(lau)
        return replace(binding, launches=tuple(launches))

    return binder


@pytest.fixture
def wrong_variant_binder(monkeypatch):
    monkeypatch.setitem(bind.BINDERS, "conv2d", _wrong_conv2d(bind.BINDERS["conv2d"]))


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    return tiny_training_graph(tmp_path_factory.mktemp("spec"))


def test_edge_shapes_cover_tiles_and_channels(graph):
    node = tunable_nodes(graph, ("conv2d_grad_input",))[0]
    labels = [c.label for c in cases(graph, node, 32)]
    assert labels[0] == "real shape"
    assert any("1x1" in x for x in labels) and any("odd sizes" in x for x in labels)
    assert all("17 filters" in x for x in labels[1:])  # 16 filters -> an odd reduction


def test_the_gate_rejects_a_wrong_variant(device, graph, wrong_variant_binder):
    backend = OpenCLBackend(device)
    node = tunable_nodes(graph, ("conv2d",))[1]  # the implicit GEMM (9 input channels)
    gate = Gate(backend, graph, node, 3)
    default = default_variant(node, BindContext(graph, 3, backend.target))
    assert gate.check(default).admitted
    verdict = gate.check({**default, **WRONG})
    assert not verdict.admitted
    assert "real shape" in verdict.reason and "over the tolerance" in verdict.reason


def test_the_tuner_never_keeps_a_rejected_variant(device, graph, wrong_variant_binder,
                                                  monkeypatch, tmp_path, capsys):
    """The wrong variant is made to look fastest; the tuner says it was rejected and keeps the
    default."""
    node = tunable_nodes(graph, ("conv2d",))[1]
    real_space = tuner_module.variant_space

    def space_with_wrong(n, ctx):
        space = real_space(n, ctx)
        return [space[0], {**space[0], **WRONG}] if n.name == node.name else space[:1]

    real_time = tuner_module.Tuner._time

    def fast_wrong(self, graph_, name, batch, values, variant, index, best=None):
        t = real_time(self, graph_, name, batch, values, variant, index, best)
        if variant.get("test_wrong"):  # still run (so its launches happen), but always fastest:
            again = t.again  # these launches take ~50 us, and a loaded machine's noise is more

            def instant() -> float:
                again()
                return 1e-9

            return replace(t, seconds=1e-9, again=instant)
        return t

    monkeypatch.setattr(tuner_module, "variant_space", space_with_wrong)
    monkeypatch.setattr(tuner_module.Tuner, "_time", fast_wrong)
    cache = TuningCache(tmp_path / "tuning.json")
    t = tuner_module.Tuner(device, cache, budget=120, progress=False)
    results = {r.node: r for r in t.tune_graph(graph, 3)}
    r = results[node.name]
    assert "test_wrong" not in r.variant
    assert r.rejected and "over the tolerance" in r.rejected[0][1]
    assert f"{node.name}: variant" in capsys.readouterr().err
    assert all("test_wrong" not in e["variant"] for e in cache.entries.values())


OVERFLOW = {"test_overflow": 1}  # a test-only key: the patched binder writes past the output


def _overflowing_conv2d(original):
    """conv2d's binder, but a variant with "test_overflow" ends with a launch that writes 16
    floats past the end of the node's output (and nothing inside it): the output is right, the
    neighbour's bytes in a real run's arena are not."""
    from math import prod

    from cnnc.backends.opencl.launches import Int, Value, launch

    def binder(node, ctx: BindContext) -> NodeBinding:
        binding = original(node, ctx)
        if not ctx.variant(node).get("test_overflow"):
            return binding
        n = ctx.batch * prod(node.shape[1:])
        # peak.cl's probe writes out[get_global_id(0)] for n + 16 items; launched first, its
        # writes inside the output are replaced by the real launches', those past it stay.
        overflow = launch("peak.cl", "fma_peak", (n + 16,), (Value(node.name), Int(0)),
                          {"VW": 1})
        return replace(binding, launches=(overflow, *binding.launches))

    return binder


def test_the_gate_rejects_a_variant_that_writes_outside_its_output(device, graph, monkeypatch):
    """Issue 22: a variant whose output is right but which writes past it is refused (the guard
    regions after the output buffer changed)."""
    monkeypatch.setitem(bind.BINDERS, "conv2d", _overflowing_conv2d(bind.BINDERS["conv2d"]))
    backend = OpenCLBackend(device)
    node = tunable_nodes(graph, ("conv2d",))[1]
    gate = Gate(backend, graph, node, 3)
    default = default_variant(node, BindContext(graph, 3, backend.target))
    assert gate.check(default).admitted
    verdict = gate.check({**default, **OVERFLOW})
    assert not verdict.admitted
    assert "wrote outside its buffers" in verdict.reason
    assert f"tensor '{node.name}': written up to 64 bytes after it" in verdict.reason


def test_a_fused_activation_gradient_is_checked_on_its_producers_edge_shapes():
    """conv2d_grad_input_act_grad (passes/fuse_act_grad.py) reads the activation's value last:
    the edge shapes of conv2d_grad_input, with that value shaped like the gradient."""
    from cnnc.frontend.lower import LayerDecl as L
    from cnnc.frontend.lower import lower
    from cnnc.ir.train_config import TrainConfig
    from cnnc.passes.pipeline import training_graph

    g = training_graph(lower("net", [
        L("input", [(6, 5, 3)], name="x"),
        L("conv2d", [9, 3], {"padding": "same", "activation": "gelu"}, name="c1"),
        L("conv2d", [16, 3], {"padding": "same"}, name="c2"),
        L("flatten", name="f"), L("dense", [2], name="d"),
    ]), TrainConfig(loss="mean_squared_error"))
    node = g.node("grad/c1/preact")
    assert node.op == "conv2d_grad_input_act_grad"
    found = cases(g, node, 8)
    assert len(found) > 1 and any("17 filters" in c.label for c in found)
    for case in found:
        fused = case.node
        assert fused.op == node.op and len(fused.inputs) == 3
        assert case.graph.shape_of(fused.inputs[-1]) == fused.shape


def test_a_winograd_variant_is_held_to_its_factor_times_float32s_real_error(device, graph,
                                                                              monkeypatch):
    """The tolerance of an algorithm with an error factor is that factor times the error NumPy's
    float32 makes on the case, not times crosscheck's float32 tolerance (F(4x4): 128 x 2e-6
    sqrt(K), which admitted an F(7x7) kernel with a transform constant off by 1/599): an output
    off by 1.5 times it is refused, where the old tolerance is over 10 times larger."""
    import numpy as np

    from cnnc.tune import gate as gate_module
    from cnnc.tune.space import variant_space

    backend = OpenCLBackend(device)
    node = tunable_nodes(graph, ("conv2d",))[1]  # 3x3, stride 1, 8 -> 16 channels
    ctx = BindContext(graph, 3, backend.target)
    m4 = next(v for v in variant_space(node, ctx)
              if v.get("algo") == "winograd" and v.get("wino_m") == 4)
    gate = Gate(backend, graph, node, 3)
    right = gate.check(m4)
    assert right.admitted and 0 < right.worst < 0.5
    case = gate.cases[0]
    tight = gate_module.tolerance(case, m4, gate._float32_errors[0])
    assert gate_module.tolerance(case, m4) > 10 * tight
    real = gate_module.run_case

    def off(backend_, case_, values):
        out = real(backend_, case_, values)
        if isinstance(backend_, OpenCLBackend) and case_ is case:  # the device's, real shape
            out = out + np.float32(1.5 * tight) * np.abs(out).max()
        return out

    monkeypatch.setattr(gate_module, "run_case", off)
    wrong = gate.check(m4)
    assert not wrong.admitted and "real shape" in wrong.reason, wrong.reason
