"""A global average pooling and the dense layer reading it as one avgpool_dense node
(passes/fuse_avgpool_dense.py, cnnc/ir/avgpool_dense.py): a value worked by hand, which graphs
fuse and which must not, that the fused graph computes what the unfused one does on the NumPy
reference (the example specs' heads too), and that training graphs keep the two nodes."""

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


def _head(*tail: L, dense: dict | None = None, keepdims: bool = False, outputs=None,
          shape=(5, 3, 7)):
    """input 5x3x7 -> conv 3x3 (6) -> global average pooling -> dense 4 [-> tail]."""
    return lower("net", [L("input", [shape], name="in"),
                         L("conv2d", [6, 3], {"padding": "same"}, name="c"),
                         L("global_avgpool2d", [], {"keepdims": keepdims}, name="g"),
                         L("dense", [4], dense or {"activation": "softmax"}, name="d"),
                         *tail], outputs=outputs)


def _same_outputs(graph, seed: int = 0, batch: int = 3):
    return same_outputs(graph, "fuse_avgpool_dense", seed, batch)



def test_two_pixels_by_hand():
    g = lower("net", [L("input", [(1, 2, 2)], name="in"),
                      L("global_avgpool2d", name="g"),
                      L("dense", [1], {"activation": "relu"}, name="d")])
    fused = inference_graph(g, check=True)
    assert _ops(fused) == {"d": "avgpool_dense"}
    state = {"d/kernel": np.array([1.0, -2.0]).reshape(2, 1), "d/bias": np.array([0.5])}
    x = np.array([[3.0, 1.0], [1.0, 0.0]]).reshape(1, 1, 2, 2)
    # means (2, 0.5) -> relu(2 - 1 + 0.5) = 1.5
    assert run(fused, {"in": x}, state)["d"].ravel().tolist() == [1.5]


@pytest.mark.parametrize("dense", [{"activation": "softmax"}, {"activation": "relu"},
                                   {"use_bias": False}, {"activation": "hard_swish"}])
def test_heads_fuse_and_compute_the_same(dense):
    fused = _same_outputs(_head(dense=dense))
    assert _ops(fused) == {"c": "conv2d", "d": "avgpool_dense"}
    node = fused.node("d")
    assert node.inputs == ("c",) and dict(node.attrs["dense"])["units"] == 4
    assert fused.shape_of("d") == (None, 4)


def test_a_dropout_between_them_is_gone_first():
    fused = _same_outputs(lower("net", [L("input", [(3, 3, 5)], name="in"),
                                        L("global_avgpool2d", name="g"),
                                        L("dropout", [0.5], name="x"),
                                        L("dense", [3], name="d")]))
    assert _ops(fused) == {"d": "avgpool_dense"}


@pytest.mark.parametrize("case", ["keepdims", "two_readers", "output", "max_pool"])
def test_what_must_stay_as_it_is(case):
    keep = {"c": "conv2d", "g": "global_avgpool2d", "d": "dense"}
    if case == "keepdims":  # the dense layer then reads a 1x1 map, not a vector
        g = _head(L("flatten", name="f"), keepdims=True)
        keep = {**keep, "f": "flatten"}
    elif case == "two_readers":  # the pooled vector is needed anyway
        g = _head(L("dense", [2], name="e", inputs=["g"]), outputs=["d", "e"])
        keep = {**keep, "e": "dense"}
    elif case == "output":
        g = _head(outputs=["g", "d"])
    else:
        g = lower("net", [L("input", [(4, 4, 3)], name="in"),
                          L("conv2d", [3, 3], name="c"),
                          L("global_maxpool2d", name="g"),
                          L("dense", [3], name="d")])
        keep = {"c": "conv2d", "g": "global_maxpool2d", "d": "dense"}
    assert _ops(_same_outputs(g)) == keep


def test_training_graphs_keep_the_pooling_and_the_dense_layer():
    config = TrainConfig(loss="sparse_categorical_crossentropy",
                         optimizer=parse_optimizer("sgd"))
    ops = {n.op for n in training_graph(_head(), config, seed=0).nodes}
    assert "avgpool_dense" not in ops and "global_avgpool2d" in ops


@pytest.mark.parametrize("spec", ["resnet_mini", "fashion-best", "convnext_mini"])
def test_the_example_heads_fuse_and_compute_the_same(spec):
    fused = _same_outputs(cnnc.load_spec(spec), batch=2)
    assert list(_ops(fused).values())[-1] == "avgpool_dense"


def test_the_op_refuses_what_it_cannot_compute():
    with pytest.raises(ArgError, match="dense layer's attributes are invalid"):
        OPS["avgpool_dense"].check_attrs({"dense": Attrs(units=0)})
    with pytest.raises(ArgError, match="attributes"):
        OPS["avgpool_dense"].check_attrs({"dense": {"units": 4}})
