"""Register blocks that divide a few-pixel map's rows (tiling.exact_row_tile): the default block of
a convolution of at most EXACT_ROWS_MAX output pixels on a CPU (the direct conv2d's rows_tile,
bind_layers.with_exact_rows), register_tile's block still in the tuner's space, and every such
block, in one part or in reduction parts, computes what the NumPy reference computes (the gate:
the node's shape and its edge shapes)."""

from __future__ import annotations

import pytest

from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import (
    EXACT_ROWS_MAX,
    exact_row_tile,
    operand_registers,
    register_tile,
)
from cnnc.frontend.spec import load_spec
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.gate import Gate
from cnnc.tune.space import as_layer, describe, tunable, variant_space

AVX2 = Target("cpu", 2, native_vector=8)
AVX512 = Target("cpu", 2, native_vector=16)

# A 7x7 map (49 GEMM rows at batch 1, 147 at batch 3): 232 channels into 64 filters (2,088
# reduction steps: 4 parts by default at batch 1) and 40 filters (no vector of 16 divides them),
# then a pooled one (conv2d_maxpool, tuned as its convolution) of 64 channels into 48.
SPEC = """
network: tiny_exact_rows
input: [7, 7, 232]
layers:
  - {conv2d: [64, 3], padding: same, activation: relu, name: c1}
  - {conv2d: [40, 3], padding: same, inputs: [input_layer], name: c2}
  - {conv2d: [48, 3], padding: same, activation: relu, inputs: [c1], name: c3}
  - {maxpool2d: 2, name: pooled}
  - {flatten: null, inputs: [c2], name: f2}
  - {flatten: null, inputs: [pooled], name: f3}
  - concatenate: {inputs: [f2, f3]}
"""


def test_a_block_of_rows_that_divide_the_map_where_the_default_does_not():
    # 49 rows: 7 blocks of 7 (the default's 8-row blocks compute 56), four vectors of 16 where
    # they divide the columns and fit AVX-512's registers (7 * 4 + 4 = 32), else fewer
    assert exact_row_tile(49, 256, AVX512) == {"MR": 7, "VW": 16, "NV": 4}
    assert exact_row_tile(49, 32, AVX512) == {"MR": 7, "VW": 16, "NV": 2}
    assert exact_row_tile(25, 64, AVX512) == {"MR": 5, "VW": 16, "NV": 4}
    assert exact_row_tile(15, 40, AVX512) == {"MR": 5, "VW": 8, "NV": 1}
    for rows, cols in ((49, 256), (49, 32), (25, 64), (15, 40), (36, 96), (63, 48)):
        tile = exact_row_tile(rows, cols, AVX512)
        assert rows % tile["MR"] == 0 and cols % (tile["VW"] * tile["NV"]) == 0
        assert operand_registers(tile, AVX512) <= AVX512.vector_registers
        assert register_tile(cols, AVX512)["MR"] // 2 < tile["MR"] < 8
    # none where the default's rows divide the map, past EXACT_ROWS_MAX rows (the 14x14 maps'
    # 196: measured slower there), where no row count down to half the default's divides (a
    # 3x3 map), on AVX2 (its default's 4 rows: only 3 would do, and 3 does not divide 49),
    # and on a GPU (local tiles)
    assert exact_row_tile(48, 256, AVX512) is None
    assert EXACT_ROWS_MAX < 196 and exact_row_tile(196, 128, AVX512) is None
    assert exact_row_tile(9, 256, AVX512) is None
    assert exact_row_tile(49, 256, AVX2) is None
    assert exact_row_tile(49, 256, Target("gpu", 8)) is None


@pytest.fixture(scope="module")
def graph():
    return inference_graph(load_spec(SPEC, name="tiny_exact_rows"))


def _convolutions(graph):
    return [n for n in graph.nodes if tunable(n) and as_layer(n).op in ("conv2d",)]


def _exact(space):
    return [v for v in space if v.get("MR") == 7 and v.get("algo") == "direct"]


def _bound_tile(backend, graph, node, batch):
    """The block the binders give the node without a variant (its convolution launch's)."""
    backend.choose_variants = lambda g, b: {}
    launches = backend.compile(graph, batch).plan.bindings[node.name].launches
    conv = next(lau for lau in launches if lau.kernel == "conv2d_forward").define_map
    return {k: conv[k] for k in ("MR", "VW", "NV")}


def test_the_default_at_batch_1_only(device, graph):
    backend = OpenCLBackend(device)
    target = backend.target
    nodes = _convolutions(graph)
    assert [n.name for n in nodes] == ["c1", "c2"]
    for node in nodes:
        one = variant_space(node, BindContext(graph, 1, target))
        three = variant_space(node, BindContext(graph, 3, target))
        cols = {"c1": 64, "c2": 40}[node.name]
        assert _exact(three) == [], node.name  # 147 rows: past EXACT_ROWS_MAX
        assert _bound_tile(backend, graph, node, 3) == register_tile(cols, target)
        tile = exact_row_tile(49, cols, target)
        if tile is None:  # a GPU, or a CPU whose default rows leave none (AVX2's 4)
            assert _exact(one) == [], node.name
            assert _bound_tile(backend, graph, node, 1) == register_tile(cols, target)
            continue
        # the default, spelled out as the binders bind it, and register_tile's block after
        assert one[0] == {"algo": "direct", **tile}, describe(one[0])
        assert _bound_tile(backend, graph, node, 1) == tile
        assert {"algo": "direct", **register_tile(cols, target)} in one, node.name
        if target.max_vector == 16:
            assert tile["NV"] == {"c1": 4, "c2": 1}[node.name]


def test_every_exact_block_matches_the_reference(device, graph):
    """Each convolution's AVX-512 exact block (the pooled one's as its convolution), in one
    part, in 2 and 4 parts and by default (4 parts for c1), on its shape and the edge shapes;
    on any CPU (an AVX2 one computes the same blocks, only slower). A GPU is never offered
    them (its blocks are its local tiles')."""
    backend = OpenCLBackend(device)
    if backend.target.kind != "cpu":
        pytest.skip("exact row blocks are a CPU's variants")
    pooled = next(n for n in graph.nodes if n.op == "conv2d_maxpool")
    failures, checked = [], 0
    for node, cols in zip((*_convolutions(graph), pooled), (64, 40, 48)):
        tile = exact_row_tile(49, cols, AVX512)
        gate = Gate(backend, graph, node, 1)
        base = {"algo": "direct", **tile}
        no_local = {"local": 0} if backend.target.local_tiling else {}
        for variant in [base, *({**base, "split": p, **no_local} for p in (1, 2, 4))]:
            checked += 1
            verdict = gate.check(variant)
            if not verdict.admitted:
                failures.append(f"{node.name} {describe(variant)}: {verdict.reason}")
    assert checked == 12
    assert failures == []
