"""pointwise_depthwise.cl (bind_pointwise_depthwise.py): a 1x1 expansion and the depthwise
convolution reading it in one launch, on the device against the NumPy reference
(cnnc/crosscheck.py's tolerance): odd maps (a row block or column block short), channel counts
no vector divides, kernels 1, 3 and 5, strides 1 and 2 ('same' and 'valid'), dilation, batch
norms folded into either part, with and without biases and activations, batch 1 and 7, with the
device's blocks and a GPU's; and efficientnet_mini, whose strided expansion fuses (and its
stride-1 one where forced)."""

from __future__ import annotations

import pytest

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes import fuse_pointwise_depthwise
from cnnc.passes.pipeline import inference_graph

KERNEL = "pointwise_depthwise.cl:pointwise_depthwise"

# (input H, W, C; expansion filters; pointwise extra args; depthwise kernel and extra args;
# batch norms after the pointwise and the depthwise parts)
BLOCKS = [
    ((14, 14, 16), 96, {"activation": "silu"}, 3, {"strides": 2, "activation": "silu"}, True),
    ((7, 7, 24), 144, {"activation": "silu"}, 5, {"activation": "silu"}, True),
    ((5, 9, 3), 7, {}, 3, {"activation": "relu"}, False),
    ((9, 6, 5), 12, {"use_bias": False}, 3, {"strides": 2, "padding": "valid"}, False),
    ((6, 5, 4), 20, {"activation": "hard_swish"}, 3, {"dilation_rate": 2}, True),
    ((11, 13, 2), 32, {}, 5, {"strides": 2, "use_bias": False, "activation": "silu"}, False),
    ((4, 3, 6), 8, {"activation": "relu"}, 1, {}, False),
]


def _part(layer, args, bn, name):
    """The layer, then where `bn` its batch norm and activation (which fold into it)."""
    if not bn:
        return [{**layer, **args, "name": name}]
    act = args.get("activation", "linear")
    rest = {k: v for k, v in args.items() if k != "activation"}
    return [{**layer, **rest}, {"batchnorm": None},
            {"activation": act, "name": name}]


def block_spec(shape, filters, pw, k, dw, bn):
    layers = [*_part({"conv2d": [filters, 1]}, pw, bn, "p"),
              *_part({"depthwise_conv2d": k, "padding": "same"}, dw, bn, "d")]
    return {"network": "block", "input": list(shape), "layers": layers}


def block_graph(index, monkeypatch):
    # every block fused, the stride-1 ones too (the pass fuses only where it pays: `pays`)
    monkeypatch.setattr(fuse_pointwise_depthwise, "pays", lambda attrs: True)
    graph = inference_graph(cnnc.load_spec(block_spec(*BLOCKS[index])))
    out = graph.outputs[0]
    assert graph.node(out).op == "pointwise_depthwise", graph.node(out).op
    return graph, out


def _target(tiling, device):
    if tiling == "native":
        return None
    if device.kind == "gpu":
        pytest.skip("the native tiling of a GPU device is the GPU tiling")
    return Target("gpu", device.compute_units)


def _check(graph, batch, device, target=None):
    return cross_check(graph, batch, device=device.index, seed=5, target=target).passed_kernels()


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_the_fused_pair_matches_numpy(index, batch, tiling, device, monkeypatch):
    graph, out = block_graph(index, monkeypatch)
    kernels = _check(graph, batch, device, _target(tiling, device))
    assert KERNEL in kernels[out]


@pytest.mark.parametrize("spec, fused", [("mobilenetv3_mini", ["activation_1"]),
                                         ("shufflenet_mini", ["batch_normalization_4"])])
def test_the_strided_blocks_of_other_example_specs_match_numpy(spec, fused, device):
    # a strided depthwise between an expansion and a projection, paired with its expansion
    graph = inference_graph(cnnc.load_spec(spec))
    kernels = _check(graph, 3, device)
    assert [n.name for n in graph.nodes if n.op == "pointwise_depthwise"] == fused
    assert all(KERNEL in kernels[name] for name in fused)


@pytest.mark.parametrize("pays", [True, False])
def test_efficientnet_mini_matches_numpy(pays, device, monkeypatch):
    # as the pass fuses it (b2's strided pair), and with its stride-1 pair fused too
    if pays:
        monkeypatch.setattr(fuse_pointwise_depthwise, "pays", lambda attrs: True)
    graph = inference_graph(cnnc.load_spec("efficientnet_mini"))
    kernels = _check(graph, 3, device)
    fused = [n.name for n in graph.nodes if n.op == "pointwise_depthwise"]
    assert fused == (["b2_dw", "b3_dw"] if pays else ["b2_dw"])
    assert all(KERNEL in kernels[name] for name in fused)


def test_the_expansion_sums_a_whole_row_at_once_where_the_registers_hold_it():
    # efficientnet_mini's b2 pair (14x14x16 -> 96, 3x3 stride 2): 14 expanded columns a row
    from cnnc.backends.opencl.bind_pointwise_depthwise import block, expansion_columns

    geo = {"H": 14, "W": 14, "C": 96, "OH": 7, "OW": 7, "KH": 3, "KW": 3, "SH": 2, "SW": 2,
           "DH": 1, "DW": 1, "PT": 0, "PL": 0}
    avx512, avx2 = Target("cpu", 2, native_vector=16), Target("cpu", 2, native_vector=8)
    # AVX-512: 16-float vectors in one of 32 registers each, the row's 14 columns in one block
    assert expansion_columns(16, avx512) == 30
    assert block(geo, avx512) == {"OR": 7, "VW": 16, "CB": 14, "MR": 7}
    # AVX2: 16-float vectors take two of its 16 registers: two blocks of 7
    assert expansion_columns(16, avx2) == 7
    assert block(geo, avx2)["CB"] == 7
    # a GPU keeps a few accumulators a work-item
    assert block(geo, Target("gpu", 8))["CB"] == 7
