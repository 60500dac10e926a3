"""Launches that compute only from the weights (folded batch norms, Winograd filter transforms,
a transposed convolution's kernel transpose) run once per change of the weights, not in every
forward pass: the plan hoists them, the runtime runs them again only after the state changed
(init_state, set_weights, load_weights, a training step, queued or not), and the forward
results stay the NumPy reference's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cnnc
from cnnc.backends.opencl.launches import Value
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.target import Target
from cnnc.frontend.spec import load_spec
from cnnc.passes.pipeline import inference_graph, training_graph

SPECS = sorted(Path(__file__).resolve().parents[2].joinpath("specs").glob("*.yaml"))

# conv2d + batchnorm (folded), a depthwise one, a transposed convolution, a dense one.
SPEC = {
    "network": "constants", "input": [8, 8, 3],
    "layers": [
        {"conv2d": [8, 3], "padding": "same", "use_bias": False}, "batchnorm",
        {"activation": "relu"},
        {"depthwise_conv2d": 3, "padding": "same", "use_bias": False}, "batchnorm",
        {"activation": "relu"},
        {"conv2d_transpose": [4, 3], "strides": 2, "padding": "same"},
        {"global_avgpool2d": None},
        {"dense": 6}, "batchnorm", {"activation": "relu"},
        {"dense": 3, "activation": "softmax"},
    ],
}


def _weight_only(graph, lau) -> bool:
    """A launch that reads parameters and no value of the run."""
    values = [a.name for a in lau.args if isinstance(a, Value)]
    return bool(values) and all(v in graph.state_map for v in values)


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_weight_only_launch_of_an_inference_plan_is_hoisted(path, kind):
    """No launch of a spec's forward pass that reads only parameters is left in every run; a
    training step hoists nothing (its weights change within the run)."""
    spec = load_spec(str(path))
    graph = inference_graph(spec)
    plan = make_plan(graph, 2, Target(kind, 2))
    left = [f"{n}: {lau.kernel}" for n, lau in plan.launches()
            if _weight_only(graph, lau) and not plan.hoists(lau)]
    assert not left
    folds = [lau for _, lau in plan.launches() if lau.kernel == "batchnorm_fold"]
    assert all(plan.hoists(lau) for lau in folds)
    constants = [t for t in plan.memory.tensors if t.kind == "constant"]
    assert len(constants) == sum(len(b.constants) for b in plan.bindings.values())
    assert all(t.start < 0 and t.end >= len(plan.schedule) for t in constants)
    train = make_plan(training_graph(spec), 2, Target(kind, 2))
    assert not any(train.hoists(lau) for _, lau in train.launches())
    assert not any(t.kind == "constant" for t in train.memory.tensors)


def _kernels_enqueued(monkeypatch) -> list[str]:
    import pyopencl as cl

    names: list[str] = []
    real = cl.enqueue_nd_range_kernel

    def record(queue, kernel, *args, **kw):
        names.append(kernel.function_name)
        return real(queue, kernel, *args, **kw)

    monkeypatch.setattr(cl, "enqueue_nd_range_kernel", record)
    return names


def _close(got, want, what):
    scale = max(float(np.abs(want).max()), 1.0)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * scale, err_msg=what)


def _models(spec, device, seed):
    model = cnnc.compile(spec, backend="opencl", device=device.index, seed=seed)
    ref = cnnc.compile(spec, backend="numpy", seed=seed, dtype="float64")
    ref.graph = model.spec_graph  # the reference runs the graph as loaded: nothing folded
    return model, ref


def test_constants_run_once_until_the_weights_are_set(device, monkeypatch):
    """The second predict enqueues no fold or transpose and gives the same bits; after
    set_weights the next predict computes them again and matches the NumPy reference."""
    model, ref = _models(SPEC, device, 3)
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype(np.float32)
    enqueued = _kernels_enqueued(monkeypatch)
    first = model.predict(x, batch_size=4)
    exe = model.prepare(4)
    hoisted = {b.launch.kernel for b in exe.prepare}
    assert {"batchnorm_fold", "transpose"} <= hoisted
    assert exe.prepare_runs == 1
    enqueued.clear()
    again = model.predict(x, batch_size=4)
    assert np.array_equal(first, again)
    assert exe.prepare_runs == 1
    assert not hoisted & set(enqueued) and len(enqueued) == len(exe.bound)
    ref.set_weights(model.get_weights())
    _close(again, ref.predict(x, batch_size=4), "initial")
    weights = {k: v * 1.25 + 0.1 if k.endswith(("gamma", "moving_mean", "kernel")) else v
               for k, v in model.get_weights().items()}
    model.set_weights(weights)
    ref.set_weights(weights)
    _close(model.predict(x, batch_size=4), ref.predict(x, batch_size=4), "after set_weights")
    assert exe.prepare_runs == 2


# tests/opencl/test_fused.py's network: its training step's kernels are built there already.
TRAINED = {
    "network": "folded", "input": [9, 9, 3],
    "layers": [
        {"conv2d": [8, 3], "padding": "same", "use_bias": False}, "batchnorm",
        {"activation": "relu"}, {"maxpool2d": 2},
        {"conv2d": [12, 3], "padding": "same"}, {"batchnorm": None, "center": False},
        {"activation": "relu"}, "flatten",
        {"dense": 10}, {"batchnorm": None, "scale": False}, {"activation": "relu"},
        {"dense": 4, "activation": "softmax"},
    ],
}


def test_training_steps_queued_or_not_make_the_next_predict_fold_again(device):
    """A training step changes the weights on the device: the predict after it folds again,
    also when the steps were only queued (the fold is enqueued behind them)."""
    model, ref = _models(TRAINED, device, 4)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 9, 9, 3)).astype(np.float32)
    y = rng.integers(0, 4, 6)
    before = model.predict(x, batch_size=6)
    exe = model.prepare(6)
    model.train_step(x, y)
    after_step = model.predict(x, batch_size=6)
    assert exe.prepare_runs == 2 and not np.allclose(after_step, before, atol=1e-4)
    ref.set_weights(model.get_weights())
    _close(after_step, ref.predict(x, batch_size=6), "after a training step")
    model.queue_train_step(x, y)
    model.queue_train_step(x, y)
    after_queued = model.predict(x, batch_size=6)
    model.read_queued_steps()
    assert exe.prepare_runs == 3
    ref.set_weights(model.get_weights())
    _close(after_queued, ref.predict(x, batch_size=6), "after queued training steps")


def test_a_hoisted_winograd_filter_transform_reads_the_folded_weights(device):
    """A tuned Winograd variant of a conv2d_bn node: its filter transform of the folded kernel
    runs once, after the fold, and the result is the reference's."""
    from cnnc.backends.numpy import NumpyBackend
    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.crosscheck import random_feeds
    from cnnc.initializers import initial_values

    spec = cnnc.load_spec({"network": "wino", "input": [6, 6, 4], "layers": [
        {"conv2d": [8, 3], "padding": "same", "use_bias": False}, "batchnorm",
        {"activation": "relu"}]})
    graph = inference_graph(spec)
    (node,) = [n for n in graph.nodes if n.op == "conv2d_bn"]
    backend = OpenCLBackend(device)
    backend.choose_variants = lambda g, b: {node.name: {"algo": "winograd", "wino_m": 2}}
    state = initial_values(spec.state, 5)
    state = {k: v + 0.3 if k.endswith(("gamma", "moving_mean")) else v
             for k, v in state.items()}
    backend.init_state(graph.state, state)
    exe = backend.compile(graph, 2)
    assert [b.launch.kernel for b in exe.prepare] == ["batchnorm_fold", "winograd_filter"]
    feeds = random_feeds(spec, 2, 1)
    ref = NumpyBackend("float64")
    ref.init_state(spec.state, state)
    want = ref.compile(spec, 2).run(feeds, spec.outputs)
    for _ in range(2):
        got = exe.run(feeds, graph.outputs)
        for name in spec.outputs:
            _close(got[name], want[name], name)
    assert exe.prepare_runs == 1
