"""The pass pipelines: inference rewrites, dead code, verification after each pass, dumps."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.initializers import initial_values
from cnnc.ir.graph import VerifyError
from cnnc.passes.pipeline import Pass, inference_graph, inference_pipeline, run_pipeline
from cnnc.passes.simplify import dead_code_elimination, fuse_activation, remove_dropout
from cnnc.testing.nets import chain, run


def test_inference_pipeline_is_a_list_of_named_passes():
    assert [p.name for p in inference_pipeline()] == [
        "remove_dropout", "fold_batchnorm", "fuse_residual", "fuse_activation",
        "fuse_merge_activation", "fold_gate", "fuse_shuffle", "fuse_depthwise_pointwise",
        "fuse_depthwise_layer_norm", "fuse_pointwise_depthwise", "fuse_squeeze_excite", "fuse_pointwise_avgpool", "fuse_avgpool_dense", "fuse_dense_pair",
        "fuse_conv_maxpool", "fuse_conv_concat", "fuse_pool_concat", "dead_code_elimination"]


def test_remove_dropout_rewires_readers():
    g = chain((4,), ("dense", 3), ("dropout", 0.5), ("dense", 2))
    out = remove_dropout(g)
    assert [n.op for n in out.nodes] == ["input", "dense", "dense"]
    assert out.node("dense_1").inputs == ("dense",)


def test_a_dropout_output_keeps_its_name():
    g = chain((4,), ("dense", 3), ("dropout", 0.5))
    assert remove_dropout(g).outputs == ("dropout",)


def test_fuse_activation_takes_the_activation_layers_name():
    g = chain((4, 4, 1), ("conv2d", 2, 3), ("activation", "relu"), ("flatten",))
    out = fuse_activation(g)
    fused = out.node("activation")
    assert fused.op == "conv2d" and fused.attrs["activation"] == "relu"
    assert fused.params == ("conv2d/kernel", "conv2d/bias")
    assert "conv2d" not in out.node_map


def test_fusion_is_skipped_when_the_preactivation_is_read_elsewhere():
    g = lower("net", [L("input", [(4,)], name="x"), L("dense", [4], name="d", inputs=["x"]),
                      L("activation", ["tanh"], name="t", inputs=["d"]),
                      L("add", name="s", inputs=["d", "t"])])
    assert fuse_activation(g) == g


def test_pipeline_preserves_results(rng):
    g = chain((5, 5, 2), ("conv2d", 3, 3), ("activation", "tanh"), ("dropout", 0.3),
              ("flatten",), ("dense", 4), ("activation", "softmax"))
    simple = inference_graph(g, check=True)
    assert [n.op for n in simple.nodes] == ["input", "conv2d", "flatten", "dense"]
    state = initial_values(g.state, 3, "float64")
    x = {"input_layer": rng.normal(size=(2, 5, 5, 2))}
    np.testing.assert_allclose(run(simple, x, state)["activation_1"],
                               run(g, x, state)["activation_1"], rtol=1e-13)


def test_dead_code_elimination_keeps_inputs_and_outputs():
    g = lower("net", [L("input", [(3,)], name="x"), L("input", [(3,)], name="unused_in"),
                      L("dense", [2], name="a", inputs=["x"]),
                      L("dense", [2], name="dead", inputs=["x"])], outputs=["a"])
    out = dead_code_elimination(g)
    assert [n.name for n in out.nodes] == ["x", "unused_in", "a"]
    assert {s.name for s in out.state} == {s.name for s in g.state}  # weights stay


def _breaks_shapes(graph):
    bad = replace(graph.nodes[-1], shape=(None, 99))
    return graph.with_nodes(graph.nodes[:-1] + (bad,))


def test_verification_names_the_pass_that_broke_the_graph(monkeypatch):
    g = chain((4,), ("dense", 3))
    passes = [Pass("fine", lambda x: x, ""), Pass("breaker", _breaks_shapes, "")]
    with pytest.raises(VerifyError, match="after pass 'breaker'.*stores shape"):
        run_pipeline(g, passes, check=True)
    monkeypatch.setenv("CNNC_DEBUG", "1")
    passes.append(Pass("late", lambda x: x, ""))
    with pytest.raises(VerifyError, match="after pass 'breaker'"):
        run_pipeline(g, passes)  # debug mode checks after every pass
    monkeypatch.setenv("CNNC_DEBUG", "0")
    with pytest.raises(VerifyError, match="after pass 'late'"):
        run_pipeline(g, passes)  # otherwise only the final graph is checked


def test_dump_sees_the_graph_after_every_pass():
    seen = []
    inference_graph(chain((4,), ("dense", 3), ("dropout", 0.5), ("dense", 2)),
                    dump=lambda name, graph: seen.append((name, len(graph.nodes))))
    assert seen == [("input", 4), ("remove_dropout", 3), ("fold_batchnorm", 3),
                    ("fuse_residual", 3), ("fuse_activation", 3), ("fuse_merge_activation", 3),
                    ("fold_gate", 3), ("fuse_shuffle", 3), ("fuse_depthwise_pointwise", 3),
                    ("fuse_depthwise_layer_norm", 3), ("fuse_pointwise_depthwise", 3),
                    ("fuse_squeeze_excite", 3), ("fuse_pointwise_avgpool", 3),
                    ("fuse_avgpool_dense", 3), ("fuse_dense_pair", 3), ("fuse_conv_maxpool", 3), ("fuse_conv_concat", 3),
                    ("fuse_pool_concat", 3), ("dead_code_elimination", 3)]
