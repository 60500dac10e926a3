"""A convolution and the 2x2 max pooling reading it as one conv2d_maxpool node
(passes/fuse_conv_maxpool.py, cnnc/ir/conv_maxpool.py): a value worked by hand, which graphs
fuse and which must not, that the fused graph computes what the unfused one does on the NumPy
reference (odd and even maps, 'same' and 'valid', every kind of convolution it takes, the
example specs), and that training graphs keep the two nodes."""

from __future__ import annotations

import numpy as np
import pytest
from fusion_checks import ops as _ops
from fusion_checks import same_outputs

import cnnc
from cnnc.errors import ShapeError
from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.ir.args import ArgError
from cnnc.ir.ops import OPS
from cnnc.ir.train_config import TrainConfig, parse_optimizer
from cnnc.passes.pipeline import inference_graph, training_graph
from cnnc.testing.nets import run


def _net(*tail: L, conv: dict | None = None, act: str = "relu", bn: bool = False,
         pool: dict | None = None, outputs=None, shape=(6, 6, 2), residual: bool = False,
         kind: str = "maxpool2d"):
    """input -> 3x3 conv (4 filters, or the input's channels with a residual) [-> batchnorm]
    [-> add input] [-> act] -> maxpool (or `kind`) [-> tail]."""
    filters = shape[-1] if residual else 4
    layers = [L("input", [shape], name="in"),
              L("conv2d", [filters], {"kernel_size": 3, "padding": "same", **(conv or {})},
                name="c"),
              *([L("batchnorm", name="bn")] if bn else [])]
    if residual:
        layers.append(L("add", name="r", inputs=["in", layers[-1].name]))
    layers += [*([L("activation", [act], name="a")] if act else []),
               L(kind, [], {"pool_size": 2, **(pool or {})}, name="p"), *tail]
    return lower("net", layers, outputs=outputs)


def _same_outputs(graph, seed: int = 0, batch: int = 3):
    return same_outputs(graph, "fuse_conv_maxpool", seed, batch)



def test_a_window_by_hand():
    g = lower("net", [L("input", [(2, 3, 1)], name="in"),
                      L("conv2d", [1, 1], {"activation": "relu"}, name="c"),
                      L("maxpool2d", [2], {"padding": "same"}, name="p")])
    fused = inference_graph(g, check=True)
    assert _ops(fused) == {"p": "conv2d_maxpool"}
    state = {"c/kernel": np.array([-1.0]).reshape(1, 1, 1, 1), "c/bias": np.array([0.5])}
    x = np.array([[3.0, 1.0, 2.0], [0.0, 1.0, -4.0]]).reshape(1, 2, 3, 1)
    # relu(0.5 - x): [[0, 0, 0], [0.5, 0, 4.5]]; 'same' keeps the last column's half window
    assert run(fused, {"in": x}, state)["p"].ravel().tolist() == [0.5, 4.5]


@pytest.mark.parametrize("shape, conv, pool", [
    ((6, 6, 2), {}, {}), ((7, 7, 3), {}, {}), ((7, 5, 2), {}, {"padding": "same"}),
    ((9, 8, 1), {"padding": "valid"}, {}), ((5, 7, 2), {"kernel_size": 1}, {"ceil_mode": True}),
    ((6, 7, 2), {}, {"pads": (0, 1, 0, 1)}), ((8, 8, 2), {"strides": 2}, {}),
    ((6, 6, 2), {}, {"strides": (2, 2)})])
def test_maps_and_windows_fuse_and_compute_the_same(shape, conv, pool):
    fused = _same_outputs(_net(conv=conv, pool=pool, shape=shape))
    assert _ops(fused) == {"p": "conv2d_maxpool"}
    node = fused.node("p")
    assert node.attrs["conv_op"] == "conv2d" and node.inputs == ("in",)
    assert node.params == ("c/kernel", "c/bias")


@pytest.mark.parametrize("act", ["relu", "", "elu", "tanh", "sigmoid", "hard_swish", "gelu",
                                 "leaky_relu"])
@pytest.mark.parametrize("bn, residual", [(False, False), (True, False), (False, True),
                                          (True, True)])
def test_every_convolution_and_activation_fuses(act, bn, residual):
    fused = _same_outputs(_net(act=act, bn=bn, residual=residual))
    assert _ops(fused) == {"p": "conv2d_maxpool"}
    want = "conv2d" + ("_bn" if bn else "") + ("_add" if residual else "")
    assert fused.node("p").attrs["conv_op"] == want
    assert fused.node("p").inputs == (("in", "in") if residual else ("in",))


@pytest.mark.parametrize("case", ["two_readers", "output", "softmax", "3x3_window", "stride_1",
                                  "pads_before", "dilated", "avg_pool_short_window",
                                  "depthwise"])
def test_what_must_stay_as_it_is(case):
    keep = {"a": "conv2d", "p": "maxpool2d"}
    if case == "two_readers":  # the map is needed anyway
        g = _net(L("flatten", name="f", inputs=["a"]), outputs=["p", "f"])
        keep = {**keep, "f": "flatten"}
    elif case == "output":
        g = _net(outputs=["a", "p"])
    elif case == "softmax":  # spans a pixel's channels: not an epilogue
        g = _net(act="softmax")
    elif case == "3x3_window":
        g = _net(pool={"pool_size": 3})
    elif case == "stride_1":
        g = _net(pool={"strides": 1})
    elif case == "pads_before":  # windows start on odd rows
        g = _net(pool={"pads": (1, 0, 1, 0)}, shape=(7, 7, 2))
    elif case == "dilated":
        g = _net(pool={"dilation_rate": 2}, shape=(8, 8, 2))
    elif case == "avg_pool_short_window":  # a mean over fewer cells: not the kernels' rule
        g = lower("net", [L("input", [(5, 6, 2)], name="in"), L("conv2d", [4, 3], name="c"),
                          L("avgpool2d", [2], {"padding": "same"}, name="p")])
        keep = {"c": "conv2d", "p": "avgpool2d"}
    else:
        g = lower("net", [L("input", [(6, 6, 2)], name="in"),
                          L("depthwise_conv2d", [3], name="c"), L("maxpool2d", [2], name="p")])
        keep = {"c": "depthwise_conv2d", "p": "maxpool2d"}
    assert _ops(_same_outputs(g)) == keep


@pytest.mark.parametrize("shape, conv, pool", [
    ((6, 6, 2), {}, {}), ((7, 7, 3), {}, {}), ((7, 5, 2), {}, {"padding": "same"}),
    ((9, 8, 1), {"padding": "valid"}, {}), ((6, 7, 2), {}, {"pads": (0, 1, 0, 1)}),
    ((8, 8, 2), {"strides": 2}, {}), ((6, 10, 2), {}, {"count_include_pad": True})])
def test_average_pools_of_whole_windows_fuse_and_compute_the_same(shape, conv, pool):
    """Floor pooling of odd maps leaves the last row or column out: every window whole. A
    window that 'same' or pads would cut short stays unfused (the '(7, 5)' and pads cases
    pool 7x5 and 6x7 maps: their last windows are short). A folded batch norm and a residual
    where the map keeps the input's size."""
    for bn, residual in [(False, False), *([(True, True)] if not conv else [])]:
        graph = _net(conv=conv, pool=pool, shape=shape, bn=bn, residual=residual, act="tanh",
                     kind="avgpool2d")
        fused = _same_outputs(graph)
        short = "padding" in pool or "pads" in pool
        assert _ops(fused) == ({"a": "conv2d" + "_bn" * bn + "_add" * residual,
                                "p": "avgpool2d"} if short else {"p": "conv2d_avgpool"})


def test_the_average_op_refuses_short_windows():
    conv = OPS["conv2d"].check_attrs({"filters": 4, "kernel_size": 3, "padding": "same"})
    pool = OPS["avgpool2d"].check_attrs({"pool_size": 2, "padding": "same"})
    attrs = OPS["conv2d_avgpool"].check_attrs({"conv_op": "conv2d", "conv": conv, "pool": pool})
    assert OPS["conv2d_avgpool"].infer(attrs, ((None, 6, 4, 2),)) == (None, 3, 2, 4)
    with pytest.raises(ShapeError, match="whole inside the convolution's 5x4 map"):
        OPS["conv2d_avgpool"].infer(attrs, ((None, 5, 4, 2),))


def test_training_graphs_keep_the_convolution_and_the_pooling():
    g = _net(L("flatten", name="f"), L("dense", [3], {"activation": "softmax"}, name="d"))
    config = TrainConfig(loss="sparse_categorical_crossentropy",
                         optimizer=parse_optimizer("sgd"))
    ops = {n.op for n in training_graph(g, config, seed=0).nodes}
    assert "conv2d_maxpool" not in ops and "maxpool2d" in ops


@pytest.mark.parametrize("spec, pools", [("fashion", 3), ("fashion-plus", 3), ("lenet5", 2)])
def test_the_example_pools_fuse_and_compute_the_same(spec, pools):
    fused = _same_outputs(cnnc.load_spec(spec), batch=2)
    ops = list(_ops(fused).values())
    fused_op = "conv2d_avgpool" if spec == "lenet5" else "conv2d_maxpool"
    assert ops.count(fused_op) == pools and "maxpool2d" not in ops and "avgpool2d" not in ops


def test_the_op_refuses_what_it_cannot_compute():
    conv = OPS["conv2d"].check_attrs({"filters": 4, "kernel_size": 3})
    pool = OPS["maxpool2d"].check_attrs({"pool_size": 2})
    OPS["conv2d_maxpool"].check_attrs({"conv_op": "conv2d", "conv": conv, "pool": pool})
    wide = OPS["maxpool2d"].check_attrs({"pool_size": 3, "strides": 2})
    with pytest.raises(ArgError, match="2x2"):
        OPS["conv2d_maxpool"].check_attrs({"conv_op": "conv2d", "conv": conv, "pool": wide})
    soft = OPS["conv2d"].check_attrs({"filters": 4, "kernel_size": 3, "activation": "softmax"})
    with pytest.raises(ArgError, match="softmax"):
        OPS["conv2d_maxpool"].check_attrs({"conv_op": "conv2d", "conv": soft, "pool": pool})
    with pytest.raises(ArgError):
        OPS["conv2d_maxpool"].check_attrs({"conv_op": "dense", "conv": conv, "pool": pool})
