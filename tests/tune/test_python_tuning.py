"""Tuning from Python (issue 22): a compiled OpenCL model runs the tuning cache's variants
unless told not to, and Model.tune fills the cache for its own graphs."""

from __future__ import annotations

import numpy as np
import pytest
from nodes import SPEC, tunable_nodes

import cnnc
from cnnc.errors import CnncError
from cnnc.tune import cache as tc
from cnnc.tune.space import variant_space
from cnnc.tune.tuner import node_key


def _launch_defines(model, graph, batch: int, node: str) -> list[dict]:
    plan = model.backend.plan(graph, batch)
    return [lau.define_map for n, lau in plan.launches() if n == node]


def _non_default_variant(model, graph, batch):
    """A tunable node of `graph` and a variant of its space other than the default whose keys
    are its kernel's build options (a register block: MR, VW, NV; not a form such as "split",
    which binds other launches), stored in the cache as a tuning would."""
    from cnnc.backends.opencl.launches import BindContext
    from cnnc.tune.space import default_variant

    ctx = BindContext(graph, batch, model.backend.target)
    for node in tunable_nodes(graph, ("conv2d", "dense")):
        default = default_variant(node, ctx)
        others = [v for v in variant_space(node, ctx) if v != default
                  and v.get("algo", "direct") == default.get("algo", "direct")
                  and all(k.isupper() for k in v if k != "algo")]
        if others:
            return node, others[0]
    pytest.fail("no tunable launch with a second variant in the tiny graph")


def test_compile_runs_the_cached_variants_by_default(device, cache_dir):
    model = cnnc.compile(SPEC, backend="opencl", device=device.index)
    node, variant = _non_default_variant(model, model.graph, 4)
    tc.TuningCache.default().put(tc.make_entry(
        node_key(model.backend, model.graph, node, 4), variant, 0.001, 0.002))
    tuned = _launch_defines(model, model.graph, 4, node.name)
    blocks = {k: v for k, v in variant.items() if k != "algo"}
    assert any(all(d.get(k) == v for k, v in blocks.items()) for d in tuned), (
        "a compiled model ran the defaults with a tuning cached for its launch")

    never = cnnc.compile(SPEC, backend="opencl", device=device.index, tune="never")
    default = _launch_defines(never, never.graph, 4, node.name)
    assert default != tuned
    x = np.random.default_rng(0).random((4, 7, 5, 9), dtype=np.float32)
    np.testing.assert_allclose(model.predict(x), never.predict(x), rtol=1e-4, atol=1e-6)


def test_model_tune_fills_the_cache_for_the_training_step(device, cache_dir):
    model = cnnc.compile(SPEC, backend="opencl", device=device.index, tune="never")
    results = model.tune(batch=3, train=True, budget=20)
    assert results and all(r.node for r in results)
    graph = model.training_graph()
    cache = tc.TuningCache.default()
    stored = [n for n in tunable_nodes(graph) if cache.get(node_key(model.backend, graph, n, 3))]
    assert stored, "Model.tune kept its winners in the tuning cache"
    # and the model now runs them: its chooser was installed by tune()
    assert model.backend.choose_variants(graph, 3)
    x = np.random.default_rng(1).random((3, 7, 5, 9), dtype=np.float32)
    assert np.isfinite(model.train_step(x, np.array([0, 1, 2])))


@pytest.mark.parametrize("tune", ["sometimes", -1, 0, float("nan"), [60]])
def test_a_bad_tune_option_is_refused(tune):
    with pytest.raises(CnncError, match="tune must be"):
        cnnc.compile(SPEC, backend="numpy", tune=tune)


def test_tuning_a_numpy_model_is_refused():
    with pytest.raises(CnncError, match="OpenCL backend"):
        cnnc.compile(SPEC, backend="numpy").tune(batch=2)


def test_compile_plan_names_the_variant_each_launch_runs(device, cache_dir, tmp_path, capsys):
    """Issue 23: `cnnc compile --plan` listed the default kernels for layers that ran tuned
    Winograd ones."""
    from nodes import write_spec

    from cnnc.cli import main

    spec = write_spec(tmp_path)
    model = cnnc.compile(spec, backend="opencl", device=device.index)
    node, variant = _non_default_variant(model, model.graph, 4)
    args = ["compile", spec, "--plan", "--batch", "4", "--device", device.index]
    assert main(args) == 0
    before = [line for line in capsys.readouterr().out.splitlines() if "variant:" in line]
    assert before and all("default: " in line for line in before)
    tc.TuningCache.default().put(tc.make_entry(
        node_key(model.backend, model.graph, node, 4), variant, 0.001, 0.002))
    assert main(args) == 0
    after = [line for line in capsys.readouterr().out.splitlines() if "variant:" in line]
    from cnnc.tune.space import describe

    assert [line for line in after if "tuned: " in line] == [
        next(line for line in after if f"  {node.name}  " in line)]
    assert f"tuned: {describe(variant)}" in next(line for line in after
                                                  if f"  {node.name}  " in line)


def test_model_tune_tunes_the_device_a_small_forward_pass_runs_on(device, cache_dir,
                                                                  monkeypatch):
    monkeypatch.setenv("CNNC_LATENCY_DEVICE", "1")  # (the suite turns it off: conftest.py)
    model = cnnc.compile(SPEC, backend="opencl", device=device.index, tune="never")
    companion = model.backend.companion_for(model.graph, 1)
    if companion is None:
        pytest.skip(f"{device.describe()} runs batch-1 passes itself (no one-thread companion)")
    model.tune(batch=1, budget=20)
    graph, cache = model.graph, tc.TuningCache.default()
    nodes = tunable_nodes(graph)
    assert any(cache.get(node_key(companion, graph, n, 1)) for n in nodes), (
        "the companion that runs the pass got no tuning")
    assert not any(cache.get(node_key(model.backend, graph, n, 1)) for n in nodes)
    assert companion.choose_variants(graph, 1)
    # then the two devices timed, the faster kept: what runs the pass
    from cnnc.tune.cache import device_key

    choice = cache.get(device_key(device, graph, 1))
    assert choice is not None
    exe = model.prepare(1)
    on_companion = choice["variant"]["companion"]
    assert (exe.backend is companion) == on_companion
    # a choice in the cache is followed, either way
    model.backend.choose_variants.cache.put(
        tc.make_entry(device_key(device, graph, 1), {"companion": 1 - on_companion}, 0.001, 0.002))
    assert (model.backend.companion_for(graph, 1) is not None) == (not on_companion)
    x = np.random.default_rng(2).random((1, 7, 5, 9), dtype=np.float32)
    never = cnnc.compile(SPEC, backend="numpy")
    never.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict(x), never.predict(x), rtol=1e-4, atol=1e-5)


def test_cnnc_tune_of_a_small_pass_tunes_and_times_the_companion(device, cache_dir, monkeypatch):
    import subprocess
    import sys

    from cnnc.backends.opencl.device import companion_of

    monkeypatch.setenv("CNNC_LATENCY_DEVICE", "1")  # (inherited by the command's process)
    companion = companion_of(device)
    if companion is None or device.compute_units < 2:
        pytest.skip(f"{device.describe()} runs batch-1 passes itself (no one-thread companion)")
    run = subprocess.run([sys.executable, "-m", "cnnc.cli", "tune", "lenet5", "--batch", "1",
                          "--budget", "10", "--device", device.index],
                         check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert f"at batch 1 on {companion.index} '{companion.name}'" in run.stdout
    assert "forward pass at batch 1: runs on " in run.stdout
    assert "a pass)" in run.stdout
