"""Batch norm and its activation as one training node, the activation's derivative inside batch
norm's gradient (cnnc/passes/fuse_bn_act_grad.py): which graphs fuse, and that a training step
computes the same loss, gradients and updates with and without the fusion, in float64
(the fused ops' NumPy implementations, backends/numpy/bn_act_grad_impls.py; their finite
differences: the op case batchnorm_shared_sums in tests/numpy/test_gradients_ops.py)."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.backends.numpy import NumpyBackend
from cnnc.initializers import initial_values
from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.fuse_bn_act_grad import fuse_batchnorm_act_grad
from cnnc.passes.pipeline import training_graph
from cnnc.testing.nets import run, training_graph_without

CONFIG = TrainConfig(loss="mean_squared_error")


def _net(act: str, bn_args: dict | None = None):
    from cnnc.frontend.lower import LayerDecl as L
    from cnnc.frontend.lower import lower

    return lower("net", [
        L("input", [(5, 4, 3)], name="x"),
        L("conv2d", [6, 3], {"padding": "same", "use_bias": False}, name="c1"),
        L("batchnorm", [], bn_args or {}, name="bn1"),
        L("activation", [act], name="a1"),
        L("depthwise_conv2d", [3], {"padding": "same", "use_bias": False}, name="dw"),
        L("batchnorm", [], name="bn2"),
        L("activation", [act], name="a2"),
        L("global_avgpool2d", name="gap"),
        L("dense", [2], name="d"),
    ])


def _unfused(graph):
    return training_graph_without(graph, CONFIG, "fuse_batchnorm_act_grad")


@pytest.mark.parametrize("act", ["silu", "gelu", "hard_swish", "relu", "tanh"])
def test_batch_norm_and_its_activation_train_as_one_node(act):
    t = training_graph(_net(act), CONFIG, check=True)
    ops = {n.name: n for n in t.nodes}
    for bn, a, x in (("bn1", "a1", "c1"), ("bn2", "a2", "dw")):
        fused = ops[a]
        assert fused.op == "batchnorm_train" and fused.attrs["activation"] == act
        assert bn not in ops  # v is never stored
        sums, apply = ops[names.batch_sums(names.grad(x))], ops[names.grad(x)]
        assert (sums.op, apply.op) == ("batchnorm_act_grad_sums", "batchnorm_act_grad_apply")
        assert sums.inputs[2] == apply.inputs[2] == names.grad(a)  # dy of the activation's output
        assert apply.attrs["activation"] == sums.attrs["activation"] == act
    assert not [n.name for n in t.nodes if n.op == "activation_grad"]


def test_no_fusion_where_v_has_another_reader_or_the_activation_has_parameters():
    from cnnc.frontend.lower import LayerDecl as L
    from cnnc.frontend.lower import lower

    g = lower("net", [
        L("input", [(4, 4, 2)], name="x"),
        L("conv2d", [4, 1], {"use_bias": False}, name="c"),
        L("batchnorm", [], name="bn"),
        L("activation", ["silu"], name="a"),
        L("add", name="s", inputs=["bn", "a"]),  # v read beside its activation
        L("conv2d", [4, 1], {"use_bias": False}, name="c2"),
        L("batchnorm", [], name="bn2"),
        L("activation", ["relu"], {"threshold": 0.5}, name="r"),  # parameters
        L("flatten", name="f"),
        L("dense", [2], name="d"),
    ])
    t = training_graph(g, CONFIG, check=True)
    assert not any(n.op.startswith("batchnorm_act_grad") for n in t.nodes)
    assert fuse_batchnorm_act_grad(_unfused(g)) == _unfused(g)


@pytest.mark.parametrize("act,bn_args", [("silu", {}), ("gelu", {"center": False}),
                                         ("relu", {"scale": False}), ("hard_swish", {})])
def test_fused_training_step_equals_unfused(act, bn_args, rng):
    g = _net(act, bn_args)
    fused, unfused = training_graph(g, CONFIG, check=True), _unfused(g)
    assert any(n.op == "batchnorm_act_grad_apply" for n in fused.nodes)
    assert not any(n.op == "batchnorm_act_grad_apply" for n in unfused.nodes)
    feeds = {"x": rng.normal(size=(3, 5, 4, 3)) * 2, names.TARGET: rng.normal(size=(3, 2))}
    results = []
    for t in (fused, unfused):
        backend = NumpyBackend("float64")
        fetch = [n.name for n in t.nodes if n.shape is not None and n.name.startswith("grad/")]
        out = run(t, feeds, initial_values(t.state, 3, "float64"), [names.LOSS, *fetch],
                  backend=backend)
        results.append((out, backend.read_state([s.name for s in g.state])))
    (a, state_a), (b, state_b) = results
    common = set(a) & set(b)
    assert {names.grad("c1"), names.grad("bn1/gamma") if "scale" not in bn_args else
            names.grad("bn1/beta")} <= common
    for k in common:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-11, atol=1e-13, err_msg=k)
    for k in state_b:
        np.testing.assert_allclose(state_a[k], state_b[k], rtol=1e-11, atol=1e-13, err_msg=k)
