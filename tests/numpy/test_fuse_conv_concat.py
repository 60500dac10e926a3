"""A convolution and the channel concatenation (of maps, some upsampled) it alone reads as one
conv2d_concat node (passes/fuse_conv_concat.py, cnnc/ir/conv_concat.py): which graphs fuse and
which must not, that the fused graph computes what the unfused one does on the NumPy reference
(odd maps, either part upsampled, a folded batch norm, the U-Net example), and that training
graphs keep the concatenation."""

from __future__ import annotations

import pytest
from fusion_checks import ops as _ops
from fusion_checks import same_outputs

import cnnc
from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.ir.args import ArgError
from cnnc.ir.ops import OPS
from cnnc.ir.train_config import TrainConfig, parse_optimizer
from cnnc.passes.pipeline import training_graph


def _net(*tail: L, shape=(6, 8, 2), up: tuple[int, int] | None = (2, 2), first: str = "up",
         bn: bool = False, interpolation: str = "nearest", outputs=None):
    """in -> a: 1x1 conv (strided by `up`) [-> u: its upsampling] and b: 1x1 conv; cat:
    concatenate (the upsampled part `first` or second) -> c: 3x3 conv [-> bn] -> relu
    [-> tail]."""
    up = up or (1, 1)
    layers = [L("input", [shape], name="in"),
              L("conv2d", [3, 1], {"strides": up}, name="a", inputs=["in"])]
    part = "a"
    if up != (1, 1):
        layers.append(L("upsampling2d", [up], {"interpolation": interpolation}, name="u"))
        part = "u"
    layers.append(L("conv2d", [5, 1], name="b", inputs=["in"]))
    parts = [part, "b"] if first == "up" else ["b", part]
    layers += [L("concatenate", [], name="cat", inputs=parts),
               L("conv2d", [4, 3], {"padding": "same"}, name="c"),
               *([L("batchnorm", name="bn")] if bn else []),
               L("activation", ["relu"], name="r"), *tail]
    return lower("net", layers, outputs=outputs)


def _same_outputs(graph, seed: int = 0, batch: int = 3):
    return same_outputs(graph, "fuse_conv_concat", seed, batch)



@pytest.mark.parametrize("shape, up, first", [
    ((6, 8, 2), (2, 2), "up"), ((6, 8, 2), (2, 2), "skip"), ((7, 5, 3), None, "up"),
    ((9, 8, 1), (3, 2), "skip"), ((5, 6, 2), (1, 2), "up")])
@pytest.mark.parametrize("bn", [False, True])
def test_maps_and_parts_fuse_and_compute_the_same(shape, up, first, bn):
    fused = _same_outputs(_net(shape=shape, up=up, first=first, bn=bn))
    assert _ops(fused) == {"a": "conv2d", "b": "conv2d", "r": "conv2d_concat"}
    node = fused.node("r")
    ups = ((1, 1), up or (1, 1))
    assert node.inputs == (("a", "b") if first == "up" else ("b", "a"))
    assert node.attrs["ups"] == (ups[::-1] if first == "up" else ups)
    assert node.attrs["conv_op"] == ("conv2d_bn" if bn else "conv2d")
    assert node.params == (("c/kernel", "c/bias", "bn/gamma", "bn/beta", "bn/moving_mean",
                            "bn/moving_variance") if bn else ("c/kernel", "c/bias"))


@pytest.mark.parametrize("case", ["cat_second_reader", "cat_output", "upsampling_second_reader",
                                  "upsampling_output", "bilinear", "depthwise"])
def test_what_must_stay_as_it_is(case):
    if case == "cat_second_reader":  # the concatenated map is needed anyway
        g = _net(L("flatten", name="f", inputs=["cat"]), outputs=["r", "f"])
        keep = {"u": "upsampling2d", "cat": "concatenate", "r": "conv2d", "f": "flatten"}
    elif case == "cat_output":
        g = _net(outputs=["cat", "r"])
        keep = {"u": "upsampling2d", "cat": "concatenate", "r": "conv2d"}
    elif case == "upsampling_second_reader":  # the concatenation fuses, reading u as it is
        g = _net(L("flatten", name="f", inputs=["u"]), outputs=["r", "f"])
        keep = {"u": "upsampling2d", "r": "conv2d_concat", "f": "flatten"}
    elif case == "upsampling_output":
        g = _net(outputs=["u", "r"])
        keep = {"u": "upsampling2d", "r": "conv2d_concat"}
    elif case == "bilinear":  # not a read at (h / s, w / s)
        g = _net(interpolation="bilinear")
        keep = {"u": "upsampling2d", "r": "conv2d_concat"}
    else:  # not a conv2d: no concatenation read in place
        g = lower("net", [L("input", [(6, 6, 2)], name="in"),
                          L("concatenate", [], name="cat", inputs=["in", "in"]),
                          L("depthwise_conv2d", [3], name="c")])
        keep = {"cat": "concatenate", "c": "depthwise_conv2d"}
    fused = _same_outputs(g)
    assert _ops(fused) == ({**({"a": "conv2d", "b": "conv2d"} if "a" in g.node_map else {}),
                            **keep})
    if keep.get("r") == "conv2d_concat":
        assert fused.node("r").attrs["ups"] == ((1, 1), (1, 1))


def test_training_graphs_keep_the_concatenation():
    g = _net(L("flatten", name="f"), L("dense", [3], {"activation": "softmax"}, name="d"))
    config = TrainConfig(loss="sparse_categorical_crossentropy",
                         optimizer=parse_optimizer("sgd"))
    ops = {n.op for n in training_graph(g, config, seed=0).nodes}
    assert "conv2d_concat" not in ops and {"concatenate", "upsampling2d"} <= ops


def test_the_unet_example_fuses_and_computes_the_same():
    fused = _same_outputs(cnnc.load_spec("unet_mini"), batch=2)
    ops = list(_ops(fused).values())
    assert ops.count("conv2d_concat") == 2
    assert "concatenate" not in ops and "upsampling2d" not in ops


def test_the_op_refuses_what_it_cannot_compute():
    conv = OPS["conv2d"].check_attrs({"filters": 4, "kernel_size": 3})
    cat = OPS["concatenate"].check_attrs({})
    ok = {"conv_op": "conv2d", "conv": conv, "concat": cat, "ups": ((2, 2), (1, 1))}
    attrs = OPS["conv2d_concat"].check_attrs(ok)
    assert OPS["conv2d_concat"].infer(attrs, ((None, 3, 4, 2), (None, 6, 8, 5))) == (
        None, 4, 6, 4)
    with pytest.raises(ArgError, match="channels"):
        OPS["conv2d_concat"].check_attrs({**ok, "concat": OPS["concatenate"].check_attrs(
            {"axis": 2})})
    for ups in [((0, 1), (1, 1)), ((1, 1),), ((1.5, 1), (1, 1))]:
        with pytest.raises(ArgError, match="factors"):
            OPS["conv2d_concat"].check_attrs({**ok, "ups": ups})
    with pytest.raises(ArgError):
        OPS["conv2d_concat"].check_attrs({**ok, "conv_op": "conv2d_add"})
