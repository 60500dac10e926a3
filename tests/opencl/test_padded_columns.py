"""A convolution's kernel padded to more columns (conv2d.cl -D FP, the tuner's "pad": 1): blocks
of the widest vectors over filters they do not divide (24 and 72 on AVX-512), the padding built
by a launch that runs once per change of the weights (elementwise.cl's pad_rows), and the
columns past the filters left out as the block is stored. Offered by the tuner on a CPU where
the vectors do not divide the filters (algorithms.py: _padded, tiling.padded_tiles); every such
variant, and padded blocks forced on filter counts it does not offer (1, 3), computes what the
NumPy reference computes (the gate: the node's shape and its edge shapes, canaries around every
buffer), on the plain 1x1 path, a 3x3 one, a gated one with a residual and a folded batch
norm."""

from __future__ import annotations

import pytest

from cnnc.backends.opencl.launches import BindContext, Workspace
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import registers_used
from cnnc.frontend.spec import load_spec
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.gate import Gate
from cnnc.tune.space import as_layer, describe, tunable, variant_space

# mobilenetv3_mini's third block in small (a 1x1 expansion to 72 with a folded batch norm, a
# squeeze-excite gate, the gated projection to 24 with a folded batch norm and a residual), then
# 3x3 convolutions of 100, 3 and 1 filters ('same' and 'valid' windows), 1x1 ones of 40 and 17,
# and a depthwise convolution with the 1x1 one of 24 filters reading it (fused at inference:
# depthwise_pointwise, whose row kernel pads its filters too: -D KP).
SPEC = """
network: tiny_padded
input: [5, 3, 8]
layers:
  - {conv2d: [24, 1], activation: relu, name: x0}
  - {conv2d: [72, 1], use_bias: false, name: e}
  - {batchnorm: null}
  - {activation: hard_swish, name: a}
  - {global_avgpool2d: null, keepdims: true}
  - {conv2d: [24, 1], activation: relu}
  - {conv2d: [72, 1], activation: hard_sigmoid, name: g}
  - multiply: {inputs: [a, g]}
  - {conv2d: [24, 1], use_bias: false}
  - {batchnorm: null, name: p}
  - add: {inputs: [x0, p], name: j}
  - {conv2d: [100, 3], padding: same, activation: tanh, inputs: [j], name: wide}
  - {conv2d: [3, 3], padding: valid, inputs: [j], name: three}
  - {conv2d: [1, 3], padding: same, inputs: [j], name: one}
  - {conv2d: [40, 1], activation: relu, inputs: [wide], name: forty}
  - {conv2d: [17, 1], inputs: [forty], name: seventeen}
  - {depthwise_conv2d: 3, padding: same, use_bias: false, inputs: [j]}
  - batchnorm
  - {activation: relu}
  - {conv2d: [24, 1], use_bias: false}
  - {batchnorm: null, name: dp}
  - {flatten: null, inputs: [three], name: f1}
  - {flatten: null, inputs: [one], name: f2}
  - {flatten: null, inputs: [seventeen], name: f3}
  - {flatten: null, inputs: [dp], name: f4}
  - concatenate: {inputs: [f1, f2, f3, f4]}
"""

# Each convolution of the graph (tunable conv2d nodes, fused or gated ones as their layer) by
# its filters.
FILTERS = {"x0": 24, "a": 72, "j": 24, "wide": 100, "three": 3, "one": 1, "forty": 40,
           "seventeen": 17}
AVX512 = Target("cpu", 2, native_vector=16)
AVX2 = Target("cpu", 2, native_vector=8)


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "tiny_padded.yaml"
    path.write_text(SPEC)
    return inference_graph(load_spec(str(path)))


def _convolutions(graph):
    return [n for n in graph.nodes if tunable(n) and as_layer(n).op == "conv2d"]


def _padded(space):
    return [v for v in space if v.get("pad")]


def test_offered_where_the_widest_vectors_do_not_divide_the_filters(graph):
    """AVX-512: the nodes of 24, 72, 100 and 40 filters get padded float16 blocks; those of 1,
    3 and 17 (a quarter of the lanes or more would be padding) none; AVX2: float8 blocks for
    100 alone (float8 divides 24, 72 and 40); a GPU none. The padding takes under a quarter of
    a block's lanes, and the block fits the vector registers."""
    nodes = _convolutions(graph)
    assert {n.name: FILTERS[n.name] for n in nodes} == FILTERS
    for target, vw, expected in ((AVX512, 16, {"x0", "a", "j", "wide", "forty"}),
                                 (AVX2, 8, {"wide"})):
        ctx = BindContext(graph, 2, target)
        offered = set()
        for node in nodes:
            padded = _padded(variant_space(node, ctx))
            f = FILTERS[node.name]
            for v in padded:
                nr = v["VW"] * v["NV"]
                fp = -(-f // nr) * nr
                assert v["VW"] == vw and f < fp and 3 * fp <= 4 * f, (node.name, v)
                assert registers_used(v, target) <= target.vector_registers, v
                assert "padded" in describe(v)
            if padded:
                offered.add(node.name)
        assert offered == expected, target
    gpu = BindContext(graph, 2, Target("gpu", 2))
    assert not any(_padded(variant_space(n, gpu)) for n in nodes)


def test_the_padding_is_hoisted_and_the_conv_reads_it(graph):
    """The padded node's binding: pad_rows from the kernel (a folded batch norm's: its fold's
    workspace) into a constant workspace of taps x C x FP floats, run once per change of the
    weights, then conv2d_forward with -D FP reading that workspace."""
    variants = {"a": {"algo": "direct", "MR": 6, "VW": 16, "NV": 3, "pad": 1},
                "wide": {"algo": "direct", "MR": 4, "VW": 16, "NV": 1, "pad": 1}}
    plan = make_plan(graph, 2, AVX512, variants=variants)
    for name, fp, taps in (("a", 96, 24), ("wide", 112, 9 * 24)):
        binding = plan.bindings[name]
        kernels = [lau.kernel for lau in binding.launches]
        pad = binding.launches[kernels.index("pad_rows")]
        conv = binding.launches[kernels.index("conv2d_forward")]
        assert plan.hoists(pad), name
        out = pad.args[1]
        assert isinstance(out, Workspace) and out.index in binding.constants
        assert binding.workspaces[out.index] == taps * fp
        assert conv.args[1] == out and conv.define_map["FP"] == fp
        if name == "a":  # the fold first, the padding reading what it wrote
            fold = binding.launches[kernels.index("batchnorm_fold")]
            assert kernels.index("batchnorm_fold") < kernels.index("pad_rows")
            assert pad.args[0] == fold.args[[type(a) for a in fold.args].index(Workspace)]
    unpadded = make_plan(graph, 2, AVX512)
    assert not any(lau.kernel == "pad_rows" for _, lau in unpadded.launches())
    assert not any("FP" in lau.define_map for _, lau in unpadded.launches())


# Padded blocks for filters the space offers none (fewer than a vector, or a quarter of the
# lanes or more padding): a float16 one and a float4 one.
FORCED = ({"algo": "direct", "MR": 4, "VW": 16, "NV": 1, "pad": 1},
          {"algo": "direct", "MR": 2, "VW": 4, "NV": 2, "pad": 1})


def _check(device, graph, batch, every):
    """The gate's verdicts on the padded variants of each convolution: the first the space
    offers on AVX-512 (every one with `every`), else FORCED's."""
    backend = OpenCLBackend(device, target=AVX512)
    ctx = BindContext(graph, batch, backend.target)
    failures, checked = [], set()
    for node in _convolutions(graph):
        offered = _padded(variant_space(node, ctx))
        variants = (offered if every else offered[:1]) or FORCED
        gate = Gate(backend, graph, node, batch)
        for variant in variants:
            checked.add(node.name)
            verdict = gate.check(variant)
            if not verdict.admitted:
                failures.append(f"{node.name} {describe(variant)}: {verdict.reason}")
    assert failures == []
    assert checked == set(FILTERS)


def test_padded_blocks_match_the_reference(device, graph):
    """A padded block per convolution, the node's shape and its edge shapes, at batch 2: the
    plain 1x1 path, the gated one with its residual, the 3x3 one, 1 to 100 filters."""
    _check(device, graph, 2, every=False)


@pytest.mark.slow
def test_every_padded_block_offered_matches_the_reference(device, graph):
    _check(device, graph, 3, every=True)


def test_depthwise_pointwise_rows_pad_their_filters(device, graph):
    """The fused depthwise + 1x1 node of 24 filters: padded row-kernel blocks offered on
    AVX-512 (none on AVX2), bound as the folds, the padding (once per change of the weights)
    and the row kernel with -D KP = 32, and each computes what the NumPy reference does."""
    node = graph.node("dp")
    assert node.op == "depthwise_pointwise"
    padded = _padded(variant_space(node, BindContext(graph, 2, AVX512)))
    assert padded and all(v["VW"] == 16 and v["NV"] == 2 for v in padded), padded
    assert not _padded(variant_space(node, BindContext(graph, 2, AVX2)))
    plan = make_plan(graph, 2, AVX512, variants={"dp": padded[0]})
    binding = plan.bindings["dp"]
    kernels = [lau.kernel for lau in binding.launches]
    assert kernels == ["batchnorm_fold", "batchnorm_fold", "pad_rows",
                       "depthwise_pointwise_rows"], kernels
    pad, rows = binding.launches[2], binding.launches[3]
    assert plan.hoists(pad) and rows.define_map["KP"] == 32 and rows.args[3] == pad.args[1]
    assert binding.workspaces[pad.args[1].index] == 24 * 32
    backend = OpenCLBackend(device, target=AVX512)
    gate = Gate(backend, graph, node, 2)
    for variant in padded:
        verdict = gate.check(variant)
        assert verdict.admitted, (describe(variant), verdict.reason)


def test_gathered_convolutions_read_the_padded_kernel(device):
    """shufflenet_mini's gathered 1x1 convolutions (24 filters, their input read from several
    tensors: conv2d.cl's -D GATHERED path, which the gate's stand-in does not run) under padded
    variants: the whole forward pass against the NumPy reference, at batch 3."""
    from pathlib import Path

    from cnnc.crosscheck import cross_check
    from cnnc.ir.gathered import LAYER_OF_GATHERED

    spec = Path(__file__).resolve().parents[2] / "specs" / "shufflenet_mini.yaml"
    graph = inference_graph(load_spec(str(spec)))
    gathered = [n.name for n in graph.nodes if n.op in LAYER_OF_GATHERED]
    assert len(gathered) == 2
    variant = {"algo": "direct", "MR": 6, "VW": 16, "NV": 2, "pad": 1}
    plan = make_plan(graph, 3, AVX512, variants=dict.fromkeys(gathered, variant))
    for name in gathered:
        conv = [lau for lau in plan.bindings[name].launches if lau.kernel == "conv2d_forward"]
        assert conv[0].define_map["GATHERED"] == 1 and conv[0].define_map["FP"] == 32
    report = cross_check(graph, 3, device=device, target=AVX512, seed=1,
                         variants=dict.fromkeys(gathered, variant))
    assert report.passed, report
