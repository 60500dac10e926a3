"""Pooling with ONNX's semantics (explicit per-side pads, ceil_mode, count_include_pad,
dilations): imported MaxPool/AveragePool nodes against onnxruntime over a grid, the NumPy
layers against PyTorch's max_pool2d/avg_pool2d where torch is installed, hand-worked means,
export (onnx.checker, onnxruntime, the round trip) and the located errors."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx_helpers import check_against_ort, make_model, nhwc, ort_outputs, relative_error, save

import cnnc
from cnnc.backends.numpy import pool
from cnnc.errors import CnncError
from cnnc.ir.args import check_args
from cnnc.ir.ops import OPS


def _grid() -> list[tuple]:
    """(op, size, kernel, stride, (before, after) pads, ceil_mode, count_include_pad, dilation,
    auto_pad): every combination onnxruntime takes, thinned to a fixed,
    evenly spread sample so the whole grid's kinds appear in a few dozen cases."""
    cases = []
    for op, n, k, s, p, ceil, cip, d, auto in itertools.product(
            ["MaxPool", "AveragePool"], [5, 6, 7], [2, 3], [1, 2, 3],
            [(0, 0), (1, 0), (0, 1), (1, 1), (2, 1)], [0, 1], [0, 1], [1, 2],
            ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]):
        # onnxruntime takes pads smaller than the undilated window (cnnc: than the dilated one)
        if (op == "MaxPool" and cip) or (auto != "NOTSET" and p != (0, 0)) or max(p) >= k:
            continue
        # onnxruntime 1.32 pads SAME_* windows as if undilated (its output shape disagrees with
        # ONNX's own shape inference), and refuses SAME when the stride exceeds the window.
        if auto.startswith("SAME") and (d > 1 or s > k):
            continue
        cases.append((op, n, k, s, p, ceil, cip, d, auto))
    return cases[::23]


GRID = _grid()

# Named cases: the ones that motivated this (Inception v1's and ShuffleNet's pools), and the
# ceil_mode windows onnxruntime and PyTorch drop because they would start in the right padding.
NAMED = {
    "inception_avg_asymmetric_exclude": ("AveragePool", 7, 3, 1, (0, 1), 0, 0, 1, "NOTSET"),
    "inception_max_ceil": ("MaxPool", 7, 3, 2, (0, 0), 1, 0, 1, "NOTSET"),
    "ceil_window_starting_in_padding": ("AveragePool", 5, 2, 2, (1, 1), 1, 1, 1, "NOTSET"),
    "ceil_window_past_pads_counted": ("AveragePool", 6, 3, 2, (1, 1), 1, 1, 1, "NOTSET"),
    "same_lower_exclude": ("AveragePool", 6, 3, 2, (0, 0), 0, 0, 1, "SAME_LOWER"),
    "same_upper_include": ("AveragePool", 6, 2, 2, (0, 0), 0, 1, 1, "SAME_UPPER"),
    "valid_ceil": ("MaxPool", 7, 2, 2, (0, 0), 1, 0, 1, "VALID"),
    "dilated_max_pads": ("MaxPool", 7, 3, 2, (2, 1), 1, 0, 2, "NOTSET"),
    "dilated_average_opset19": ("AveragePool", 7, 2, 1, (1, 0), 0, 1, 2, "NOTSET"),
}


def _model(op, n, k, s, p, ceil, cip, d, auto) -> onnx.ModelProto:
    attrs = {"kernel_shape": [k, k + 1], "strides": [s, s], "ceil_mode": ceil}
    if auto == "NOTSET":
        attrs["pads"] = [p[0], p[1], p[1], p[0]]  # asymmetric both ways: begins, then ends
    else:
        attrs["auto_pad"] = auto
    if d != 1:
        attrs["dilations"] = [d, d]
    if op == "AveragePool":
        attrs["count_include_pad"] = cip
    opset = 19 if op == "AveragePool" and d != 1 else 17  # AveragePool's dilations: opset 19
    node = helper.make_node(op, ["x"], ["y"], name="pool", **attrs)
    return make_model([node], {"x": ["N", 3, n, n + 2]}, ["y"], opset=opset)


def _ids(cases):
    return ["-".join(str(v) for v in c) for c in cases]


@pytest.mark.parametrize("case", GRID + list(NAMED.values()),
                         ids=_ids(GRID) + list(NAMED))
def test_imported_pooling_matches_onnxruntime(case, tmp_path):
    path = save(_model(*case), tmp_path / "pool.onnx")
    x = np.random.default_rng(len(str(case))).standard_normal(
        (2, 3, case[1], case[1] + 2)).astype(np.float32)
    graph = check_against_ort(path, x)
    assert len([n for n in graph.nodes if n.op in ("maxpool2d", "avgpool2d")]) == 1
    assert not [n for n in graph.nodes if n.op == "zero_padding2d"]  # one layer, no padding op


@pytest.mark.parametrize("name", ["ceil_window_past_pads_counted", "dilated_max_pads",
                                  "inception_avg_asymmetric_exclude"])
def test_imported_pooling_matches_onnxruntime_on_each_backend(name, backend, tmp_path):
    path = save(_model(*NAMED[name]), tmp_path / "pool.onnx")
    x = np.random.default_rng(1).standard_normal((2, 3, NAMED[name][1], NAMED[name][1] + 2))
    check_against_ort(path, x.astype(np.float32), backend=backend)


def _attrs(op: str, **given):
    return check_args(op, OPS[op].args, given)


TORCH_GRID = [  # (size, kernel, stride, pad, ceil_mode, count_include_pad, dilation)
    (7, 3, 2, 1, True, True, 1), (7, 3, 2, 1, True, False, 1), (5, 2, 2, 1, True, True, 1),
    (6, 3, 3, 1, True, True, 1), (9, 3, 2, 0, True, False, 1), (10, 3, 2, 1, False, True, 2),
    (5, 2, 1, 1, False, False, 1), (11, 3, 3, 1, True, True, 2), (8, 4, 3, 2, True, False, 1),
]


@pytest.mark.parametrize("case", TORCH_GRID, ids=_ids(TORCH_GRID))
def test_numpy_pooling_and_gradients_match_pytorch(case):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    f = torch.nn.functional
    n, k, s, p, ceil, cip, d = case
    x = np.random.default_rng(n * k).standard_normal((2, n, n + 1, 3))
    xt = torch.tensor(x).permute(0, 3, 1, 2)
    common = {"pool_size": k, "strides": s, "pads": (p, p, p, p), "ceil_mode": ceil}

    def check(ours, grad, attrs, theirs):
        xt.grad = None
        yt = theirs(xt.requires_grad_())
        got = ours(x, attrs)
        np.testing.assert_allclose(got, yt.detach().permute(0, 2, 3, 1).numpy(), rtol=1e-12)
        dy = np.random.default_rng(1).standard_normal(got.shape)
        yt.backward(torch.tensor(dy).permute(0, 3, 1, 2))
        np.testing.assert_allclose(grad(dy, attrs), xt.grad.permute(0, 2, 3, 1).numpy(),
                                   rtol=1e-12, atol=1e-12)

    check(pool.maxpool2d, lambda dy, a: pool.maxpool2d_grad(x, dy, a),
          _attrs("maxpool2d", **common, dilation_rate=d),
          lambda t: f.max_pool2d(t, k, s, p, dilation=d, ceil_mode=ceil))
    if d == 1:  # PyTorch's avg_pool2d has no dilation
        check(pool.avgpool2d, lambda dy, a: pool.avgpool2d_grad(dy, a, x.shape),
              _attrs("avgpool2d", **common, count_include_pad=cip),
              lambda t: f.avg_pool2d(t, k, s, p, ceil_mode=ceil, count_include_pad=cip))


def test_hand_worked_means_with_and_without_the_pads():
    # x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], 2x2 windows, stride 2, pads (1, 0, 1, 0), ceil:
    # windows start at -1 and 1 on both axes; the last ones reach the row/column past the input
    # (no declared pad there), so it never counts.
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    common = {"pool_size": 2, "pads": (1, 0, 1, 0), "ceil_mode": True}
    exclude = pool.avgpool2d(x, _attrs("avgpool2d", **common))[0, :, :, 0]
    include = pool.avgpool2d(x, _attrs("avgpool2d", **common, count_include_pad=True))
    # top-left window: pad, pad / pad, 1 -> 1 over 1 real cell, or over 4 counted cells;
    # top-right: pad, pad / 2, 3 -> 5 / 2, or 5 / 4; bottom-right: 5, 6 / 8, 9 -> 28 / 4 both ways;
    # bottom-left: pad, 4 / pad, 7 -> 11 / 2, or 11 / 4.
    np.testing.assert_allclose(exclude, [[1.0, 2.5], [5.5, 7.0]])
    np.testing.assert_allclose(include[0, :, :, 0], [[0.25, 1.25], [2.75, 7.0]])
    # (3 + 1 - 2) / 2 rounded up, + 1 = 2 windows each way, the second starting inside
    assert pool.maxpool2d(x, _attrs("maxpool2d", **common))[0, :, :, 0].tolist() == [
        [1.0, 3.0], [7.0, 9.0]]


def test_keras_same_is_its_explicit_pads():
    """'same' on an even size pads one more after: the same numbers written as pads."""
    x = np.random.default_rng(0).standard_normal((2, 8, 7, 3))
    same = _attrs("avgpool2d", pool_size=3, strides=2, padding="same")
    pads = _attrs("avgpool2d", pool_size=3, strides=2, pads=(0, 1, 1, 1))
    np.testing.assert_array_equal(pool.avgpool2d(x, same), pool.avgpool2d(x, pads))
    np.testing.assert_array_equal(pool.maxpool2d_grad(x, np.ones((2, 4, 4, 3)), _attrs(
        "maxpool2d", pool_size=3, strides=2, padding="same")), pool.maxpool2d_grad(
        x, np.ones((2, 4, 4, 3)), _attrs("maxpool2d", pool_size=3, strides=2, pads=(0, 1, 1, 1))))


SPEC = """network onnx_pools
input 9x10x3
conv2d 4 3 padding=same
maxpool2d 3 strides=2 pads=(1, 0, 1, 1) ceil_mode=true
avgpool2d 2 strides=1 pads=(1, 1, 0, 1) count_include_pad=true dilation_rate=(2, 1)
avgpool2d 2 padding=same count_include_pad=true
maxpool2d 2 strides=1 dilation_rate=2
"""


def test_export_writes_the_pads_and_reads_them_back(tmp_path):
    graph = cnnc.load_spec(SPEC)
    model = cnnc.compile(graph)
    path = tmp_path / "pools.onnx"
    model.export_onnx(str(path), opset=19)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    attrs = {n.name: {a.name: helper.get_attribute_value(a) for a in n.attribute}
             for n in proto.graph.node if n.op_type in ("MaxPool", "AveragePool")}
    first, second = [attrs[n.name] for n in graph.nodes if n.op in ("maxpool2d", "avgpool2d")][:2]
    assert first["pads"] == [1, 1, 0, 1] and first["ceil_mode"] == 1  # ONNX: begins, then ends
    assert second["pads"] == [1, 0, 1, 1] and second["count_include_pad"] == 1
    assert second["dilations"] == [2, 1]
    x = np.random.default_rng(0).standard_normal((2, 9, 10, 3)).astype(np.float32)
    (want,) = ort_outputs(path, {graph.inputs[0]: x.transpose(0, 3, 1, 2)})
    assert relative_error(model.predict(x), nhwc(want)) <= 1e-5
    assert cnnc.load_spec(path) == graph


def test_the_writers_keep_the_pooling_options():
    import yaml

    from cnnc.frontend.writers import to_dsl, to_yaml

    graph = cnnc.load_spec(SPEC)
    text = to_dsl(graph)
    assert "pads=(1, 0, 1, 1) ceil_mode=true" in text
    assert cnnc.load_spec(text) == graph
    assert cnnc.load_spec(yaml.safe_load(to_yaml(graph))) == graph


def test_average_dilations_need_opset_19(tmp_path):
    model = cnnc.compile(cnnc.load_spec(SPEC))
    with pytest.raises(CnncError, match="AveragePool takes dilations from opset 19"):
        model.export_onnx(str(tmp_path / "m.onnx"), opset=17)


@pytest.mark.parametrize("args, needles", [
    ("pads=(1, 1, 1, 1) padding=same", ["pads replaces the padding mode", "padding='same'"]),
    ("ceil_mode=true padding=same", ["ceil_mode", "padding='same'"]),
    ("pads=(2, 0, 0, 0)", ["smaller than the (dilated) 2x2 window", "pads=(2, 0, 0, 0)"]),
    ("pads=(1, 0, 1)", ["4 non-negative integers", "pads=(1, 0, 1)"]),
])
def test_bad_pooling_arguments_are_located(args, needles):
    with pytest.raises(CnncError) as info:
        cnnc.load_spec(f"network bad\ninput 6x6x3\navgpool2d 2 {args}\n")
    for needle in ["average_pooling2d", *needles]:
        assert needle in str(info.value)


LIGHT = ("inception_v1", "shufflenet", "bvlc_alexnet", "zfnet512", "inception_v2",
         "densenet121")


def _light_pool_nodes(name: str) -> list[tuple[onnx.NodeProto, list[int], int]]:
    """Each MaxPool/AveragePool node of a light model-zoo graph in onnx's wheel, with its input's
    shape (ONNX shape inference) and the model's opset."""
    from pathlib import Path

    path = Path(onnx.__file__).parent / "backend/test/data/light" / f"light_{name}.onnx"
    if not path.exists():
        pytest.skip(f"{path.name} is not in this onnx wheel")
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in (*model.graph.value_info, *model.graph.input)}
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return [(n, shapes[n.input[0]], opset) for n in model.graph.node
            if n.op_type in ("MaxPool", "AveragePool")]


@pytest.mark.parametrize("name", LIGHT)
def test_every_pooling_node_of_the_light_model_zoo_imports_exactly(name, tmp_path):
    """Each pooling node alone (its attributes, its input's shape with batch 1 and 2 channels),
    against onnxruntime: the models themselves stop elsewhere (LRN, folding) or give uniform
    outputs from their constant weights, which would hide a pooling error."""
    nodes = _light_pool_nodes(name)
    assert nodes
    for i, (node, shape, opset) in enumerate(nodes):
        one = helper.make_node(node.op_type, ["x"], ["y"], name=f"pool{i}")
        one.attribute.extend(node.attribute)
        shape = [1, 2, *shape[2:]]
        path = save(make_model([one], {"x": shape}, ["y"], opset=max(opset, 13)),
                    tmp_path / f"pool{i}.onnx")
        x = np.random.default_rng(i).standard_normal(shape).astype(np.float32)
        check_against_ort(path, x)
