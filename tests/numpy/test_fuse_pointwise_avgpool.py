"""A 1x1 convolution and the global average pooling reading it as one pointwise_avgpool node
(passes/fuse_pointwise_avgpool.py, cnnc/ir/pointwise_avgpool.py): a value worked by hand, which
graphs fuse and which must not, that the fused graph computes what the unfused one does on the
NumPy reference (the example specs' heads too), and that training graphs keep the two nodes."""

from __future__ import annotations

import numpy as np
import pytest
from fusion_checks import ops as _ops
from fusion_checks import same_outputs

import cnnc
from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.ir.args import ArgError, Attrs
from cnnc.ir.ops import OPS
from cnnc.ir.train_config import TrainConfig, parse_optimizer
from cnnc.passes.pipeline import inference_graph, training_graph
from cnnc.testing.nets import run


def _head(*tail: L, conv: dict | None = None, act: str = "relu", bn: bool = True,
          keepdims: bool = False, outputs=None, shape=(5, 3, 4)):
    """input 5x3x4 -> 1x1 conv (6) [-> batchnorm] [-> act] -> global average pooling [-> tail]."""
    return lower("net", [L("input", [shape], name="in"),
                         L("conv2d", [6], {"kernel_size": 1, **(conv or {})}, name="c"),
                         *([L("batchnorm", name="bn")] if bn else []),
                         *([L("activation", [act], name="a")] if act else []),
                         L("global_avgpool2d", [], {"keepdims": keepdims}, name="g"),
                         *tail], outputs=outputs)


def _same_outputs(graph, seed: int = 0, batch: int = 3):
    return same_outputs(graph, "fuse_pointwise_avgpool", seed, batch)



def test_two_pixels_by_hand():
    g = lower("net", [L("input", [(1, 2, 2)], name="in"),
                      L("conv2d", [1, 1], {"activation": "relu"}, name="c"),
                      L("global_avgpool2d", name="g")])
    fused = inference_graph(g, check=True)
    assert _ops(fused) == {"g": "pointwise_avgpool"}
    state = {"c/kernel": np.array([1.0, -2.0]).reshape(1, 1, 2, 1), "c/bias": np.array([0.5])}
    x = np.array([[3.0, 1.0], [0.0, 1.0]]).reshape(1, 1, 2, 2)
    # pixel 1: relu(3 - 2 + 0.5) = 1.5; pixel 2: relu(0 - 2 + 0.5) = 0 -> mean 0.75
    assert run(fused, {"in": x}, state)["g"].ravel().tolist() == [0.75]


@pytest.mark.parametrize("conv, act, bn, keepdims", [
    ({}, "relu", True, False), ({"use_bias": False}, "hard_swish", True, True),
    ({}, "silu", False, False), ({}, "", True, False), ({}, "relu6", False, True)])
def test_heads_fuse_and_compute_the_same(conv, act, bn, keepdims):
    fused = _same_outputs(_head(conv=conv, act=act, bn=bn, keepdims=keepdims))
    assert _ops(fused) == {"g": "pointwise_avgpool"}
    node = fused.node("g")
    assert node.attrs["conv_op"] == ("conv2d_bn" if bn else "conv2d")
    assert node.attrs["keepdims"] is keepdims and node.inputs == ("in",)
    assert fused.shape_of("g") == ((None, 1, 1, 6) if keepdims else (None, 6))


@pytest.mark.parametrize("case", ["3x3", "strided", "two_readers", "output", "softmax",
                                  "residual", "max_pool"])
def test_what_must_stay_as_it_is(case):
    keep = {"a": "conv2d_bn", "g": "global_avgpool2d"}
    if case == "3x3":
        g = _head(conv={"kernel_size": 3, "padding": "same"})
    elif case == "strided":
        g = _head(conv={"strides": 2})
    elif case == "two_readers":  # the map is needed anyway
        g = _head(L("flatten", name="f", inputs=["a"]), outputs=["g", "f"])
        keep = {**keep, "f": "flatten"}
    elif case == "output":
        g = _head(outputs=["a", "g"])
    elif case == "softmax":  # spans a pixel's channels: not an epilogue
        g = _head(act="softmax")
    elif case == "residual":  # a residual convolution: fuse_residual's op
        g = lower("net", [L("input", [(4, 4, 3)], name="in"),
                          L("conv2d", [3, 1], name="c"),
                          L("add", name="r", inputs=["in", "c"]),
                          L("global_avgpool2d", name="g")])
        keep = {"r": "conv2d_add", "g": "global_avgpool2d"}
    else:
        g = lower("net", [L("input", [(4, 4, 3)], name="in"),
                          L("conv2d", [3, 1], name="c"),
                          L("global_maxpool2d", name="g")])
        keep = {"c": "conv2d", "g": "global_maxpool2d"}
    assert _ops(_same_outputs(g)) == keep


def test_training_graphs_keep_the_convolution_and_the_pooling():
    g = _head(L("dense", [3], {"activation": "softmax"}, name="d"))
    config = TrainConfig(loss="sparse_categorical_crossentropy",
                         optimizer=parse_optimizer("sgd"))
    ops = {n.op for n in training_graph(g, config, seed=0).nodes}
    assert "pointwise_avgpool" not in ops and "global_avgpool2d" in ops


@pytest.mark.parametrize("spec", ["mobilenetv3_mini", "efficientnet_mini", "mobilenet_mini"])
def test_the_example_heads_fuse_and_compute_the_same(spec):
    fused = _same_outputs(cnnc.load_spec(spec), batch=2)
    assert "pointwise_avgpool" in _ops(fused).values()


def test_a_head_reading_gathers_in_place_fuses_with_its_pooling():
    """shufflenet_mini's head convolution reads its input's channels where the branches stored
    them (fuse_shuffle runs first: conv2d_bn_gathered); the pooling takes it in, with its four
    inputs and runs, so its 7x7x128 map is never written either."""
    graph = cnnc.load_spec("shufflenet_mini")
    fused = _same_outputs(graph, batch=2)
    ops = list(_ops(fused).values())
    assert ops[-2:] == ["pointwise_avgpool", "dense"] and "avgpool_dense" not in ops
    head = fused.nodes[-2]
    assert head.attrs["conv_op"] == "conv2d_bn_gathered" and len(head.inputs) == 4
    assert len(head.attrs["conv"]["segments"]) == 4
    assert fused.shape_of(head.name) == (None, 128)


def test_a_gathered_head_by_hand():
    """Two inputs whose channels a shuffle interleaves, a 1x1 convolution on them and the
    pooling: one pointwise_avgpool node reading both, worked out here."""
    g = lower("net", [L("input", [(1, 2, 1)], name="a"), L("input", [(1, 2, 1)], name="b"),
                      L("concatenate", [], name="cat", inputs=["a", "b"]),
                      L("channel_shuffle", [2], name="sh"),
                      L("conv2d", [1, 1], {"activation": "relu"}, name="c"),
                      L("global_avgpool2d", name="g")])
    fused = inference_graph(g, check=True)
    assert _ops(fused) == {"g": "pointwise_avgpool"} and fused.node("g").inputs == ("a", "b")
    state = {"c/kernel": np.array([1.0, -2.0]).reshape(1, 1, 2, 1), "c/bias": np.array([0.5])}
    a, b = np.array([3.0, 0.0]).reshape(1, 1, 2, 1), np.array([1.0, 1.0]).reshape(1, 1, 2, 1)
    # pixel 1: relu(3 - 2 + 0.5) = 1.5; pixel 2: relu(0 - 2 + 0.5) = 0 -> mean 0.75
    assert run(fused, {"a": a, "b": b}, state)["g"].ravel().tolist() == [0.75]


def test_the_op_refuses_what_it_cannot_compute():
    conv = OPS["conv2d"].check_attrs({"filters": 4, "kernel_size": 3})
    with pytest.raises(ArgError, match="1x1"):
        OPS["pointwise_avgpool"].check_attrs({"conv_op": "conv2d", "conv": conv})
    soft = OPS["conv2d"].check_attrs({"filters": 4, "kernel_size": 1, "activation": "softmax"})
    with pytest.raises(ArgError, match="softmax"):
        OPS["pointwise_avgpool"].check_attrs({"conv_op": "conv2d", "conv": soft})
    with pytest.raises(ArgError):
        OPS["pointwise_avgpool"].check_attrs({"conv_op": "conv2d", "conv": Attrs(filters=4)})
