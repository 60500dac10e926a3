"""How the fused gradient ops bind (bind_act_grad.py), no device needed: the activation's
derivative in the epilogue of the launch storing the producer's value, add_act_grad for a sum of
two gradients, and an activation_grad launch over a scratch buffer where the producer's binding
stores in several steps (a strided input gradient's phases). The arithmetic is checked against
NumPy on the device by op_cases.py's activation_grads_fused case."""

from __future__ import annotations

import pytest

from cnnc.backends.opencl.bind import bind_node
from cnnc.backends.opencl.bind_act_grad import ACT_GRAD_KERNELS
from cnnc.backends.opencl.launches import BindContext, Value, Workspace
from cnnc.backends.opencl.target import Target
from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.pipeline import training_graph

TARGETS = [Target("cpu", 2), Target("gpu", 80, force_local_tiles=True)]


def _graph(act: str):
    return training_graph(lower("net", [
        L("input", [(8, 7, 6)], name="x"),
        L("conv2d", [5, 3], {"padding": "same", "activation": act}, name="c1"),
        L("conv2d", [16, 1], {"activation": act}, name="c2"),
        L("conv2d", [6, 3], {"strides": 2, "padding": "same", "activation": act}, name="c3"),
        L("conv2d", [3, 1], name="p", inputs=["c3"]),
        L("conv2d", [3, 1], name="q", inputs=["c3"]),
        L("add", name="s", inputs=["p", "q"]),
        L("flatten", name="f"),
        L("dense", [6], {"activation": act}, name="d1"),
        L("dense", [2], name="d2"),
    ]), TrainConfig(loss="mean_squared_error"))


def _bind(graph, value, target):
    node = graph.node(value)
    return node, bind_node(node, BindContext(graph, 4, target))


@pytest.mark.parametrize("target", TARGETS, ids=["cpu", "gpu"])
@pytest.mark.parametrize("act", ["gelu", "hard_swish", "mish"])
def test_the_derivative_is_applied_as_the_producer_stores(act, target):
    g = _graph(act)
    for layer in ("c1", "d1"):  # dy from a 1x1 conv's and a dense layer's input gradient
        node, binding = _bind(g, names.preact_grad(layer), target)
        assert node.op in ("conv2d_grad_input_act_grad", "dense_grad_input_act_grad")
        stores = [lau for lau in binding.launches if Value(node.name) in lau.args]
        assert len(stores) == 1, binding.launches
        (lau,) = stores
        assert (lau.file, lau.kernel) in ACT_GRAD_KERNELS
        defines = lau.define_map
        assert defines["HAS_ACT_GRAD"] == 1 and defines[f"ACT_{act.upper()}"] == 1
        assert lau.args[-1] == Value(node.inputs[-1])
        assert not any(x.kernel == "activation_grad" for x in binding.launches)


@pytest.mark.parametrize("target", TARGETS, ids=["cpu", "gpu"])
def test_a_sum_of_two_gradients_applies_the_derivative_in_the_same_pass(target):
    g = _graph("silu")
    node, binding = _bind(g, names.preact_grad("c3"), target)  # c3 is read by p and q
    assert node.op == "add_act_grad"
    (lau,) = binding.launches
    assert lau.kernel == "add_act_grad" and lau.define_map["ACT_SILU"] == 1
    assert lau.args[:4] == (*(Value(v) for v in node.inputs), Value(node.name))


@pytest.mark.parametrize("target", TARGETS, ids=["cpu", "gpu"])
def test_a_producer_storing_in_several_launches_goes_through_a_scratch_buffer(target):
    g = _graph("mish")
    # c2's dy is the strided c3's input gradient: its phases store rows of their own
    node, binding = _bind(g, names.preact_grad("c2"), target)
    assert node.op == "conv2d_grad_input_act_grad"
    last = binding.launches[-1]
    assert (last.file, last.kernel) == ("elementwise.cl", "activation_grad")
    scratch = Workspace(len(binding.workspaces) - 1)
    assert last.args[:3] == (Value(node.inputs[-1]), scratch, Value(node.name))
    assert binding.workspaces[-1] == 4 * 8 * 7 * 16
    assert all(Value(node.name) not in lau.args for lau in binding.launches[:-1])
    assert any(scratch in lau.args for lau in binding.launches[:-1])
