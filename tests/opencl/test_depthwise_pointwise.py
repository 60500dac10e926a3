"""depthwise_pointwise on the device (kernels/depthwise_pointwise.cl,
bind_depthwise_pointwise.py) against the unfused NumPy reference in float64: op_cases.py's case
and the example specs' blocks with batch norm state far from its initial values, under the
device's own block and a GPU's, and every variant of the tuner's space (the one-phase and the
staged kernel); the register blocks it picks; the launches it makes."""

from __future__ import annotations

import numpy as np
import pytest
from op_cases import CASES
from test_fused import random_state

import cnnc
from cnnc.backends.numpy import NumpyBackend
from cnnc.backends.opencl.bind_depthwise_pointwise import (
    ROWS,
    STAGED,
    STAGED_FLOATS,
    block,
    rows_default,
    rows_tile,
    rows_variants,
    staged_applies,
    staged_default,
    staged_tile,
    staged_variants,
)
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check, random_feeds
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.space import variant_space

CASE = next(c for c in CASES if c.name == "depthwise_pointwise")


def _backend(device, tiling: str):
    from cnnc.backends.opencl.runtime import OpenCLBackend

    if tiling == "gpu-tiling" and device.kind == "gpu":
        pytest.skip("the native tiling of a GPU device is the GPU tiling")
    target = Target("gpu", device.compute_units) if tiling == "gpu-tiling" else None
    return OpenCLBackend(device, target=target)


def _check(spec, batch: int, backend, fused_nodes: int) -> None:
    fused = inference_graph(spec)
    assert [n.op for n in fused.nodes].count("depthwise_pointwise") == fused_nodes
    state = random_state(spec, 11)
    feeds = random_feeds(spec, batch, 3)
    ref = NumpyBackend("float64")
    ref.init_state(spec.state, state)
    want = ref.compile(spec, batch).run(feeds, spec.outputs)
    backend.init_state(fused.state, state)
    got = backend.compile(fused, batch).run(feeds, fused.outputs)
    for name in spec.outputs:
        scale = max(float(np.abs(want[name]).max()), 1.0)
        np.testing.assert_allclose(got[name], want[name], rtol=2e-5, atol=2e-5 * scale,
                                   err_msg=name)


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("batch", [1, 3])
def test_the_case_matches_the_unfused_reference(tiling, batch, device):
    _check(cnnc.load_spec(CASE.spec()), batch, _backend(device, tiling), 3)


# (mobilenetv3_mini's one plain block has a strided depthwise after an expansion: it is a
# pointwise_depthwise now, tests/opencl/test_pointwise_depthwise.py)
@pytest.mark.parametrize("spec, blocks", [("mobilenet_mini", 2), ("shufflenet_mini", 3)])
def test_the_example_specs_match_the_unfused_reference(spec, blocks, device):
    _check(cnnc.load_spec(spec), 5, _backend(device, "native"), blocks)


def test_the_block_covers_the_filters_where_registers_allow():
    avx512, avx2 = Target("cpu", 2, native_vector=16), Target("cpu", 2, native_vector=8)
    # mobilenet_mini's 32 filters: two vectors of 16, eight pixels (16 + 2 + 8 + 1 registers)
    assert block(32, 32, avx512) == {"MR": 8, "VW": 16, "NV": 2, "VD": 16}
    # shufflenet_mini's 24 filters: three vectors of 8, four pixels within 32 registers
    assert block(24, 24, avx512) == {"MR": 4, "VW": 8, "NV": 3, "VD": 8}
    # 64 filters on AVX2's 16 registers: eight vectors do not fit; four of 8, two pixels
    assert block(64, 32, avx2) == {"MR": 2, "VW": 8, "NV": 4, "VD": 8}
    assert block(7, 10, avx512) == {"MR": 8, "VW": 1, "NV": 1, "VD": 2}
    assert block(32, 16, Target("gpu", 8))["MR"] == 4


@pytest.mark.parametrize("kind, kernel", [("cpu", "depthwise_pointwise_rows"),
                                          ("gpu", "depthwise_pointwise")])
def test_one_launch_after_the_hoisted_folds(kind, kernel):
    from cnnc.backends.opencl.bind import bind_node

    graph = inference_graph(cnnc.load_spec("mobilenet_mini"))
    node = next(n for n in graph.nodes if n.op == "depthwise_pointwise")
    binding = bind_node(node, BindContext(graph=graph, batch=4, target=Target(kind, 2)))
    kernels = [(lau.kernel, lau.once) for lau in binding.launches]
    assert kernels == [("batchnorm_fold", True), ("batchnorm_fold", True), (kernel, False)]
    assert binding.constants == (0, 1, 2, 3)


def _cross_check(graph, batch, device, variants):
    report = cross_check(graph, batch, device=device.index, seed=5, variants=variants)
    bad = [c for c in report.checks if not c.passed]
    assert not bad, "; ".join(f"{c.node} ({c.kernels}): alone {c.local_rel:.2e} > "
                              f"{c.tolerance:.1e} or run {c.e2e_rel:.2e}" for c in bad)
    return {c.node: c.kernels for c in report.checks}


@pytest.mark.parametrize("batch", [1, 7])
def test_every_variant_of_the_tuners_space(batch, device):
    """The op case's three blocks (depth multiplier 2, stride 2, a dilated 2x3 window; 6, 7 and
    4 filters, none a multiple of the vector width) under each variant the tuner may time:
    the row and staged kernels' blocks (on a CPU) and the one-phase kernel's."""
    from cnnc.backends.opencl.runtime import OpenCLBackend

    graph = inference_graph(cnnc.load_spec(CASE.spec()))
    target = OpenCLBackend(device).target
    nodes = [n for n in graph.nodes if n.op == "depthwise_pointwise"]
    algos = set()
    for node in nodes:
        space = variant_space(node, BindContext(graph, batch, target))
        assert len(space) > 1
        for variant in space:
            algos.add(variant["algo"])
            kernels = _cross_check(graph, batch, device, {node.name: variant})
            for algo, kernel in ((STAGED, "depthwise_pointwise_staged"),
                                 (ROWS, "depthwise_pointwise_rows")):
                assert (kernel in kernels[node.name]) is (variant["algo"] == algo)
    assert algos == ({ROWS, STAGED, "fused"} if target.kind == "cpu" else {"fused"})


def test_the_staged_blocks_of_an_example_spec(device):
    """mobilenet_mini's blocks (32 filters: two vectors) with every staged block, batch 3."""
    from cnnc.backends.opencl.runtime import OpenCLBackend

    graph = inference_graph(cnnc.load_spec("mobilenet_mini"))
    target = OpenCLBackend(device).target
    if target.kind != "cpu":
        pytest.skip("the staged kernel is a CPU's")
    for node in (n for n in graph.nodes if n.op == "depthwise_pointwise"):
        for variant in staged_variants(node, BindContext(graph, 3, target)):
            _cross_check(graph, 3, device, {node.name: variant})


def _node_with_channels(channels: int):
    spec = (f"network wide\ninput 5x5x{channels}\ndepthwise_conv2d 3 same\n"
            "conv2d 16 1\n")
    graph = inference_graph(cnnc.load_spec(spec))
    return graph, next(n for n in graph.nodes if n.op == "depthwise_pointwise")


def test_the_staged_array_stays_within_its_floats():
    avx2 = Target("cpu", 2, native_vector=8)
    graph, node = _node_with_channels(1024)
    ctx = BindContext(graph, 2, avx2)
    assert staged_tile(node, ctx)["MR"] * 1024 <= STAGED_FLOATS
    variants = staged_variants(node, ctx)
    assert variants and all(v["MR"] * 1024 <= STAGED_FLOATS for v in variants)
    # past two pixels' worth the staged kernel does not apply; a GPU never takes it
    graph, node = _node_with_channels(STAGED_FLOATS)
    assert not staged_applies(node, BindContext(graph, 2, avx2))
    graph, node = _node_with_channels(32)
    assert staged_applies(node, BindContext(graph, 2, avx2))
    assert not staged_applies(node, BindContext(graph, 2, Target("gpu", 8)))


def test_the_staged_default_block():
    avx2, avx512 = Target("cpu", 2, native_vector=8), Target("cpu", 2, native_vector=16)
    # 24 filters: one vector of 8 and eight pixels, not register_tile's 4 x 24
    assert staged_default(24, avx2) == {"MR": 8, "VW": 8, "NV": 1}
    # 32 filters on AVX2: two vectors of 8, four pixels (8 + 2 + 1 registers of 16)
    assert staged_default(32, avx2) == {"MR": 4, "VW": 8, "NV": 2}
    assert staged_default(64, avx512) == {"MR": 8, "VW": 16, "NV": 2}


ROW_SHAPES = [  # (input, depthwise layer, filters): odd maps, partial row blocks, stride 2
    ("7x7x24", "depthwise_conv2d 3 strides=2 same", 24),
    ("14x14x24", "depthwise_conv2d 3 strides=2 same", 24),
    ("9x11x10", "depthwise_conv2d 5 same", 6),
    ("13x6x5", "depthwise_conv2d 3 valid", 12),
    ("8x9x3", "depthwise_conv2d 3 same depth_multiplier=2", 7),
]


@pytest.mark.parametrize("shape, layer, filters", ROW_SHAPES)
@pytest.mark.parametrize("act", ["relu", "hard_swish", "linear"])
def test_the_row_kernel_over_odd_rows(shape, layer, filters, act, device):
    """The row kernel against NumPy where its row blocks end partial (MR 4 and 2 over rows of
    5 to 11 pixels, and the default), with a 5x5 window, valid padding, a depth multiplier,
    channels and filters not multiples of the vector width, batches 1 and 7."""
    from cnnc.backends.opencl.runtime import OpenCLBackend

    spec = (f"network rows\ninput {shape}\n{layer}\nbatchnorm\nconv2d {filters} 1 {act}\n")
    graph = inference_graph(cnnc.load_spec(spec))
    target = OpenCLBackend(device).target
    if target.kind != "cpu":
        pytest.skip("the row kernel is a CPU's")
    node = next(n for n in graph.nodes if n.op == "depthwise_pointwise")
    for batch in (1, 7):
        ctx = BindContext(graph, batch, target)
        variants = [variant_space(node, ctx)[0], *rows_variants(node, ctx)]
        assert {v["algo"] for v in variants} == {ROWS}
        for variant in variants:
            kernels = _cross_check(graph, batch, device, {node.name: variant})
            assert "depthwise_pointwise_rows" in kernels[node.name]


def test_the_row_block_cuts_each_row_evenly():
    avx2 = Target("cpu", 2, native_vector=8)
    for width, mr in ((7, 7), (14, 7), (28, 7), (5, 5), (9, 5), (3, 3)):
        spec = f"network r\ninput {width}x{width}x24\ndepthwise_conv2d 3 same\nconv2d 24 1\n"
        graph = inference_graph(cnnc.load_spec(spec))
        node = next(n for n in graph.nodes if n.op == "depthwise_pointwise")
        tile = rows_tile(node, BindContext(graph, 2, avx2))
        # 24 filters in one block of three vectors: four pixels' GEMM block in 16 registers
        assert (tile["MR"], tile["NV"], tile["GR"]) == (mr, 3, min(mr, 4)), width


def test_the_row_default_block():
    avx2, avx512 = Target("cpu", 2, native_vector=8), Target("cpu", 2, native_vector=16)
    # 24 filters: all in one block (4 pixels x 3 vectors + 3 + 1 = 16 registers)
    assert rows_default(24, avx2) == {"MR": 8, "VW": 8, "NV": 3}
    # 32 filters on AVX2: four vectors would not fit four pixels; staged_default's block
    assert rows_default(32, avx2) == staged_default(32, avx2) == {"MR": 4, "VW": 8, "NV": 2}
    assert rows_default(64, avx512) == {"MR": 8, "VW": 16, "NV": 4}
