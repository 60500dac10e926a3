"""A 1x1 convolution and the 1x1 convolution reading it as one pointwise_mlp node
(passes/fuse_pointwise_mlp.py, cnnc/ir/pointwise_mlp.py): a value worked by hand, which graphs
fuse and which must not, that the fused graph computes what the unfused one does on the NumPy
reference (convnext_mini too), and that training graphs keep the two nodes."""

from __future__ import annotations

import numpy as np
import pytest
from fusion_checks import ops as _ops
from fusion_checks import same_outputs

import cnnc
from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.ir.args import ArgError
from cnnc.ir.ops import OPS
from cnnc.ir.train_config import TrainConfig, parse_optimizer
from cnnc.passes.pipeline import inference_graph, training_graph
from cnnc.testing.nets import run


def _block(*tail: L, expand: dict | None = None, project: dict | None = None,
           act: str = "gelu", bn: bool = False, residual: bool = True, outputs=None,
           shape=(5, 3, 4)):
    """input 5x3x4 -> 1x1 conv (12) [-> batchnorm] [-> act] -> 1x1 conv (4) [+ input] [-> tail]."""
    return lower("net", [L("input", [shape], name="in"),
                         L("conv2d", [12], {"kernel_size": 1, **(expand or {})}, name="e"),
                         *([L("batchnorm", name="bn")] if bn else []),
                         *([L("activation", [act], name="a")] if act else []),
                         L("conv2d", [shape[-1]], {"kernel_size": 1, **(project or {})},
                           name="p"),
                         *([L("add", name="r", inputs=["in", "p"])] if residual else []),
                         *tail], outputs=outputs)


def _same_outputs(graph, seed: int = 0, batch: int = 3):
    return same_outputs(graph, "fuse_pointwise_mlp", seed, batch)


def test_one_pixel_by_hand():
    g = lower("net", [L("input", [(1, 1, 2)], name="in"),
                      L("conv2d", [2, 1], {"activation": "relu"}, name="e"),
                      L("conv2d", [1, 1], name="p")])
    fused = inference_graph(g, check=True)
    assert _ops(fused) == {"p": "pointwise_mlp"}
    state = {"e/kernel": np.array([[1.0, -1.0], [2.0, 1.0]]).reshape(1, 1, 2, 2),
             "e/bias": np.array([0.0, 0.5]), "p/kernel": np.array([3.0, -2.0]).reshape(1, 1, 2, 1),
             "p/bias": np.array([0.25])}
    x = np.array([1.0, 1.0]).reshape(1, 1, 1, 2)
    # hidden: relu(1 + 2) = 3, relu(-1 + 1 + 0.5) = 0.5; out: 3 * 3 - 2 * 0.5 + 0.25 = 8.25
    assert run(fused, {"in": x}, state)["p"].ravel().tolist() == [8.25]


@pytest.mark.parametrize("expand, project, act, bn, residual", [
    ({}, {}, "gelu", False, True),  # convnext_mini's block
    ({"use_bias": False}, {}, "relu", True, True),
    ({}, {"use_bias": False}, "silu", False, False),
    ({}, {}, "", True, False),
    ({}, {"activation": "relu6"}, "", False, False),  # the projection's own activation
    ({}, {}, "hard_swish", True, False)])
def test_blocks_fuse_and_compute_the_same(expand, project, act, bn, residual):
    fused = _same_outputs(_block(expand=expand, project=project, act=act, bn=bn,
                                 residual=residual))
    name = "r" if residual else "p"
    assert _ops(fused) == {name: "pointwise_mlp"}
    node = fused.node(name)
    assert node.attrs["expand_op"] == ("conv2d_bn" if bn else "conv2d")
    assert node.attrs["project_op"] == ("conv2d_add" if residual else "conv2d")
    assert node.inputs == (("in", "in") if residual else ("in",))
    assert fused.shape_of(name) == (None, 5, 3, 4)


def test_a_projection_with_a_batch_norm_and_a_residual_fuses():
    g = lower("net", [L("input", [(3, 3, 4)], name="in"),
                      L("conv2d", [8, 1], {"activation": "relu"}, name="e"),
                      L("conv2d", [4, 1], name="p"), L("batchnorm", name="bn"),
                      L("add", name="r", inputs=["in", "bn"])])
    fused = _same_outputs(g)
    assert _ops(fused) == {"r": "pointwise_mlp"}
    assert fused.node("r").attrs["project_op"] == "conv2d_bn_add"


@pytest.mark.parametrize("case", ["3x3", "strided", "expand_strided", "two_readers", "output",
                                  "two_activations", "softmax", "residual_is_hidden"])
def test_what_must_stay_as_it_is(case):
    keep = {"a": "conv2d", "r": "conv2d_add"}
    if case == "3x3":
        g = _block(project={"kernel_size": 3, "padding": "same"})
    elif case == "strided":
        g = _block(project={"strides": 2}, residual=False)
        keep = {"a": "conv2d", "p": "conv2d"}
    elif case == "expand_strided":
        g = _block(expand={"strides": 2}, residual=False)
        keep = {"a": "conv2d", "p": "conv2d"}
    elif case == "two_readers":  # the hidden map is needed anyway
        g = _block(L("flatten", name="f", inputs=["a"]), outputs=["r", "f"])
        keep = {**keep, "f": "flatten"}
    elif case == "output":
        g = _block(outputs=["a", "r"])
    elif case == "two_activations":  # the kernel builds one ACTIVATE
        g = _block(project={"activation": "relu"}, residual=False)
        keep = {"a": "conv2d", "p": "conv2d"}
    elif case == "softmax":  # spans a pixel's channels: not an epilogue
        g = _block(act="softmax", residual=False)
        keep = {"a": "conv2d", "p": "conv2d"}
    else:  # add(p(e(x)), e(x)): the hidden map is the residual too
        g = lower("net", [L("input", [(4, 4, 3)], name="in"),
                          L("conv2d", [3, 1], {"activation": "relu"}, name="e"),
                          L("conv2d", [3, 1], name="p"),
                          L("add", name="r", inputs=["e", "p"])])
        keep = {"e": "conv2d", "r": "conv2d_add"}
    assert _ops(_same_outputs(g)) == keep


def test_training_graphs_keep_both_convolutions():
    g = _block(L("global_avgpool2d", name="g"), L("dense", [3], {"activation": "softmax"},
                                                   name="d"))
    config = TrainConfig(loss="sparse_categorical_crossentropy",
                         optimizer=parse_optimizer("sgd"))
    ops = [n.op for n in training_graph(g, config, seed=0).nodes]
    assert "pointwise_mlp" not in ops and ops.count("conv2d") >= 2


def test_convnext_mini_fuses_its_three_blocks_and_computes_the_same():
    fused = _same_outputs(cnnc.load_spec("convnext_mini"), batch=2)
    mlps = [name for name, op in _ops(fused).items() if op == "pointwise_mlp"]
    assert mlps == ["b1_out", "add", "add_1"]


def test_the_op_refuses_what_it_cannot_compute():
    one = OPS["conv2d"].check_attrs({"filters": 4, "kernel_size": 1, "activation": "gelu"})
    three = OPS["conv2d"].check_attrs({"filters": 4, "kernel_size": 3})
    relu = OPS["conv2d"].check_attrs({"filters": 4, "kernel_size": 1, "activation": "relu"})
    soft = OPS["conv2d"].check_attrs({"filters": 4, "kernel_size": 1, "activation": "softmax"})
    check = OPS["pointwise_mlp"].check_attrs
    with pytest.raises(ArgError, match="1x1"):
        check({"expand_op": "conv2d", "expand": one, "project_op": "conv2d", "project": three})
    with pytest.raises(ArgError, match="at most one"):
        check({"expand_op": "conv2d", "expand": one, "project_op": "conv2d", "project": relu})
    with pytest.raises(ArgError, match="element-wise"):
        check({"expand_op": "conv2d", "expand": soft, "project_op": "conv2d", "project": relu})
