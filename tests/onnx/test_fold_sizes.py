"""ONNX import: constants folded at real-model sizes (ConstantOfShape/Expand/Tile writing a
weight) are bounded as initialisers are, and import as the stored weight would."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from onnx_helpers import check_against_ort, make_model, randn, save

import cnnc
from cnnc.errors import CnncError
from cnnc.frontend.onnx_file import MAX_TENSOR_ELEMENTS
from cnnc.frontend.onnx_fold import MAX_FOLDED_BYTES, FoldBudget, FoldError


def i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _value(v: float) -> helper.AttributeProto:
    return helper.make_tensor("value", 1, [1], [v])


def test_expand_tile_and_constant_of_shape_weights_match_onnxruntime(tmp_path):
    """Conv weight = Tile of a (O, I, 1, 3) constant; bias = Expand of a scalar; dense weight =
    ConstantOfShape (0.5) + Expand of a (1, 4) row: every folded value reaches the layers in
    the right order, checked against onnxruntime."""
    w_row = randn(4, 3, 3, 1, seed=1)  # tiled to (4, 3, 3, 3) along the last axis
    nodes = [
        helper.make_node("Tile", ["w_row", "reps"], ["w"]),
        helper.make_node("Expand", ["b_scalar", "b_shape"], ["b"]),
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("ConstantOfShape", ["d_shape"], ["d_half"], value=_value(0.5)),
        helper.make_node("Expand", ["d_row", "d_shape"], ["d_rows"]),
        helper.make_node("Add", ["d_half", "d_rows"], ["d_w"]),
        helper.make_node("Gemm", ["f", "d_w"], ["y"]),
    ]
    inits = {"w_row": w_row, "reps": i64(1, 1, 1, 3), "b_scalar": np.float32([0.25]),
             "b_shape": i64(4), "d_shape": i64(4 * 5 * 5, 4),
             "d_row": randn(1, 4, seed=2)}
    path = save(make_model(nodes, {"x": ("N", 3, 5, 5)}, ["y"], inits, opset=13),
                tmp_path / "folded.onnx")
    graph = check_against_ort(path, randn(2, 3, 5, 5, seed=3))
    kernel = next(v for k, v in graph.given_weights.items() if k.endswith("kernel")
                  and v.ndim == 4)
    assert kernel.shape == (3, 3, 3, 4)  # HWIO from the tiled OIHW


def test_fold_budget_bounds_all_results_together():
    budget = FoldBudget()
    budget.charge([np.zeros(4, np.float32)])
    assert budget.used == 16
    budget.used = MAX_FOLDED_BYTES - 8
    with pytest.raises(FoldError, match=f"{MAX_FOLDED_BYTES:,}"):
        budget.charge([np.zeros(4, np.float32)])


@pytest.mark.parametrize("op", ["ConstantOfShape", "Expand", "Tile"])
def test_a_folded_result_over_the_initialiser_limit_is_refused(tmp_path, op):
    """One element more than an initialiser may hold: refused before any allocation, the node
    and the limit's figure named."""
    side = int(np.sqrt(MAX_TENSOR_ELEMENTS)) + 1
    if op == "ConstantOfShape":
        nodes = [helper.make_node(op, ["dims"], ["big"], name="huge")]
        inits = {"dims": i64(side, side)}
    else:  # Expand to (side, side), or Tile by (side, side)
        nodes = [helper.make_node(op, ["one", "dims"], ["big"], name="huge")]
        inits = {"one": np.float32([[1.0]]), "dims": i64(side, side)}
    nodes += [helper.make_node("Gemm", ["x", "big"], ["y"])]
    path = save(make_model(nodes, {"x": ("N", side)}, ["y"], inits), tmp_path / "m.onnx")
    with pytest.raises(CnncError) as info:
        cnnc.load_spec(path)
    text = info.value.render()
    assert f"node 'huge' ({op})" in text and f"{MAX_TENSOR_ELEMENTS:,}" in text, text
