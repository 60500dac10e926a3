"""ONNX's per-op facts cover the op table: how every layer op exports (cnnc/export/onnx_export.py
EXPORTERS), which layers an import gives a bias and an activation (cnnc/frontend/onnx_ops.py
KERNEL_LAYERS, read from the op table), and the batch norms --fold-bn folds: the inference
pipeline's (passes/fold_batchnorm.py), with the same arithmetic, for every layer that folds one."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from onnx_helpers import RTOL, ort_outputs, relative_error
from op_cases_module import op_cases

import cnnc
from cnnc.backends.numpy.fused_impls import fold_batchnorm
from cnnc.export.onnx_export import EXPORTERS
from cnnc.frontend.onnx_ops import KERNEL_LAYERS
from cnnc.frontend.spec import load_spec
from cnnc.ir.fused import FOLDED_LAYER
from cnnc.ir.ops import OPS, node_op_names
from cnnc.passes.pipeline import inference_graph


def _folding_cases():
    out = []
    for case in op_cases().CASES:
        graph = load_spec(case.spec())
        if any(_folds(n.op) for n in inference_graph(graph).nodes):
            out.append(pytest.param(graph, id=case.name))
    return out


def _folds(op: str) -> bool:
    """Whether `op` has a batch norm folded in: a folded op, or a fused op built on one."""
    while op is not None:
        if op in FOLDED_LAYER.values():
            return True
        op = OPS[op].base
    return False


FOLDING_CASES = _folding_cases()


def test_every_layer_op_has_an_exporter():
    assert set(EXPORTERS) == set(node_op_names("layer"))


def test_kernel_layers_are_the_layers_with_a_bias_and_an_activation():
    for name in node_op_names("layer"):
        op = OPS[name]
        has_bias = any(a.name == "use_bias" for a in op.args)
        assert (name in KERNEL_LAYERS) == (has_bias and op.fuses_activation), name


def test_kernel_layers_have_a_bias_per_output_channel():
    """The import adds a constant after such a layer into its bias as one value per output
    channel (the output's last axis): check it on every such node of the op cases."""
    seen = set()
    for case in op_cases().CASES:
        graph = load_spec(case.spec())
        for node in graph.nodes:
            if node.op in KERNEL_LAYERS and node.attrs["use_bias"]:
                bias = f"{node.name}/bias"  # the import sets it by name (separable: third)
                assert bias in node.params
                assert graph.state_map[bias].shape == node.shape[-1:], node
                seen.add(node.op)
    assert seen == set(KERNEL_LAYERS)


def test_the_op_cases_fold_every_folded_layer():
    ops = {n.op for param in FOLDING_CASES for n in inference_graph(param.values[0]).nodes}
    assert ops >= set(FOLDED_LAYER.values())


@pytest.mark.parametrize("graph", FOLDING_CASES)
def test_fold_bn_folds_what_the_pipeline_folds_with_the_same_weights(graph, tmp_path):
    from test_onnx_export import inputs, trained_like

    model = trained_like(cnnc.compile(graph, backend="numpy"))
    path = tmp_path / "m.onnx"
    model.export_onnx(str(path), fold_bn=True, layout="nhwc")
    onnx_model = onnx.load(str(path))
    kept = [n.op_type for n in onnx_model.graph.node].count("BatchNormalization")
    assert kept == sum(n.op == "batchnorm" for n in model.graph.nodes)
    x = inputs(graph)
    want = model.predict(x)
    (got,) = ort_outputs(path, {graph.inputs[0]: x})
    assert relative_error(got, want) <= RTOL
    # The file holds the kernel and bias the NumPy backend folds and runs, bit for bit (the
    # kernel in ONNX's layout: compared as the same multiset of values).
    stored = {t.name: numpy_helper.to_array(t) for t in onnx_model.graph.initializer}
    weights = model.get_weights()
    for node in model.graph.nodes:
        if not _folds(node.op):
            continue
        n_layer = 2 if node.attrs["use_bias"] else 1
        bias = weights[node.params[1]] if n_layer == 2 else None
        w, b = fold_batchnorm(node.attrs, weights[node.params[0]], bias,
                              [weights[p] for p in node.params[n_layer:]], np.dtype(np.float32))
        layer = node.params[0].rsplit("/", 1)[0]
        assert np.array_equal(stored[f"{layer}/bias"], b), node.name
        assert np.array_equal(np.sort(stored[node.params[0]], axis=None), np.sort(w, axis=None))
