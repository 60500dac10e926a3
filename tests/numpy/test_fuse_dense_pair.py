"""A dense layer and the softmax head reading it as one dense_pair node
(passes/fuse_dense_pair.py, cnnc/ir/dense_pair.py): a value worked by hand, which graphs fuse and
which must not, that the fused graph computes what the unfused one does on the NumPy reference
(the example specs' heads too), and that training graphs keep the two nodes."""

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


def _pair(*tail: L, hidden: dict | None = None, head: dict | None = None, outputs=None):
    """input 7 -> dense 5 -> dense 3 (softmax) [-> tail]."""
    return lower("net", [L("input", [(7,)], name="in"),
                         L("dense", [5], hidden or {"activation": "tanh"}, name="h"),
                         L("dense", [3], head or {"activation": "softmax"}, name="d"),
                         *tail], outputs=outputs)


def _same_outputs(graph, seed: int = 0, batch: int = 3):
    return same_outputs(graph, "fuse_dense_pair", seed, batch)


def test_one_row_by_hand():
    g = lower("net", [L("input", [(2,)], name="in"),
                      L("dense", [2], {"activation": "relu"}, name="h"),
                      L("dense", [2], {"activation": "softmax", "use_bias": False}, name="d")])
    fused = inference_graph(g, check=True)
    assert _ops(fused) == {"d": "dense_pair"}
    state = {"h/kernel": np.array([[1.0, -1.0], [2.0, 1.0]]), "h/bias": np.array([0.0, -5.0]),
             "d/kernel": np.array([[1.0, 0.0], [0.0, 1.0]])}
    # x (1, 1): hidden relu(1 + 2, -1 + 1 - 5) = (3, 0); softmax(3, 0)
    got = run(fused, {"in": np.array([[1.0, 1.0]])}, state)["d"].ravel()
    want = np.exp([3.0, 0.0]) / np.exp([3.0, 0.0]).sum()
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("hidden", [{"activation": "tanh"}, {"activation": "relu"},
                                    {"use_bias": False}, {"activation": "hard_swish"}])
def test_pairs_fuse_and_compute_the_same(hidden):
    fused = _same_outputs(_pair(hidden=hidden))
    assert _ops(fused) == {"d": "dense_pair"}
    node = fused.node("d")
    assert node.inputs == ("in",) and node.attrs["hidden_name"] == "h"
    assert node.params == ("h/kernel", *(("h/bias",) if hidden.get("use_bias", True) else ()),
                           "d/kernel", "d/bias")
    assert fused.shape_of("d") == (None, 3)


def test_a_dropout_between_them_is_gone_first():
    fused = _same_outputs(lower("net", [L("input", [(6,)], name="in"),
                                        L("dense", [4], {"activation": "relu"}, name="h"),
                                        L("dropout", [0.5], name="x"),
                                        L("dense", [3], {"activation": "softmax"}, name="d")]))
    assert _ops(fused) == {"d": "dense_pair"}


@pytest.mark.parametrize("case", ["no_softmax", "two_readers", "output", "softmax_hidden"])
def test_what_must_stay_as_it_is(case):
    keep = {"h": "dense", "d": "dense"}
    if case == "no_softmax":  # the kernel's head is a softmax
        g = _pair(head={"activation": "relu"})
    elif case == "two_readers":  # the hidden vector is needed anyway
        g = _pair(L("dense", [2], name="e", inputs=["h"]), outputs=["d", "e"])
        keep = {**keep, "e": "dense"}
    elif case == "output":
        g = _pair(outputs=["h", "d"])
    else:  # not an element-wise activation on the hidden layer
        g = _pair(hidden={"activation": "softmax"})
    assert _ops(_same_outputs(g)) == keep


def test_training_graphs_keep_the_two_layers():
    config = TrainConfig(loss="sparse_categorical_crossentropy",
                         optimizer=parse_optimizer("sgd"))
    ops = {n.op for n in training_graph(_pair(), config, seed=0).nodes}
    assert "dense_pair" not in ops and "dense" in ops


@pytest.mark.parametrize("spec", ["lenet5", "fashion", "mobilenetv3_mini"])
def test_the_example_heads_fuse_and_compute_the_same(spec):
    fused = _same_outputs(cnnc.load_spec(spec), batch=2)
    assert list(_ops(fused).values())[-1] == "dense_pair"


def test_the_op_refuses_what_it_cannot_compute():
    good = {"hidden": Attrs(units=4, activation="tanh", use_bias=True),
            "head": Attrs(units=3, activation="softmax", use_bias=True), "hidden_name": "h"}
    with pytest.raises(ArgError, match="attributes are invalid"):
        OPS["dense_pair"].check_attrs({**good, "hidden": Attrs(units=0)})
    with pytest.raises(ArgError, match="attributes"):
        OPS["dense_pair"].check_attrs({**good, "head": {"units": 4}})
    with pytest.raises(ArgError, match="softmax on the head"):
        OPS["dense_pair"].check_attrs({**good, "head": Attrs(units=3, activation="relu",
                                                             use_bias=True)})
    with pytest.raises(ArgError, match="element-wise activation on the hidden layer"):
        OPS["dense_pair"].check_attrs({**good, "hidden": Attrs(units=4, activation="softmax",
                                                               use_bias=True)})
