"""conv2d_rows.cl's pixel-vector form (-D PX, the conv_rows variants with "px": a vector's lanes
neighbouring pixels of a row, PX filters a work-item) against the NumPy reference
(cnnc/crosscheck.py's tolerance): every layer of test_conv_rows.py (strides, dilation, 'same' and
'valid', 1 to 4 channels) in the widest vector and in narrow ones (a span past two vectors takes
the lane-by-lane path), with a folded batch norm, a residual added and a gated input, pooled as
it stores (max and mean, floor and 'same' pooling, LeNet-5's stem); and which variants the
tuner's space offers (pixel_variants)."""

from __future__ import annotations

import pytest
from test_conv_maxpool import ROW_MAPS, _check, net_spec
from test_conv_rows import LAYERS, gated_spec, residual_spec, stem_spec

import cnnc
from cnnc.backends.opencl.bind_conv_rows import pixel_variants
from cnnc.backends.opencl.target import Target
from cnnc.passes.pipeline import inference_graph

KERNEL = "conv2d_rows.cl:conv2d_rows"


def _px(vw: int, px: int) -> dict:
    return {"algo": "conv_rows", "MR": vw, "VW": vw, "NV": 1, "px": px}


def _divisors(filters: int) -> list[int]:
    """The largest filter count a work-item can hold (at most 8 here), and 1."""
    return sorted({max(d for d in range(1, 9) if filters % d == 0), 1})


def _conv_nodes(graph) -> list[str]:
    return [n.name for n in graph.nodes if n.op.startswith("conv2d")]


def _filters(layer: dict) -> int:
    return layer["conv2d"][0]


@pytest.mark.parametrize("vw, batch", [(16, 1), (16, 3), (4, 3)])
@pytest.mark.parametrize("index", range(len(LAYERS)))
def test_pixel_vectors_match_numpy(index, vw, batch, device):
    shape, layer = LAYERS[index]
    graph = inference_graph(cnnc.load_spec(stem_spec(shape, layer, "tanh", index % 2 == 1)))
    for px in _divisors(_filters(layer)):
        variants = {n: _px(vw, px) for n in _conv_nodes(graph)}
        kernels = _check(graph, batch, device, variants=variants)
        assert any(KERNEL in k for k in kernels.values())


@pytest.mark.parametrize("spec", [residual_spec, gated_spec])
def test_pixel_vectors_add_a_residual_and_scale_a_gated_input(spec, device):
    graph = inference_graph(cnnc.load_spec(spec()))
    for vw in (16, 4):
        variants = {name: _px(vw, 1) for name in _conv_nodes(graph)}
        kernels = _check(graph, 3, device, variants=variants)
        assert all(KERNEL in kernels[name] for name in variants)


@pytest.mark.parametrize("pool", ["maxpool2d", "avgpool2d"])
@pytest.mark.parametrize("index", range(len(ROW_MAPS)))
def test_pixel_vectors_pool_as_they_store(index, pool, device):
    shape, filters, kernel, conv, pooling = ROW_MAPS[index]
    if pool == "avgpool2d" and pooling:  # a mean takes whole windows only
        return
    spec = net_spec(shape, filters, kernel, conv, pooling, activation="elu")
    spec["layers"][-1] = {pool: None, "pool_size": 2, **pooling, "name": "p"}
    graph = inference_graph(cnnc.load_spec(spec))
    assert graph.node("p").op in ("conv2d_maxpool", "conv2d_avgpool")
    for vw in (16, 2):
        for px in _divisors(filters):
            kernels = _check(graph, 3, device, variants={"p": _px(vw, px)})
            assert KERNEL in kernels["p"]


def test_lenet5_stem_under_pixel_vectors(device):
    graph = inference_graph(cnnc.load_spec("lenet5"))
    stem = next(n.name for n in graph.nodes if n.op == "conv2d_avgpool")
    for px in (6, 3):
        kernels = _check(graph, 1, device, variants={stem: _px(16, px)})
        assert KERNEL in kernels[stem]


def _geo(width: int, stride: int = 1, kernel: int = 5) -> dict[str, int]:
    return {"OW": width, "SW": stride, "KW": kernel, "DW": 1}


def test_pixel_variants_where_filters_leave_vector_lanes_empty():
    cpu = Target("cpu", 2, native_vector=16)
    # LeNet-5's 6 filters on a 28-wide row: all 6 a work-item and 3, in float16 pixels
    assert [(v["VW"], v["px"]) for v in pixel_variants(6, _geo(28), cpu)] == [(16, 6), (16, 3)]
    # a row narrower than the vector: the vector no wider than the row needs
    assert {v["VW"] for v in pixel_variants(6, _geo(5, kernel=3), cpu)} == {8}
    # filters that fill whole vectors keep the filter-vector form alone
    assert pixel_variants(32, _geo(28), cpu) == []
    # a prime count: one filter a work-item, whatever else
    assert [v["px"] for v in pixel_variants(7, _geo(28), cpu)] == [7, 1]
    # windows past two vectors (stride 2): not offered (lane by lane, slower)
    assert pixel_variants(24, _geo(14, stride=2, kernel=3), cpu) == []
    assert pixel_variants(6, _geo(28), Target("gpu", 8)) == []
