"""conv2d_concat on the device (bind_conv_concat.py): winograd.cl's input transforms and
conv2d.cl's implicit GEMM reading a channel concatenation's parts where they lie, a part
enlarged by nearest upsampling read at (h / s, w / s), against the NumPy reference
(cnnc/crosscheck.py's tolerance): odd and even maps, either part or both upsampled, factors
that differ by axis, splits that are and are not a multiple of the input transform's vector
width (winograd_input then copies into a workspace, winograd_fused narrows its vectors), batch
1 and 7, the device's tiling and a GPU's (whose local-memory tiles copy the parts first); every
variant of the tuner's space (the others copy the parts first, as the unfused graph does); the
U-Net example spec."""

from __future__ import annotations

import pytest
from test_conv_maxpool import M7, WINOGRAD, _target

import cnnc
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.tiling import vector_width
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.space import error_factor, tuning_graph, variant_space

COPIES = ("elementwise.cl:concat_rows", "resample.cl:upsampling2d")
IN_PLACE = {"m4": "winograd.cl:winograd_input", "m2": "winograd.cl:winograd_input",
            "m4-fused": "winograd.cl:winograd_fused", "m2-fused": "winograd.cl:winograd_fused",
            "direct": "conv2d.cl:conv2d_forward"}
VARIANTS = {**WINOGRAD, "direct": {"algo": "direct"}}

# (the concatenated map's H, W; part 0's channels and factors; part 1's; filters)
MAPS = [
    ((7, 7), (8, (1, 1)), (8, (1, 1)), 8),  # odd, no upsampling: the concatenation alone
    ((8, 10), (16, (2, 2)), (8, (1, 1)), 8),  # the U-Net's: an upsampled part first
    ((6, 6), (4, (1, 1)), (12, (2, 2)), 16),  # 4 of 16 channels first: not a multiple of 8
    ((9, 8), (8, (1, 2)), (8, (3, 2)), 4),  # both upsampled, by factors differing by axis
    ((10, 6), (6, (2, 1)), (2, (2, 2)), 12),  # 6 + 2 channels
]


def net_spec(hw, part0, part1, filters, activation="relu"):
    """in -> a 1x1 convolution (strided by the part's factors) for each part -> its
    upsampling back -> their concatenation -> a 3x3 'same' convolution `c`."""
    layers, names = [], []
    for i, (channels, (sh, sw)) in enumerate((part0, part1)):
        layers.append({"conv2d": [channels, 1], "strides": [sh, sw], "name": f"p{i}",
                       "inputs": ["in"]})
        if (sh, sw) != (1, 1):
            layers.append({"upsampling2d": None, "size": [sh, sw], "name": f"u{i}"})
        names.append(layers[-1]["name"])
    layers += [{"concatenate": None, "inputs": names, "name": "cat"},
               {"conv2d": [filters, 3], "padding": "same", "activation": activation,
                "name": "c"}]
    return {"network": "cat", "input": {"name": "in", "shape": [*hw, 3]}, "layers": layers}


def _graph(spec):
    graph = inference_graph(cnnc.load_spec(spec))
    assert graph.node("c").op == "conv2d_concat"
    return graph


def _check(graph, batch, device, target=None, variants=None, factor=1.0):
    """Each node's kernels against NumPy; `factor`: the tolerance's, for an algorithm that
    states a larger error (the tuner's gate: crosscheck.py's tolerance times the factor)."""
    report = cross_check(graph, batch, device=device.index, seed=3, target=target,
                         variants=variants)
    return report.passed_kernels(factor)


def _copies(kernels):
    return [k for k in COPIES if k in kernels]


@pytest.mark.parametrize("batch, tiling", [(1, "native"), (7, "native"), (7, "gpu-tiling")])
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("index", range(len(MAPS)))
def test_the_kernels_read_the_parts_in_place(index, variant, batch, tiling, device):
    graph = _graph(net_spec(*MAPS[index]))
    assert graph.node("c").attrs["ups"] == (MAPS[index][1][1], MAPS[index][2][1])
    target = _target(tiling, device)
    kernels = _check(graph, batch, device, target, {"c": VARIANTS[variant]})
    assert IN_PLACE[variant] in kernels["c"]
    if variant.endswith("fused") or (variant == "direct" and tiling == "native"
                                     and device.kind == "cpu"):
        assert not _copies(kernels["c"]), kernels["c"]


@pytest.mark.parametrize("batch, tiling", [
    pytest.param(1, "native", marks=pytest.mark.slow(reason="batch 7 covers the same code")),
    (7, "native"),
    pytest.param(7, "gpu-tiling", marks=pytest.mark.slow(reason="F(4x4)'s GPU tiling is the same")),
])
@pytest.mark.parametrize("variant", list(M7))
@pytest.mark.parametrize("index", range(len(MAPS)))
def test_f7_reads_the_parts_in_place(index, variant, batch, tiling, device):
    """F(7x7)'s input transforms read the parts as F(4x4)'s do (their tiles are wider only)."""
    from cnnc.backends.opencl.runtime import OpenCLBackend

    if variant == "m7-fused" and tiling != "native":
        pytest.skip("the one-launch kernel has no GPU tiling of its own")
    graph = _graph(net_spec(*MAPS[index]))
    target = _target(tiling, device)
    kernels = _check(graph, batch, device, target, {"c": M7[variant]}, error_factor(
        graph.node("c"), M7[variant]))
    assert IN_PLACE["m4-fused" if variant.endswith("fused") else "m4"] in kernels["c"]
    straddles = _straddles(MAPS[index], target or OpenCLBackend(device).target)
    if variant.endswith("fused") or tiling == "native" and not straddles:
        assert not _copies(kernels["c"]), kernels["c"]


def _straddles(maps, target) -> bool:
    """Whether the three-launch Winograd's input vectors (and V's packing, which follows them)
    would straddle the split."""
    channels = maps[1][0] + maps[2][0]
    return maps[1][0] % vector_width(channels, target) != 0


def test_a_split_across_a_vector_copies_the_parts_first(device):
    """4 of 16 channels in the first part: on a CPU the three-launch Winograd's input vectors
    (8 wide) straddle it, so the parts are copied first; the one-launch kernel narrows its
    vectors instead."""
    from cnnc.backends.opencl.runtime import OpenCLBackend

    graph = _graph(net_spec(*MAPS[2]))
    straddles = _straddles(MAPS[2], OpenCLBackend(device).target)
    kernels = _check(graph, 3, device, variants={"c": WINOGRAD["m4"]})
    assert bool(_copies(kernels["c"])) is straddles, kernels["c"]
    kernels = _check(graph, 3, device, variants={"c": WINOGRAD["m4-fused"]})
    assert not _copies(kernels["c"]), kernels["c"]


@pytest.mark.parametrize("index", [1, 2])
def test_every_variant_of_the_tuners_space(index, device):
    """The fused node's space is its convolution's (tuning_graph); the implicit GEMM and
    Winograd read in place (but where the split straddles the input transform's vectors), any
    other variant copies the parts into workspaces first."""
    from cnnc.backends.opencl.runtime import OpenCLBackend

    graph = _graph(net_spec(*MAPS[index], activation="elu"))
    tuned = tuning_graph(graph)
    assert tuned.node("c").op == "conv2d" and tuned.node("c").inputs == ("c/cat",)
    target = OpenCLBackend(device).target
    space = variant_space(tuned.node("c"), BindContext(tuned, 3, target))
    assert len(space) > 4 and any(v.get("algo") == "winograd" for v in space)
    for variant in space:
        kernels = _check(graph, 3, device, variants={"c": variant},
                         factor=error_factor(tuned.node("c"), variant))
        algo = variant.get("algo")
        reads = (algo == "direct" and target.kind == "cpu") or (algo == "winograd" and (
            bool(variant.get("wino_fused")) or not _straddles(MAPS[index], target)))
        assert (not _copies(kernels["c"])) is reads, (variant, kernels["c"])


def test_the_unet_example_spec(device):
    """Both decoder convolutions of unet_mini read their skips in place (one through its
    upsampling), by the one-launch Winograd kernel and by the three launches."""
    graph = inference_graph(cnnc.load_spec("unet_mini"))
    fused = [n.name for n in graph.nodes if n.op == "conv2d_concat"]
    assert len(fused) == 2
    for variant in ("m2-fused", "m4", "direct"):
        kernels = _check(graph, 2, device, variants={n: VARIANTS[variant] for n in fused})
        for n in fused:
            assert IN_PLACE[variant] in kernels[n] and not _copies(kernels[n]), kernels[n]
