"""FLOP and reduction counts pinned to values worked out by hand (issue 25: halving conv2d's
count failed no test, since the other tests compared cnnc with cnnc).

The conventions, from the op table's docs (cnnc/ir/cost.py, activations.py): a multiply-add
counts two; a bias adds one per output; an activation its table's cost per output (relu 1, tanh
4, linear 0, softmax 5); a pooling window one per element it reads; batch
norm at inference two per element (a scale and a shift); a merge of k inputs k - 1 per output.
Every expected value below is written out from the layer's sizes, not computed by cnnc.
"""

from __future__ import annotations

import pytest

import cnnc
from cnnc.ir.cost import node_flops, total_flops
from cnnc.testing.nets import chain


def _flops(graph, name: str) -> int:
    return node_flops(graph, graph.node(name))


def test_the_seed_model_counts_179_268_796_flops_per_image():
    g = cnnc.load_spec("fashion")
    conv1 = 28 * 28 * 64 * (7 * 7 * 1 * 2 + 1 + 1)  # same padding, bias, relu
    pool1 = 14 * 14 * 64 * 4
    conv2 = 14 * 14 * 128 * (3 * 3 * 64 * 2 + 2)
    conv3 = 14 * 14 * 128 * (3 * 3 * 128 * 2 + 2)
    pool2 = 7 * 7 * 128 * 4
    conv4 = 7 * 7 * 256 * (3 * 3 * 128 * 2 + 2)
    conv5 = 7 * 7 * 256 * (3 * 3 * 256 * 2 + 2)
    pool3 = 3 * 3 * 256 * 4  # floor pooling: 7 -> 3
    dense1 = 128 * (2304 * 2 + 2)
    dense2 = 64 * (128 * 2 + 2)
    dense3 = 10 * (64 * 2 + 1 + 5)  # softmax
    hand = conv1 + pool1 + conv2 + conv3 + pool2 + conv4 + conv5 + pool3 + dense1 + dense2 + dense3
    assert hand == 179_268_796
    assert total_flops(g) == hand
    assert [_flops(g, n) for n in ("conv2d", "conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4")] == [
        conv1, conv2, conv3, conv4, conv5]


@pytest.mark.parametrize("layer,expected", [
    # 5x5x3 input, 4 filters 3x3 'valid': 3x3x4 outputs of 27 multiply-adds, a bias each
    (("conv2d", 4, 3), 3 * 3 * 4 * (27 * 2 + 1)),
    # 'same', stride 2: ceil(5/2) = 3 -> 3x3x4 outputs, tanh (4), no bias
    (("conv2d", 4, 3, {"padding": "same", "strides": 2, "activation": "tanh",
                       "use_bias": False}), 3 * 3 * 4 * (27 * 2 + 4)),
    # 1x1: 5x5x6 outputs of 3 multiply-adds, bias, relu
    (("conv2d", 6, 1, {"activation": "relu"}), 5 * 5 * 6 * (3 * 2 + 1 + 1)),
    # depthwise 3x3 'valid', multiplier 2: 3x3x6 outputs of 9 multiply-adds and a bias
    (("depthwise_conv2d", 3, {"depth_multiplier": 2}), 3 * 3 * 6 * (9 * 2 + 1)),
    # max pooling 2: floor(5/2) = 2 -> 2x2x3 outputs, 4 elements read each
    (("maxpool2d", 2), 2 * 2 * 3 * 4),
    (("avgpool2d", 3, {"strides": 1}), 3 * 3 * 3 * 9),
    # global average pooling: one per input element
    (("global_avgpool2d",), 5 * 5 * 3),
    (("batchnorm",), 2 * 5 * 5 * 3),
    (("activation", "relu"), 5 * 5 * 3 * 1),
    (("activation", "tanh"), 5 * 5 * 3 * 4),
])
def test_layer_flops_by_hand(layer, expected):
    g = chain((5, 5, 3), layer)
    assert _flops(g, g.nodes[-1].name) == expected


def test_dense_and_merges_by_hand():
    g = chain((7,), ("dense", 5, {"activation": "softmax"}))
    assert _flops(g, "dense") == 5 * (7 * 2 + 1 + 5)
    net = cnnc.Network("m", input=(4, 4, 2))
    a = net.conv2d(2, 1, name="a")
    b = net.conv2d(2, 1, name="b")
    s = net.add(a, b, name="s")
    c = net.conv2d(2, 1, name="c")
    net.multiply(s, c, name="p")
    graph = net.build()
    assert _flops(graph, "s") == 4 * 4 * 2 * 1  # two inputs: one addition per output
    assert _flops(graph, "p") == 4 * 4 * 2 * 1


@pytest.mark.parametrize("layer,terms", [
    (("conv2d", 4, 3), 3 * 3 * 3),  # kh x kw x input channels
    (("conv2d", 4, (1, 3)), 1 * 3 * 3),
    (("depthwise_conv2d", 3), 3 * 3),  # one channel's window
    (("avgpool2d", 2), 2 * 2),
    (("global_avgpool2d",), 5 * 5),
])
def test_reduction_counts_by_hand(layer, terms):
    """How many terms each output sums: the cross-check's tolerance grows with its root."""
    g = chain((5, 5, 3), layer)
    node = g.nodes[-1]
    shapes = tuple(g.shape_of(v) for v in node.inputs)
    assert node.opdef.reduction(node.attrs, shapes) == terms


def test_dense_reduction_is_its_input_width():
    g = chain((7,), ("dense", 5))
    node = g.node("dense")
    assert node.opdef.reduction(node.attrs, (g.shape_of(node.inputs[0]),)) == 7


def test_lrn_flops_and_reduction_by_hand():
    """Per value: its square (1), the window's other size - 1 squares added, bias + alpha/size *
    sum (a multiply-add, 2), the power (4, as tanh) and the product with x (1)."""
    g = chain((5, 5, 3), ("lrn", 3))
    assert _flops(g, "lrn") == 5 * 5 * 3 * (1 + 2 + 2 + 4 + 1)
    g = chain((2, 7), ("lrn", 5, {"alpha": 1.0}))
    assert _flops(g, "lrn") == 2 * 7 * (1 + 4 + 2 + 4 + 1)
    node = g.node("lrn")
    assert node.opdef.reduction(node.attrs, ((3, 2, 7),)) == 5  # the window's squares
