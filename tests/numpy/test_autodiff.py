"""The training graph's structure: names, loss selection, accumulation, seeds, updates."""

from __future__ import annotations

import io

import numpy as np
import pytest

from cnnc import rng as crandom
from cnnc.errors import SpecError
from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.ir.graph import verify
from cnnc.ir.ops import OPS, node_op_names, op_names
from cnnc.ir.train_config import TrainConfig, parse_optimizer
from cnnc.passes import names
from cnnc.passes.pipeline import text_dump, training_graph
from cnnc.passes.training_mode import REPLACED_IN_TRAINING
from cnnc.passes.vjp_rules import NOT_DIFFERENTIATED, VJP_RULES
from cnnc.testing.nets import chain, training_graph_without

NET = [("conv2d", 2, 3, {"activation": "relu"}), ("batchnorm",), ("dropout", 0.5),
       ("flatten",), ("dense", 3, {"activation": "softmax"})]


def ops_of(graph):
    return {n.name: n.op for n in graph.nodes}


def test_rule_table_covers_every_differentiable_op():
    forward = set(node_op_names("layer")) | {"dropout_train", "batchnorm_stats",
                                             "batchnorm_train"}
    losses = {n for n in op_names("loss") if not n.endswith("_grad")}
    missing = (forward | losses) - set(VJP_RULES) - set(NOT_DIFFERENTIATED)
    assert not missing
    assert set(VJP_RULES) <= set(OPS)
    assert set(REPLACED_IN_TRAINING.values()) <= set(VJP_RULES)


def test_training_graph_names_and_outputs():
    g = training_graph(chain((5, 5, 1), *NET), check=True)
    ops = ops_of(g)
    assert g.outputs == (names.LOSS, "dense")
    assert ops["train/loss"] == "softmax_cross_entropy"
    assert ops["dense/logits"] == "dense" and ops["dense"] == "activation"
    assert g.node("dense/logits").attrs["activation"] == "linear"
    assert g.node("train/target").attrs["dtype"] == "int32"
    assert g.node("train/target").shape == (None,)
    assert ops["dropout"] == "dropout_train"
    assert ops["batch_normalization/stats"] == "batchnorm_stats"
    assert ops["batch_normalization"] == "batchnorm_train"
    for p in ("conv2d/kernel", "conv2d/bias", "batch_normalization/gamma",
              "batch_normalization/beta", "dense/kernel", "dense/bias"):
        assert names.grad(p) in ops, p
        assert ops[names.update(p)] == "nadam_update"
        assert g.state_map[names.slot(p, "m")].role == "slot"
        assert g.state_map[names.slot(p, "v")].shape == g.state_map[p].shape
    for s in ("moving_mean", "moving_variance"):
        assert ops[f"update/batch_normalization/{s}"] == "moving_average_update"
    assert names.grad("input_layer") not in ops  # not asked for
    assert names.grad("conv2d/preact") in ops  # relu's gradient before the kernel's


def test_updates_come_after_every_value():
    g = training_graph(chain((5, 5, 1), *NET))
    groups = [OPS[n.op].group for n in g.nodes]
    first_update = groups.index("update")
    assert all(gr == "update" for gr in groups[first_update:])


def test_graph_prints():
    out = io.StringIO()
    training_graph(chain((5, 5, 1), *NET), dump=text_dump(out))
    text = out.getvalue()
    for pass_name in ("training_mode", "attach_loss", "backward", "optimizer",
                      "dead_code_elimination"):
        assert f"--- after {pass_name} ---" in text
    assert "grad/conv2d/kernel" in text and "nadam_update" in text


def test_gradient_of_a_value_read_twice_is_a_sum_of_parts():
    g = lower("net", [
        L("input", [(4,)], name="x"),
        L("dense", [4], {"activation": "tanh"}, name="h", inputs=["x"]),
        L("dense", [4], name="a", inputs=["h"]),
        L("add", name="s", inputs=["h", "a"]),
    ])
    # as the backward pass leaves it: fuse_activation_grad would fold the add into tanh's
    # gradient (add_act_grad)
    t = training_graph_without(g, TrainConfig(loss="mean_squared_error"), "fuse_activation_grad")
    grad_h = t.node("grad/h")
    # one part from the dense layer 'a', and the add's gradient passed through unchanged
    assert grad_h.op == "add" and sorted(grad_h.inputs) == ["grad/h/0", "grad/s"]
    # add passes its gradient through: it still gets its own documented name
    assert t.node("grad/a").op == "view" and t.node("grad/a").inputs == ("grad/s",)


def test_wrt_inputs_adds_input_gradients():
    t = training_graph(chain((3,), ("dense", 2)), TrainConfig(loss="mean_squared_error"),
                       wrt_inputs=True, optimizer=False, check=True)
    assert t.node("grad/input_layer").op == "dense_grad_input"
    assert not any(OPS[n.op].group == "update" for n in t.nodes)


@pytest.mark.parametrize("loss,end,op,target", [
    ("sparse_categorical_crossentropy", "softmax", "softmax_cross_entropy", ((None,), "int32")),
    ("categorical_crossentropy", "softmax", "softmax_cross_entropy", ((None, 3), "float32")),
    ("sparse_categorical_crossentropy", "sigmoid", "cross_entropy", ((None,), "int32")),
    ("categorical_crossentropy", "linear", "cross_entropy", ((None, 3), "float32")),
    ("mean_squared_error", "softmax", "mean_squared_error", ((None, 3), "float32")),
])
def test_loss_selection(loss, end, op, target):
    t = training_graph(chain((4,), ("dense", 3, {"activation": end})), TrainConfig(loss=loss))
    node = t.node(names.LOSS)
    assert node.op == op
    fused = op == "softmax_cross_entropy"
    assert node.inputs[0] == ("dense/logits" if fused else "dense")
    tgt = t.node(names.TARGET)
    assert (tgt.shape, tgt.attrs["dtype"]) == target


def test_softmax_activation_layer_at_the_end_is_fused_without_a_split():
    t = training_graph(chain((4,), ("dense", 3), ("activation", "softmax")))
    assert t.node(names.LOSS).inputs[0] == "dense"
    assert "dense/logits" not in t.node_map


def test_dropout_seeds_derive_from_the_training_seed_and_layer_name():
    g = lower("net", [L("input", [(4,)]), L("dropout", [0.5], name="d1"),
                      L("dropout", [0.5], {"seed": 42}, name="d2")])
    t = training_graph(g, TrainConfig(loss="mean_squared_error", seed=9), wrt_inputs=True)
    assert t.node("d1").attrs["seed"] == crandom.derive_seed(9, "d1")
    assert t.node("d2").attrs["seed"] == 42
    # dropout_grad of d1 (producing the gradient of its input) reuses its mask
    assert t.node("grad/input_layer").attrs == t.node("d1").attrs
    assert t.node("grad/d1").attrs == t.node("d2").attrs


def test_sgd_without_momentum_has_no_slots_with_momentum_one():
    for args, slots in [({"name": "sgd"}, 0), ({"name": "sgd", "momentum": 0.9}, 2)]:
        cfg = TrainConfig(loss="mean_squared_error", optimizer=parse_optimizer(args))
        t = training_graph(chain((3,), ("dense", 2)), cfg, check=True)
        assert sum(s.role == "slot" for s in t.state) == slots
        assert t.node("update/dense/kernel").op == "sgd_update"


def test_layers_off_the_loss_path_get_no_updates():
    g = lower("net", [L("input", [(3,)], name="x"), L("dense", [2], name="used", inputs=["x"]),
                      L("dense", [2], name="unused", inputs=["x"])], outputs=["used"])
    t = training_graph(g, TrainConfig(loss="mean_squared_error"), check=True)
    assert "update/used/kernel" in t.node_map
    assert "update/unused/kernel" not in t.node_map
    assert "unused" not in t.node_map  # dead code


def test_training_needs_one_output():
    g = lower("net", [L("input", [(3,)], name="x"), L("dense", [2], name="a", inputs=["x"]),
                      L("dense", [2], name="b", inputs=["x"])], outputs=["a", "b"])
    with pytest.raises(SpecError, match="training needs a network with one output; 'net' has 2"):
        training_graph(g)


def test_a_name_clash_is_a_clear_error():
    g = lower("net", [L("input", [(3,)], name="grad"), L("dense", [2], name="kernel"),
                      L("dense", [2], name="out")])
    # 'grad' as an input is fine; a layer named 'grad' with a kernel collides with grad/kernel
    g2 = lower("net", [L("input", [(3,)]), L("dense", [3], name="kernel"),
                       L("dense", [2], name="grad")])
    training_graph(g, TrainConfig(loss="mean_squared_error"), check=True)
    with pytest.raises(SpecError, match="needs the name 'grad/kernel' twice; rename the layer"):
        training_graph(g2, TrainConfig(loss="mean_squared_error"))


def test_the_training_graph_verifies_after_every_pass_for_every_spec_kind():
    for net in (NET, [("conv2d", 2, 2), ("maxpool2d", 2), ("global_avgpool2d",),
                      ("dense", 2, {"activation": "sigmoid"})]):
        t = training_graph(chain((6, 6, 2), *net), check=True)
        verify(t)
        assert np.all([n.shape is not None or OPS[n.op].group == "update" for n in t.nodes])
