"""Issue 20's activations in the passes: their names and aliases, derivatives by hand, the
training split of a layer whose activation's gradient reads its input, and inference fusion."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cnnc
from cnnc.backends.numpy.activations import activation_grad
from cnnc.errors import CnncError
from cnnc.ir.activations import ACTIVATIONS, reads_input
from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.pipeline import inference_graph, training_graph

NEW = ("silu", "hard_sigmoid", "hard_swish", "gelu", "gelu_tanh", "softplus", "mish")
SIG1 = 1 / (1 + math.e)  # sigmoid(-1)

# d/dx by hand at x = -1, 0, 1 and 4 (past the hard ones' kink at 3).
DERIVATIVES = {
    "silu": [SIG1 * (1 - (1 - SIG1)), 0.5, (1 - SIG1) * (1 + SIG1), None],
    "hard_sigmoid": [1 / 6, 1 / 6, 1 / 6, 0.0],
    "hard_swish": [-1 / 3 + 0.5, 0.5, 1 / 3 + 0.5, 1.0],
    # Phi(x) + x phi(x), phi(1) = exp(-1/2) / sqrt(2 pi)
    "gelu": [0.15865525393145707 - math.exp(-0.5) / math.sqrt(2 * math.pi), 0.5,
             0.8413447460685429 + math.exp(-0.5) / math.sqrt(2 * math.pi), None],
    "gelu_tanh": [None, 0.5, None, None],
    "softplus": [SIG1, 0.5, 1 - SIG1, 1 / (1 + math.exp(-4))],
    "mish": [None, math.tanh(math.log(2)), None, None],  # tanh(softplus(0)) = 0.6
}


@pytest.mark.parametrize("act", NEW)
def test_derivatives_by_hand(act):
    x = np.array([-1.0, 0.0, 1.0, 4.0])
    got = activation_grad({"activation": act}, x, np.ones(4))
    for g, want in zip(got, DERIVATIVES[act], strict=True):
        if want is not None:
            assert g == pytest.approx(want, rel=1e-14, abs=1e-300)


def test_every_new_activation_is_differentiated_from_its_input():
    assert all(reads_input({"activation": a}) for a in NEW)
    assert not reads_input({"activation": "tanh"})


@pytest.mark.parametrize("word, name", [("swish", "silu"), ("hard_silu", "hard_swish"),
                                        ("SiLU", "silu"), ("gelu_tanh", "gelu_tanh")])
def test_aliases_name_their_row(word, name):
    g = cnnc.load_spec(f"input 4x4x2\nc: conv2d 3 3 activation={word}\na: activation {word}\n")
    assert g.node("c").attrs["activation"] == g.node("a").attrs["activation"] == name


def test_an_unknown_activation_lists_the_aliases_too():
    with pytest.raises(CnncError, match="'swish'"):
        cnnc.load_spec("input 4x4x2\nconv2d 3 3 activation=swishy\n")


@pytest.mark.parametrize("act", NEW)
def test_training_splits_the_layer_and_differentiates_from_the_preactivation(act):
    g = cnnc.load_spec(f"input 5x5x2\nc: conv2d 3 3 {act}\nflatten\nd: dense 2 {act}\n")
    tg = training_graph(g, TrainConfig(loss="mean_squared_error"))
    for layer in ("c", "d"):
        pre = tg.node(names.preactivation(layer))
        assert pre.attrs["activation"] == "linear" and pre.params == g.node(layer).params
        node = tg.node(layer)
        assert node.op == "activation" and node.attrs["activation"] == act
        (grad,) = [n for n in tg.nodes if n.op == "activation_grad" and
                   n.inputs[1] == names.grad(layer)]
        assert grad.inputs[0] == pre.name  # x, not y
        assert grad.name == names.preact_grad(layer)


def test_plain_activations_still_train_fused():
    g = cnnc.load_spec("input 5x5x2\nc: conv2d 3 3 tanh\n")
    tg = training_graph(g, TrainConfig(loss="mean_squared_error"))
    assert tg.node("c").op == "conv2d" and names.preactivation("c") not in tg.node_map


@pytest.mark.parametrize("act", NEW)
def test_inference_fuses_a_following_activation_layer_into_the_conv(act):
    g = cnnc.load_spec(f"input 6x6x3\nc: conv2d 4 3\na: activation {act}\n"
                       f"b: depthwise_conv2d 3\nbn: batchnorm\nm: activation {act}\n")
    ig = inference_graph(g)
    assert [n.op for n in ig.nodes] == ["input", "conv2d", "depthwise_conv2d_bn"]
    assert ig.node("a").attrs["activation"] == ig.node("m").attrs["activation"] == act


def test_batchnorm_then_a_new_activation_trains_as_one_node():
    """The gradient reads the normalised value, which batch norm's gradient kernels recompute
    from x (fuse_bn_act_grad.py): batch norm and gelu are one node, v is never stored."""
    g = cnnc.load_spec("input 5x5x2\nc: conv2d 3 3\nbn: batchnorm\na: activation gelu\n")
    tg = training_graph(g, TrainConfig(loss="mean_squared_error"))
    assert "bn" not in tg.node_map
    assert tg.node("a").op == "batchnorm_train" and tg.node("a").attrs["activation"] == "gelu"


def test_the_hard_ones_are_kinked_where_their_rows_say():
    for act in ("hard_sigmoid", "hard_swish"):
        assert ACTIVATIONS[act].kinked and ACTIVATIONS[act].kinks == (-3.0, 3.0)
