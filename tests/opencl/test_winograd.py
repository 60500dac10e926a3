"""Winograd F(2x2, 3x3), F(4x4, 3x3) and F(7x7, 3x3) (kernels/winograd.cl,
cnnc/backends/opencl/winograd.py)
against the NumPy reference backend in float64: conv2d's forward pass and its input gradient on
odd shapes (sizes not multiples of the tile, 1x1 images, channels not multiples of the vector
width, same and valid padding, with and without bias, relu and tanh), chosen per node through
the backend's `choose_variants` hook; and the fashion model's forward pass and training step with
every 3x3 convolution on Winograd against the default kernels.

Tolerance: the float32 error of a direct kernel (reduction of K = 9C terms: ~sqrt(K) * 2^-24
relative to the output's scale), times `winograd_error_factor(m)`, with a margin of 2x.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cnnc.backends.numpy.call import Call
from cnnc.backends.numpy.table import IMPLS
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.winograd import (
    grad_kernel_variants,
    winograd_applies,
    winograd_error_factor,
    winograd_variants,
)
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node, StateSpec

EPS32 = 2.0**-24


def _input(name: str, shape: tuple[int, ...]) -> Node:
    return Node(name, "input", attrs=Attrs(shape=shape, dtype="float32"), shape=(None, *shape))


def _attrs(padding: str, **extra) -> dict:
    return {"kernel_size": (3, 3), "strides": (1, 1), "padding": padding,
            "dilation_rate": (1, 1), "groups": 1, **extra}


def forward_graph(h, w, c, f, padding, bias, act) -> Graph:
    oh, ow = (h, w) if padding == "same" else (h - 2, w - 2)
    params = (StateSpec("k", (3, 3, c, f)),) + ((StateSpec("b", (f,)),) if bias else ())
    node = Node(
        "y", "conv2d", ("x",),
        Attrs(filters=f, activation=act, use_bias=bias, **_attrs(padding)),
        params=tuple(p.name for p in params), shape=(None, oh, ow, f),
    )
    return Graph("fwd", (_input("x", (h, w, c)), node), ("y",), params)


def grad_input_graph(h, w, c, f, padding) -> Graph:
    oh, ow = (h, w) if padding == "same" else (h - 2, w - 2)
    attrs = Attrs(filters=f, input_shape=(h, w, c), **_attrs(padding))
    node = Node("y", "conv2d_grad_input", ("dy", "k"), attrs, shape=(None, h, w, c))
    return Graph("gin", (_input("dy", (oh, ow, f)), node), ("y",), (StateSpec("k", (3, 3, c, f)),))


def run_both(graph: Graph, batch: int, device, variant: dict | None, target=None, isolate=False):
    """(OpenCL output in float32 with `variant` on node 'y', NumPy float64 reference, K)."""
    rng = np.random.default_rng(batch * 7 + len(graph.state))
    values = {}
    for n in graph.nodes:
        if n.op == "input":
            values[n.name] = rng.standard_normal((batch, *n.shape[1:])).astype(np.float32)
    for s in graph.state:
        values[s.name] = (rng.standard_normal(s.shape) * 0.3).astype(np.float32)
    backend = OpenCLBackend(device, target=target, isolate=isolate)
    if variant is not None:
        backend.choose_variants = lambda g, b: {"y": variant}
    backend.init_state(graph.state, values)
    exe = backend.compile(graph, batch)
    got = exe.run({n: values[n] for n in graph.inputs}, ["y"])["y"]
    node = graph.node("y")
    operands = [values[v].astype(np.float64) for v in node.operands]
    ref = IMPLS[node.op](Call(node=node, dtype=np.dtype(np.float64)), *operands)
    k = 9 * (values[node.operands[0]].shape[-1])
    return got, ref, k, exe


def assert_close(got, ref, k: int, m: int) -> None:
    scale = max(np.abs(ref).max(), 1.0)
    tol = 2 * winograd_error_factor(m) * np.sqrt(k) * EPS32 * scale
    err = np.abs(got.astype(np.float64) - ref).max()
    assert err <= tol, f"max error {err:.3e} > tolerance {tol:.3e}"


def _kernels(exe) -> set[str]:
    return {lau.kernel for b in exe.plan.bindings.values() for lau in b.launches}


SLOW = pytest.mark.slow
# (batch, h, w, c, f, padding, bias, activation): sizes not multiples of the tile (5x7, 1x1,
# 3x3), channels not multiples of the vector width, same and valid padding, batch 1 and 3.
CASES = [
    (1, 5, 7, 3, 5, "same", True, "relu"),
    (3, 1, 1, 4, 8, "same", False, "tanh"),
    (3, 5, 7, 16, 24, "valid", True, "tanh"),
    pytest.param((1, 3, 3, 8, 3, "same", False, "relu"), marks=SLOW),
    pytest.param((2, 9, 6, 5, 16, "same", True, "relu"), marks=SLOW),
    pytest.param((3, 5, 7, 3, 5, "valid", False, "relu"), marks=SLOW),
]


def _case_id(case) -> str:
    return "x".join(map(str, case[:5])) + f"-{case[5]}-{'bias' if case[6] else 'nobias'}-{case[7]}"


@pytest.mark.parametrize("m", [2, 4, 7])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_forward_matches_reference(device, m, case):
    batch, h, w, c, f, padding, bias, act = case
    graph = forward_graph(h, w, c, f, padding, bias, act)
    got, ref, k, exe = run_both(graph, batch, device, {"algo": "winograd", "wino_m": m})
    assert "winograd_gemm" in _kernels(exe) and "conv2d_forward" not in _kernels(exe)
    assert_close(got, ref, k, m)


@pytest.mark.parametrize("m", [2, 4, 7])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_grad_input_matches_reference(device, m, case):
    batch, h, w, c, f, padding = case[:6]
    graph = grad_input_graph(h, w, c, f, padding)
    got, ref, k, exe = run_both(graph, batch, device, {"algo": "winograd", "wino_m": m})
    assert "winograd_gemm" in _kernels(exe) and "conv2d_grad_input" not in _kernels(exe)
    assert_close(got, ref, k, m)


# (m, tiles per work-item): one, an odd count that leaves the last work-item short, four.
FUSED = [(2, 3), (4, 1), (4, 4), (7, 2)]


# F(7x7)'s shapes: the maps it covers exactly (7, 14, 28), sizes it overhangs (9, 10, 15),
# 'same' and 'valid', channels not multiples of the vector width, batch 1 and 7.
M7_CASES = [
    (7, 7, 7, 12, 16, "same", True, "relu"),
    (1, 14, 14, 5, 8, "same", False, "tanh"),
    (1, 9, 10, 16, 24, "valid", True, "relu"),
    pytest.param((1, 28, 28, 8, 16, "same", True, "relu"), marks=SLOW),
    pytest.param((7, 15, 9, 3, 5, "same", True, "relu"), marks=SLOW),
    pytest.param((7, 10, 15, 9, 7, "valid", False, "tanh"), marks=SLOW),
]


@pytest.mark.parametrize("case", M7_CASES, ids=_case_id)
def test_f7_forward_and_grad_input(device, case):
    batch, h, w, c, f, padding, bias, act = case
    graph = forward_graph(h, w, c, f, padding, bias, act)
    got, ref, k, exe = run_both(graph, batch, device, {"algo": "winograd", "wino_m": 7})
    assert {x.define_map["WINO_M"] for x in exe.plan.bindings["y"].launches} == {7}
    assert_close(got, ref, k, 7)
    graph = grad_input_graph(h, w, c, f, padding)
    got, ref, k, exe = run_both(graph, batch, device, {"algo": "winograd", "wino_m": 7})
    assert "winograd_gemm" in _kernels(exe)
    assert_close(got, ref, k, 7)


@pytest.mark.parametrize("m,nt", FUSED)
@pytest.mark.parametrize("case", CASES[:3], ids=_case_id)
def test_fused_forward_matches_reference(device, m, nt, case):
    batch, h, w, c, f, padding, bias, act = case
    graph = forward_graph(h, w, c, f, padding, bias, act)
    variant = {"algo": "winograd", "wino_m": m, "wino_fused": nt}
    got, ref, k, exe = run_both(graph, batch, device, variant)
    assert "winograd_fused" in _kernels(exe) and "winograd_gemm" not in _kernels(exe)
    assert_close(got, ref, k, m)


@pytest.mark.parametrize("m,nt", FUSED)
@pytest.mark.parametrize("case", CASES[:3], ids=_case_id)
def test_fused_grad_input_matches_reference(device, m, nt, case):
    batch, h, w, c, f, padding = case[:6]
    graph = grad_input_graph(h, w, c, f, padding)
    variant = {"algo": "winograd", "wino_m": m, "wino_fused": nt}
    got, ref, k, exe = run_both(graph, batch, device, variant)
    assert "winograd_fused" in _kernels(exe) and "conv2d_grad_input" not in _kernels(exe)
    assert_close(got, ref, k, m)


@pytest.mark.parametrize("c", [16, 32])
def test_fused_wide_counts_match_reference(device, c):
    """The counts the space offers under FUSED_WIDE_PRIVATE_FLOATS on the device (on a CPU up to
    8 tiles of F(4x4) per work-item, 72 KiB of private arrays at 32 channels: pocl keeps a
    work-group's on one thread's stack), each against the reference on a 14x14 map
    (overhanging F(4x4)'s tiles)."""
    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.backends.opencl.winograd import fused_tiles_per_item

    target = OpenCLBackend(device).target
    graph = forward_graph(14, 14, c, c, "same", True, "relu")
    shape = {"C": c, "F": c}
    checked = 0
    for m in (2, 4):
        for nt in fused_tiles_per_item(shape, m, target):
            variant = {"algo": "winograd", "wino_m": m, "wino_fused": nt}
            got, ref, k, exe = run_both(graph, 3, device, variant)
            assert "winograd_fused" in _kernels(exe)
            assert_close(got, ref, k, m)
            checked += 1
    assert checked >= 2


def test_fused_two_filter_blocks(device):
    """Filters in at least two blocks (F = 32 on 8-wide vectors, 64 on 16-wide ones: the block
    is the device's), channels of 16 moved 8 at a time, on a 7x7 image: the loops the small
    cases above do not reach."""
    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.backends.opencl.winograd import fused_filter_block

    target = OpenCLBackend(device).target
    f = next(f for f in (32, 64, 128) if math.prod(fused_filter_block(f, target).values()) < f)
    graph = forward_graph(7, 7, 16, f, "same", True, "relu")
    variant = {"algo": "winograd", "wino_m": 4, "wino_fused": 2}
    got, ref, k, exe = run_both(graph, 3, device, variant)
    fused = next(x for x in exe.plan.bindings["y"].launches if x.kernel == "winograd_fused")
    assert fused.define_map["VW"] * fused.define_map["NV"] < f
    assert_close(got, ref, k, 4)


@pytest.mark.parametrize("m", [2, 4, 7])
def test_batch_chunks_and_gpu_tiling(device, m):
    """The batch's tiles in chunks (an odd chunk size: the last chunk is short) with another
    GEMM tile, and a GPU's local-memory tiles on whatever device there is."""
    graph = forward_graph(5, 7, 8, 16, "same", True, "relu")
    tile = {"MR": 3, "VW": 8, "NV": 2}  # a tuner's tile: rows past the end, two vectors
    chunk = 2 if m == 7 else 5  # F(7x7): 3 tiles in all
    variant = {"algo": "winograd", "wino_m": m, "wino_chunk": chunk, "wino_tile": tile}
    got, ref, k, exe = run_both(graph, 3, device, variant)
    gemms = [x for x in exe.plan.bindings["y"].launches if x.kernel == "winograd_gemm"]
    assert len(gemms) > 1 and gemms[0].define_map["MR"] == 3
    assert_close(got, ref, k, m)
    gpu = Target("gpu", device.compute_units, force_local_tiles=True)
    got, ref, k, exe = run_both(graph, 3, device, {"algo": "winograd", "wino_m": m}, gpu)
    gemm = next(x for x in exe.plan.bindings["y"].launches if x.kernel == "winograd_gemm")
    if device.kind != "gpu":
        assert gemm.define_map.get("LOCAL_TILE") == 1
    assert_close(got, ref, k, m)


@pytest.mark.parametrize(
    "variant",
    [
        {"algo": "winograd", "wino_m": 3},
        {"algo": "winograd", "wino_m": 6},
        {"algo": "winograd", "wino_m": 2, "wino_chunk": -1},
        {"algo": "winograd", "wino_m": 2, "wino_tile": {"MR": 4, "VW": 3, "NV": 1}},
        {"algo": "winograd", "wino_m": 2, "wino_tile": {"MR": 4, "VW": 8, "NV": 1}},  # F = 5
        {"algo": "winograd", "wino_m": 2, "wino_fused": 17},
        {"algo": "winograd", "wino_m": 2, "wino_fused": 2, "wino_chunk": 4},
        {"algo": "winograd", "wino_m": 2, "wino_fused": "2"},
    ],
)
def test_bad_variants_are_refused(variant):
    from cnnc.backends.opencl.plan import make_plan
    from cnnc.errors import InternalError

    graph = forward_graph(5, 7, 3, 5, "same", True, "relu")
    with pytest.raises(InternalError, match="Winograd"):
        make_plan(graph, 2, Target(), variants={"y": variant})


def test_winograd_refused_where_it_does_not_apply():
    from cnnc.backends.opencl.plan import make_plan
    from cnnc.errors import InternalError

    graph = forward_graph(5, 7, 3, 5, "same", True, "relu")
    node = graph.node("y")
    strided = replace(node, attrs=node.attrs.replace(strides=(2, 2)), shape=(None, 3, 4, 5))
    graph = Graph("s", (graph.nodes[0], strided), ("y",), graph.state)
    assert winograd_variants(strided, BindContext(graph, 2, Target())) == []
    with pytest.raises(InternalError, match="Winograd"):
        make_plan(graph, 2, Target(), variants={"y": {"algo": "winograd", "wino_m": 2}})


def test_variant_space():
    fwd = forward_graph(5, 7, 3, 5, "same", True, "relu")
    ctx = BindContext(fwd, 2, Target())
    # F = 5: only the default tile (no tile of 16 columns divides it); few channels, so the
    # fused kernel too, with the register block's rows (8 of one float)
    # fused kernel too, with the register block's rows (8 of one float); F(7x7) too: one
    # tile covers the 5 x 7 map (81 multiplications per 35 outputs against F(4x4)'s 4 x 36)
    fused = [{"algo": "winograd", "wino_m": m, "wino_fused": 8} for m in (2, 4, 7)]
    assert winograd_variants(fwd.node("y"), ctx) == [
        fused[0], {"algo": "winograd", "wino_m": 2}, fused[1], {"algo": "winograd", "wino_m": 4},
        fused[2], {"algo": "winograd", "wino_m": 7},
    ]
    wide = forward_graph(5, 7, 3, 32, "same", True, "relu")
    found = winograd_variants(wide.node("y"), BindContext(wide, 2, Target()))
    assert {v["wino_m"] for v in found} == {2, 4, 7}
    assert len([v for v in found if "wino_fused" not in v]) == 9
    # F(4x4) at 8 tiles per work-item would pass FUSED_PRIVATE_FLOATS (8 * 36 * (3 + 32)
    # floats): half that; F(7x7), 81 * (3 + 32) floats a tile: two; on a CPU, few channels,
    # before F(4x4)'s 4 its 8, within FUSED_WIDE_PRIVATE_FLOATS (F(7x7) keeps the L1 bound)
    assert [(v["wino_m"], v["wino_fused"]) for v in found if "wino_fused" in v] == [
        (2, 8), (4, 8), (4, 4), (7, 2)]
    # a GPU: one count each, the L1 bound's (its private arrays are registers; 4 rows a
    # work-item there)
    gpu = winograd_variants(wide.node("y"), BindContext(wide, 2, Target("gpu", 1)))
    assert [(v["wino_m"], v["wino_fused"]) for v in gpu if "wino_fused" in v] == [
        (2, 4), (4, 4), (7, 4)]
    assert {"MR": 4, "VW": 16, "NV": 1} in [v.get("wino_tile") for v in found]
    # many channels: no fused kernel (even one tile's private arrays would pass
    # FUSED_PRIVATE_FLOATS: 16 * (512 + 32) floats for F(2x2))
    deep = forward_graph(5, 7, 512, 32, "same", True, "relu")
    found = winograd_variants(deep.node("y"), BindContext(deep, 2, Target()))
    assert found and not any("wino_fused" in v for v in found)
    # 32 channels: F(4x4) at two tiles (2 * 36 * (32 + 32) floats; four would pass the limit)
    # and before them the wide bound's 8 (8 * 36 * 64 floats); 64: two tiles per work-item
    # (F(4x4): 2 * 36 * (64 + 32) floats) and no wide bound (more than 32 channels); 128: F(2x2)
    # at two tiles (16 * 160 * 2), F(4x4) none (one tile loads each U vector for one FMA:
    # slower than the three launches)
    for c, fused in ((32, [(2, 8), (4, 8), (4, 2)]), (64, [(2, 4), (4, 2)]),
                     (128, [(2, 2)])):
        mid = forward_graph(14, 14, c, 128, "same", True, "relu")
        found = winograd_variants(mid.node("y"), BindContext(mid, 2, Target()))
        assert [(v["wino_m"], v["wino_fused"]) for v in found if "wino_fused" in v] == fused
    gin = grad_input_graph(5, 7, 3, 5, "valid")
    assert len(winograd_variants(gin.node("y"), BindContext(gin, 2, Target()))) == 6
    strided = dict(_attrs("same"), strides=(2, 2))
    assert not winograd_applies(strided)
    assert not winograd_applies(dict(_attrs("same"), kernel_size=(5, 5)))
    assert not winograd_applies(dict(_attrs("same"), groups=2))
    assert winograd_applies(_attrs("valid"))


@pytest.mark.parametrize("hw,offered", [((7, 7), True), ((14, 14), True), ((28, 28), True),
                                       ((5, 7), True), ((3, 3), False), ((9, 9), False),
                                       ((10, 10), False), ((15, 15), False), ((8, 8), False)])
def test_f7_offered_where_it_multiplies_less(hw, offered):
    """F(7x7) only where its 81 multiplications per tile, over the outputs its tiles hold, are
    fewer than F(4x4)'s 36 per tile ('same' padding: the map is the image)."""
    graph = forward_graph(*hw, 16, 32, "same", True, "relu")
    found = winograd_variants(graph.node("y"), BindContext(graph, 2, Target()))
    assert any(v["wino_m"] == 7 for v in found) is offered
    assert any(v["wino_m"] == 4 for v in found)


@pytest.mark.parametrize("hw,offered", [((7, 7), True), ((14, 14), False)])
def test_f7_not_offered_where_a_fused_pooling_would_cut_its_tiles(hw, offered):
    """A convolution read by a 2x2 pooling (the tuner's view of conv2d_maxpool, tuning_graph):
    F(7x7) only where one tile covers the map, the only case whose odd tile holds whole
    windows (bind_conv_maxpool.py would pool in a launch of its own otherwise)."""
    graph = forward_graph(*hw, 16, 32, "same", True, "relu")
    pool = Node("y/pool", "maxpool2d", ("y",),
                Attrs(pool_size=(2, 2), strides=(2, 2), padding="valid", dilation_rate=(1, 1),
                      pads=None),
                shape=(None, hw[0] // 2, hw[1] // 2, 32))
    graph = Graph("pooled", (*graph.nodes, pool), ("y/pool",), graph.state)
    found = winograd_variants(graph.node("y"), BindContext(graph, 2, Target()))
    assert any(v["wino_m"] == 7 for v in found) is offered


def _fashion_graphs():
    import cnnc
    from cnnc.ir.train_config import TrainConfig, parse_optimizer
    from cnnc.passes.pipeline import training_graph
    forward = cnnc.load_spec(Path(__file__).parents[2] / "specs" / "fashion.yaml")
    config = TrainConfig(loss="sparse_categorical_crossentropy", optimizer=parse_optimizer("nadam"))
    return forward, training_graph(forward, config, seed=7, wrt_inputs=True)


def test_fashion_model_on_winograd_matches_default(device):
    """The seed model's forward pass and training step with every stride-1 3x3 convolution, input
    gradient and kernel gradient on Winograd (F(2x2) and F(4x4) in turn) against the default kernels: the
    outputs and every gradient, relative to each tensor's largest value."""
    from cnnc.crosscheck import random_feeds
    from cnnc.initializers import initial_values

    batch = 2
    for graph, expected in zip(_fashion_graphs(), (4, 12)):
        ctx = BindContext(graph, batch, Target())
        nodes = [n.name for n in graph.nodes
                 if winograd_variants(n, ctx) or grad_kernel_variants(n, ctx)]
        chosen = {name: {"algo": "winograd", "wino_m": 2 + 2 * (i % 2)}
                  for i, name in enumerate(nodes)}
        # 4 convolutions; in training also their input gradients and kernel gradients
        assert len(chosen) == expected, sorted(chosen)
        compared = [n.name for n in graph.nodes if n.shape is not None
                    and (n.op.endswith(("_grad_kernel", "_grad_input")) or n.name in graph.outputs)]
        state, feeds = initial_values(graph.state, 3), random_feeds(graph, batch, 3)
        results = []
        for variants in ({}, chosen):
            backend = OpenCLBackend(device)
            backend.choose_variants = lambda g, b, v=variants: v
            backend.init_state(graph.state, state)
            exe = backend.compile(graph, batch, keep=compared)
            results.append(exe.run(feeds, compared, step=1))
            assert ("winograd_gemm" in _kernels(exe)) == bool(variants)
        for name in compared:
            want, got = results[0][name], results[1][name]
            scale = max(np.abs(want).max(), 1e-30)
            err = np.abs(got - want).max() / scale
            assert err <= 1e-6 * winograd_error_factor(4), f"{name}: relative error {err:.2e}"


TRANSFORMS = {"winograd_input", "winograd_output", "winograd_dy", "winograd_grad_output"}


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_transforms_run_in_small_groups_on_a_cpu(kind):
    """pocl 3.1 keeps a whole work-group's private tiles on one worker thread's stack: left to
    choose, it picked groups that overflowed it (a segmentation fault in winograd_input during
    a training step). So on a CPU every transform launch names groups of 8 (the fused kernel's
    size); a GPU's driver chooses."""
    from test_winograd_grad_kernel import grad_kernel_graph

    from cnnc.backends.opencl.plan import make_plan

    target = Target(kind=kind)
    want = (8,) if kind == "cpu" else None
    cases = [(forward_graph(28, 28, 16, 16, "same", True, "relu"), {"algo": "winograd", "wino_m": m})
             for m in (2, 4, 7)]
    cases.append((grad_kernel_graph(14, 14, 16, 16, "same"), {"algo": "winograd", "wino_m": 4}))
    seen = set()
    for graph, variant in cases:
        plan = make_plan(graph, 128, target, variants={"y": variant})
        for lau in plan.bindings["y"].launches:
            if lau.kernel in TRANSFORMS:
                seen.add(lau.kernel)
                assert lau.local_size == want, (variant, lau.kernel, lau.local_size)
                if want:
                    assert lau.global_size[0] % want[0] == 0
    assert seen == TRANSFORMS
