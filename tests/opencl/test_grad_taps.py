"""conv2d_grad_rows.cl's TAP_DIRECT kernel (bind_grad_taps.py): the kernel gradient of a
convolution of more channels, a kernel row's taps as vectors read straight from x, on the
device against the NumPy reference through the tuner's correctness gate (the node alone on its
real shape and its odd edge shapes, canaries around every buffer it writes): 8 to 32 channels
(and the gate's odd channels, in narrower vectors), 3x3, 5x5, 1x1 and non-square kernels,
strides 1, 2 and (2, 1), dilation 2, 'same' (Keras' extra pixel after) and 'valid', maps
narrower than the kernel's reach, odd maps and filters, batch 1 and 7; every variant the tuner
lists, blocks of fewer tap vectors, one and several parts, rows taken together. It is listed
only on a CPU where its vectors lie within one input pixel, and the default by a rule there."""

from __future__ import annotations

import pytest

from cnnc.backends.opencl.bind_grad_taps import NAME, applies, grad_taps_variants
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.target import Target
from cnnc.frontend.spec import load_spec
from cnnc.passes.pipeline import training_graph
from cnnc.tune.gate import Gate
from cnnc.tune.space import variant_space

FILE = "conv2d_grad_rows.cl"

# (label, input H W C, the convolution layer, batch)
LAYERS = [
    ("3x3 same, 16 channels, 16 filters (resnet_mini's)", (9, 11, 16),
     {"conv2d": [16, 3], "padding": "same"}, 7),
    ("3x3 valid, 8 channels, 6 filters", (7, 10, 8), {"conv2d": [6, 3]}, 1),
    ("5x5 same, 8 channels, 4 filters, a map narrower than the kernel", (6, 3, 8),
     {"conv2d": [4, 5], "padding": "same"}, 7),
    ("2x3 same, 32 channels, 5 filters", (5, 8, 32),
     {"conv2d": [5, [2, 3]], "padding": "same"}, 7),
    ("1x1, 16 channels, 12 filters", (5, 7, 16), {"conv2d": [12, 1]}, 1),
    ("3x3 stride 2 same, 16 channels, 8 filters", (9, 11, 16),
     {"conv2d": [8, 3], "strides": 2, "padding": "same"}, 7),
    ("1x1 stride 2, 8 channels, 16 filters (a shortcut)", (10, 7, 8),
     {"conv2d": [16, 1], "strides": 2}, 1),
    ("3x2 stride (2, 1) same, 8 channels", (9, 10, 8),
     {"conv2d": [4, [3, 2]], "strides": [2, 1], "padding": "same"}, 7),
    ("3x3 dilation 2 valid, 8 channels", (9, 10, 8),
     {"conv2d": [4, 3], "dilation_rate": 2}, 1),
]

# Beside the tuner's: single-vector blocks with parts taking their rows 2 at a time together
# and one filter per work-item, vectors of 4.
OTHERS = [
    {"MR": 1, "VW": 8, "NV": 1, "TVB": 1, "split": 3, "sync_rows": 2},
    {"MR": 1, "VW": 4, "NV": 1, "TVB": 2, "split": 1},
]


def _graph(shape, layer):
    spec = {"network": "taps", "input": list(shape),
            "layers": [{**layer, "name": "conv"}, "flatten",
                       {"dense": 3, "activation": "softmax"}]}
    return training_graph(load_spec(spec))


def _grad_kernel(graph):
    (node,) = [n for n in graph.nodes if n.op == "conv2d_grad_kernel"]
    return node


def _fits(variant, shape, layer):
    kw = layer["conv2d"][1] if isinstance(layer["conv2d"][1], int) else layer["conv2d"][1][1]
    tva = kw * shape[2] // variant["VW"]
    return tva % variant["TVB"] == 0 and layer["conv2d"][0] % variant["MR"] == 0


@pytest.mark.parametrize("index", range(len(LAYERS)), ids=[la[0] for la in LAYERS])
def test_tap_vectors_match_numpy(index, backend):
    _, shape, layer, batch = LAYERS[index]
    graph = _graph(shape, layer)
    node = _grad_kernel(graph)
    listed = grad_taps_variants(node, BindContext(graph, batch, backend.target))
    target = backend.target
    # The tuner lists it on a CPU whose vectors divide the channels (8 channels: not with an
    # AVX-512 device's 16); the kernel itself runs any vector width: OTHERS' 8 and 4.
    if target.kind == "cpu" and shape[2] % target.max_vector == 0:
        assert listed, "the tuner lists no variant where the algorithm applies"
    else:
        assert not listed
    gate = Gate(backend, graph, node, batch)
    others = [{"algo": NAME, **o} for o in OTHERS if _fits(o, shape, layer)]
    assert listed or others
    for variant in [*listed, *others]:
        verdict = gate.check(variant)
        assert verdict.admitted, f"{variant}: {verdict.reason}"


# (input H W C, layer, whether the tap vectors are the default on an AVX-512 CPU)
DEFAULTS = [
    ((9, 11, 16), {"conv2d": [16, 3], "padding": "same"}, True),  # 24 accumulators against 8
    ((9, 11, 48), {"conv2d": [16, 3], "padding": "same"}, True),
    ((9, 11, 16), {"conv2d": [32, 3], "padding": "same"}, False),  # 24 against 16
    ((9, 11, 16), {"conv2d": [16, 3], "strides": 2, "padding": "same"}, False),
    ((9, 11, 16), {"conv2d": [16, 1]}, False),  # no window: no bounds checked per tap
]


@pytest.mark.parametrize("shape,layer,default", DEFAULTS)
def test_the_default_by_rule(shape, layer, default):
    """The default where its block holds at least twice the direct kernel's default block's
    accumulators, for a window along contiguous columns; on an AVX2 CPU (16 registers: 4
    filters x 3 vectors against 8 x 2) and a GPU never."""
    graph = _graph(shape, layer)
    name = _grad_kernel(graph).name
    for target, expected in ((Target("cpu", 2, native_vector=16), default),
                             (Target("cpu", 2, native_vector=8), False),
                             (Target("gpu", 8), False)):
        launches = make_plan(graph, 7, target).bindings[name].launches
        assert any(lau.file == FILE for lau in launches) == expected, target
        ctx = BindContext(graph, 7, target)
        space = variant_space(_grad_kernel(graph), ctx)
        assert (space[0]["algo"] == NAME) == expected
        if expected:  # the implicit GEMM stays in the space
            assert any(v["algo"] == "direct" for v in space)


def test_its_default_matches_numpy(backend):
    """Its default on the device (the variant naming only the algorithm: the binder's block,
    as a node without a tuned variant binds it) through the gate, where it is offered."""
    shape, layer, _ = DEFAULTS[0]
    graph = _graph(shape, layer)
    node = _grad_kernel(graph)
    if not grad_taps_variants(node, BindContext(graph, 7, backend.target)):
        pytest.skip("tap vectors not offered on this device (vectors wider than 16 channels)")
    gate = Gate(backend, graph, node, 7)
    for variant in ({"algo": NAME}, {"algo": NAME, "MR": 4, "VW": 16, "NV": 2}):
        verdict = gate.check(variant)
        assert verdict.admitted, f"{variant}: {verdict.reason}"


def test_not_for_groups():
    graph = _graph((9, 9, 16), {"conv2d": [16, 3], "groups": 2, "padding": "same"})
    node = _grad_kernel(graph)
    assert not applies(node, BindContext(graph, 2, Target("cpu", 2)))
    assert not grad_taps_variants(node, BindContext(graph, 2, Target("cpu", 2)))


def test_listed_on_a_cpu_where_vectors_lie_in_a_pixel():
    ctx = {}
    for c in (12, 16):
        graph = _graph((9, 9, c), {"conv2d": [16, 3], "padding": "same"})
        ctx[c] = (_grad_kernel(graph), graph)
    node, graph = ctx[12]
    assert not grad_taps_variants(node, BindContext(graph, 2, Target("cpu", 2, native_vector=8)))
    node, graph = ctx[16]
    assert not grad_taps_variants(node, BindContext(graph, 128, Target("gpu", 8)))
    target = Target("cpu", 2, native_vector=8)
    space = variant_space(node, BindContext(graph, 128, target))
    taps = [v for v in space if v["algo"] == NAME]
    assert space[0]["algo"] != NAME
    # 3 taps x 16 channels = 6 vectors of 8: 4 filters x 3 vectors is the most accumulators
    # (12) whose block, vectors and broadcast fit AVX2's 16 registers; every block fits them
    assert (taps[0]["MR"], taps[0]["TVB"]) == (4, 3)
    assert all(v["MR"] * v["TVB"] + v["TVB"] + 1 <= 16 and 6 % v["TVB"] == 0
               and 16 % v["MR"] == 0 for v in taps)
    assert len({(v["MR"], v["TVB"]) for v in taps}) == len(taps) == 2
    # Winograd's variants (3-4x the default on the seed model's kernel gradients) come first: a
    # search that PATIENCE ends two variants after the default tries them before these
    algos = [v["algo"] for v in space]
    assert "winograd" in algos and algos.index("winograd") < algos.index(NAME)
