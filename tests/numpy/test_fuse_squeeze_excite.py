"""A squeeze-and-excitation gate (global average pooling and two layers on the pooled vector)
as one squeeze_excite node (passes/fuse_squeeze_excite.py, cnnc/ir/squeeze_excite.py): a value
worked by hand, which graphs fuse and which must not, that the fused graph computes what the
unfused one does on the NumPy reference (the example specs too), and that training graphs
never see the op."""

from __future__ import annotations

import numpy as np
import pytest
from test_fold_batchnorm import random_state

import cnnc
from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.ir.args import ArgError
from cnnc.ir.ops import OPS
from cnnc.passes.pipeline import (
    inference_graph,
    inference_pipeline,
    run_pipeline,
    training_graph,
)
from cnnc.testing.nets import run


def _se(*tail: L, hidden: str = "silu", gate: str = "sigmoid", keepdims: bool = True,
        layer: str = "conv2d", view: L | None = None, extra: dict | None = None,
        shape=(5, 3, 6), outputs=None):
    """input -> conv 'x' -> global pool 'sq' [-> view] -> layer 'h' (3) -> layer 'g' (6, the
    gate) -> x * g -> 1x1 projection 'proj' [-> tail]."""
    def vector_layer(units: int, act: str, name: str) -> L:
        if layer == "dense":
            return L("dense", [units], {"activation": act, **(extra or {})}, name=name)
        return L("conv2d", [units, 1], {"activation": act, **(extra or {})}, name=name)

    return lower("net", [L("input", [shape], name="in"),
                         L("conv2d", [6, 3], {"padding": "same", "activation": "tanh"},
                           name="x"),
                         L("global_avgpool2d", [], {"keepdims": keepdims}, name="sq"),
                         *([view] if view else []),
                         vector_layer(3, hidden, "h"),
                         vector_layer(6, gate, "g"),
                         L("multiply", name="se", inputs=["x", "g"]),
                         L("conv2d", [4, 1], name="proj"),
                         *tail], outputs=outputs)


def _same_outputs(graph, seed: int = 0, batch: int = 3):
    fused = inference_graph(graph, check=True)
    rng = np.random.default_rng(seed)
    feeds = {n: rng.normal(size=(batch, *graph.node(n).shape[1:])) for n in graph.inputs}
    state = random_state(graph, seed + 1)
    unfused = run_pipeline(graph, [p for p in inference_pipeline()
                                   if p.name != "fuse_squeeze_excite"])
    before, after = run(unfused, feeds, state), run(fused, feeds, state)
    for name in graph.outputs:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    return fused


def _ops(graph):
    return {n.name: n.op for n in graph.nodes if n.op != "input"}


def test_a_gate_by_hand():
    g = lower("net", [L("input", [(2, 1, 2)], name="in"),
                      L("global_avgpool2d", [], {"keepdims": True}, name="sq"),
                      L("conv2d", [1, 1], {"activation": "relu"}, name="h"),
                      L("conv2d", [2, 1], {"activation": "hard_sigmoid"}, name="g")])
    fused = inference_graph(g, check=True)
    assert _ops(fused) == {"g": "squeeze_excite"}
    state = {"h/kernel": np.array([1.0, -2.0]).reshape(1, 1, 2, 1), "h/bias": np.array([0.5]),
             "g/kernel": np.array([2.0, -1.0]).reshape(1, 1, 1, 2),
             "g/bias": np.array([-1.0, 0.0])}
    # pooled (3, -1): hidden relu(3 + 2 + 0.5) = 5.5; gate pre-activations 10 and -5.5:
    # hard_sigmoid clips them to 1 and 0. pooled (0.5, 0.5): relu(0.5 - 1 + 0.5) = 0; gate
    # (-1, 0): (-1 + 3) / 6 and 3 / 6.
    x = np.array([[4.0, -1.0], [2.0, -1.0], [0.0, 1.0], [1.0, 0.0]]).reshape(2, 2, 1, 2)
    out = run(fused, {"in": x}, state)["g"]
    np.testing.assert_allclose(out.reshape(2, 2), [[1.0, 0.0], [2 / 6, 0.5]], rtol=1e-15)


@pytest.mark.parametrize("hidden", ["silu", "relu", "hard_swish", "linear"])
@pytest.mark.parametrize("gate", ["sigmoid", "hard_sigmoid"])
def test_each_activation_pair_fuses_and_computes_the_same(hidden, gate):
    fused = _same_outputs(_se(hidden=hidden, gate=gate))
    assert _ops(fused) == {"x": "conv2d", "g": "squeeze_excite", "proj": "conv2d_gated"}
    node = fused.node("g")
    assert node.inputs == ("x",)
    assert [p.rsplit("/", 1)[-1] for p in node.params] == ["kernel", "bias"] * 2


@pytest.mark.parametrize("keepdims, layer, view", [
    (False, "dense", None),
    (True, "dense", None),
    (False, "conv2d", L("reshape", [], {"target_shape": [1, 1, 6]}, name="r")),
    (True, "dense", L("flatten", name="r")),
])
def test_pool_forms_and_dense_layers_fuse(keepdims, layer, view):
    fused = _same_outputs(_se(keepdims=keepdims, layer=layer, view=view))
    assert _ops(fused)["g"] == "squeeze_excite"
    assert "r" not in _ops(fused) and "sq" not in _ops(fused)
    want = view.op == "reshape" if view is not None else keepdims
    assert fused.node("g").attrs["pool"]["keepdims"] is want


def test_layers_without_biases_fuse():
    fused = _same_outputs(_se(extra={"use_bias": False}))
    assert len(fused.node("g").params) == 2


@pytest.mark.parametrize("case", ["pool_read_twice", "hidden_read_twice", "pool_output",
                                  "hidden_output", "relu_gate", "softmax_hidden", "3x3_hidden",
                                  "strided_gate", "too_wide"])
def test_what_must_stay_as_it_is(case):
    if case == "pool_read_twice":  # the pooled vector is needed anyway
        g = _se(L("dense", [2], name="d", inputs=["sq"]), outputs=["proj", "d"])
    elif case == "hidden_read_twice":
        g = _se(L("conv2d", [2, 1], name="d", inputs=["h"]), outputs=["proj", "d"])
    elif case == "pool_output":
        g = _se(outputs=["proj", "sq"])
    elif case == "hidden_output":
        g = _se(outputs=["proj", "h"])
    elif case == "relu_gate":
        g = _se(gate="relu")
    elif case == "softmax_hidden":
        g = _se(hidden="softmax")
    elif case == "3x3_hidden":
        g = lower("net", [L("input", [(5, 3, 6)], name="in"),
                          L("global_avgpool2d", [], {"keepdims": True}, name="sq"),
                          L("conv2d", [3, 3], {"padding": "same"}, name="h"),
                          L("conv2d", [6, 1], {"activation": "sigmoid"}, name="g")])
    elif case == "strided_gate":
        g = lower("net", [L("input", [(5, 3, 6)], name="in"),
                          L("global_avgpool2d", [], {"keepdims": True}, name="sq"),
                          L("conv2d", [3, 1], name="h"),
                          L("conv2d", [6, 1], {"strides": 2, "activation": "sigmoid"},
                            name="g")])
    else:  # the pooled and hidden vectors past a work-group's local memory
        g = lower("net", [L("input", [(2, 2, 2040)], name="in"),
                          L("global_avgpool2d", [], {"keepdims": True}, name="sq"),
                          L("conv2d", [9, 1], name="h"),
                          L("conv2d", [3, 1], {"activation": "sigmoid"}, name="g")])
    ops = _ops(_same_outputs(g))
    assert "squeeze_excite" not in ops.values()
    assert "sq" in ops


def test_the_op_checks_its_parts():
    op = OPS["squeeze_excite"]
    attrs = dict(inference_graph(_se(), check=True).node("g").attrs)
    with pytest.raises(ArgError, match="1x1"):
        op.check_attrs({**attrs, "hidden": attrs["hidden"].replace(kernel_size=(3, 3))})
    with pytest.raises(ArgError, match="gate's activation"):
        op.check_attrs({**attrs, "gate": attrs["gate"].replace(activation="tanh")})
    with pytest.raises(ArgError, match="element-wise"):
        op.check_attrs({**attrs, "hidden": attrs["hidden"].replace(activation="softmax")})
    with pytest.raises(ArgError, match="part's attributes"):
        op.check_attrs({**attrs, "hidden": attrs["hidden"].replace(filters=0)})


def test_shapes_flops_and_parameters_are_the_parts():
    graph = _se()
    fused = inference_graph(graph, check=True)
    node, x = fused.node("g"), (2, 5, 3, 6)
    op = OPS["squeeze_excite"]
    parts = [graph.node(n) for n in ("sq", "h", "g")]
    shapes = [x, (2, 1, 1, 6), (2, 1, 1, 3), (2, 1, 1, 6)]
    want = sum(OPS[p.op].flops(p.attrs, (s,), out)
               for p, s, out in zip(parts, shapes, shapes[1:]))
    assert op.flops(node.attrs, (x,), None) == want
    assert op.infer(node.attrs, (x,)) == (2, 1, 1, 6)
    assert [p.suffix for p in op.params(node.attrs, (x,))] == ["kernel", "bias"] * 2


@pytest.mark.parametrize("spec, blocks", [("efficientnet_mini", 3), ("mobilenetv3_mini", 2)])
def test_the_example_specs_fuse_their_se_blocks(spec, blocks):
    graph = cnnc.load_spec(spec)
    fused = _same_outputs(graph, batch=2)
    ops = [n.op for n in fused.nodes]
    assert ops.count("squeeze_excite") == blocks
    # the head's pooling (read by a dense softmax, no gate) is no squeeze-excite block: it
    # joins the 1x1 convolution before it (fuse_pointwise_avgpool, the next pass)
    assert ops.count("global_avgpool2d") == 0 and ops.count("pointwise_avgpool") == 1


def test_training_graphs_keep_the_unfused_block():
    graph = cnnc.load_spec("efficientnet_mini")
    ops = {n.op for n in training_graph(graph).nodes}
    assert "squeeze_excite" not in ops and "global_avgpool2d" in ops
