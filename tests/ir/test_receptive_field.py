"""Receptive fields (cnnc/ir/receptive_field.py) against hand computation, per op and per spec."""

from __future__ import annotations

from pathlib import Path

import pytest

import cnnc
from cnnc.cli import main
from cnnc.ir.ops import LAYER_KINDS, OPS, op_names
from cnnc.ir.receptive_field import (
    FUSED_RULES,
    KIND_RULES,
    PER_OP_KINDS,
    RULES,
    AxisField,
    describe,
    receptive_fields,
    rule_of,
)
from cnnc.passes.pipeline import inference_graph
from cnnc.testing.nets import chain

SPECS = Path(__file__).resolve().parents[2] / "specs"


def fields_of(graph, node: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """((size, jump, start) on height, the same on width) of a node's only field."""
    (f,) = receptive_fields(graph)[node]
    return (f.h.size, f.h.jump, f.h.start), (f.w.size, f.w.jump, f.w.start)


def square(size: int, jump: int, start: int):
    return (size, jump, start), (size, jump, start)


def test_every_layer_op_has_a_rule_and_every_rule_an_op():
    assert [op for op in op_names("layer") if rule_of(op) is None] == []
    assert sorted(set(RULES) - set(op_names("layer"))) == []
    # an op of a kind whose windows differ from op to op must have its own rule
    assert [op for op in op_names("layer") if OPS[op].kind in PER_OP_KINDS
            and op not in RULES] == []
    assert [op for op in RULES if OPS[op].kind not in PER_OP_KINDS] == []
    assert all(OPS[op].group == "fused" for op in FUSED_RULES)


def test_every_kind_has_a_rule_or_rules_per_op():
    assert set(KIND_RULES).isdisjoint(PER_OP_KINDS)
    assert set(KIND_RULES) | PER_OP_KINDS == set(LAYER_KINDS)


def test_the_seed_model_by_hand():
    """Worked by hand, layer by layer, on the 28x28 input (size, jump, start):

    conv 7x7 same: pad 3, size 1 + 6 = 7, jump 1, start -3
    maxpool 2:     size 7 + 1*1 = 8, jump 2, start -3
    conv 3x3 same: pad 1 on 14x14, size 8 + 2*2 = 12, start -3 - 1*2 = -5; again: 16, -7
    maxpool 2:     size 16 + 1*2 = 18, jump 4, start -7
    conv 3x3 same: pad 1 on 7x7, size 18 + 2*4 = 26, start -11; again: 34, -15
    maxpool 2:     7x7 to 3x3 (floor), size 34 + 1*4 = 38, jump 8, start -15
    flatten:       the whole 3x3 map: size 38 + 2*8 = 54 (pixels -15..38), jump 24
    dense layers:  what they read: 54
    """
    g = cnnc.load_spec(SPECS / "fashion.yaml")
    want = {
        "input_layer": (1, 1, 0), "conv2d": (7, 1, -3), "max_pooling2d": (8, 2, -3),
        "conv2d_1": (12, 2, -5), "conv2d_2": (16, 2, -7), "max_pooling2d_1": (18, 4, -7),
        "conv2d_3": (26, 4, -11), "conv2d_4": (34, 4, -15), "max_pooling2d_2": (38, 8, -15),
        "flatten": (54, 24, -15), "dense": (54, 24, -15), "dropout": (54, 24, -15),
        "dense_1": (54, 24, -15), "dense_2": (54, 24, -15),
    }
    got = {name: fields_of(g, name) for name in want}
    assert got == {name: square(*v) for name, v in want.items()}


def test_the_seed_model_in_the_summary(capsys):
    assert main(["summary", "--rf", str(SPECS / "fashion.yaml")]) == 0
    out = capsys.readouterr().out
    head = next(line for line in out.splitlines() if line.startswith("Layer (type)"))
    assert head.split()[-4:] == ["RF", "size", "Jump", "Start"]
    rows = {line.split()[0]: line.split() for line in out.splitlines() if "(None" in line}
    assert rows["conv2d"][-3:] == ["7x7", "1", "-3"]
    assert rows["max_pooling2d_2"][-3:] == ["38x38", "8", "-15"]
    assert rows["dense_2"][-3:] == ["54x54", "-", "-15"]  # no neighbours after flatten


def test_summary_without_rf_has_no_field_columns(capsys):
    assert main(["summary", str(SPECS / "fashion.yaml")]) == 0
    assert "RF size" not in capsys.readouterr().out


def test_strided_same_padding_is_uneven_as_in_keras():
    # 8 rows, 3x3 stride 2 'same': 4 outputs need 3 + 3*2 = 9 rows, one pad row, all after.
    g = chain((8, 7, 1), ("conv2d", 2, 3, {"strides": 2, "padding": "same"}))
    # 7 columns: 4 outputs need 9, two pad columns, one before.
    assert fields_of(g, "conv2d") == ((3, 2, 0), (3, 2, -1))


def test_dilation_and_rectangular_kernels():
    g = chain((16, 16, 1), ("conv2d", 2, (3, 1), {"dilation_rate": 2}),
              ("conv2d", 2, 3, {"padding": "same", "dilation_rate": (1, 3)}))
    assert fields_of(g, "conv2d") == ((5, 1, 0), (1, 1, 0))
    # second layer: 3 taps along height (pad 1), 3 taps spaced 3 along width (pad 3)
    assert fields_of(g, "conv2d_1") == ((7, 1, -1), (7, 1, -3))


def test_pooling_with_its_own_strides():
    g = chain((9, 9, 1), ("avgpool2d", 3, {"strides": 2}), ("maxpool2d", 2, {"strides": 1}))
    assert fields_of(g, "average_pooling2d") == square(3, 2, 0)
    assert fields_of(g, "max_pooling2d") == square(5, 2, 0)


def test_global_pooling_sees_the_whole_map():
    g = chain((6, 4, 1), ("conv2d", 2, 3), ("global_avgpool2d", {"keepdims": True}),
              ("conv2d", 2, 1))
    # conv2d leaves 4x2 positions of size 3, jump 1: together 3 + 3 = 6 rows, 3 + 1 = 4 columns
    assert fields_of(g, "global_average_pooling2d") == ((6, 4, 0), (4, 2, 0))
    assert fields_of(g, "conv2d_1") == ((6, 4, 0), (4, 2, 0))


def test_elementwise_layers_keep_the_field():
    g = chain((8, 8, 1), ("conv2d", 2, 3), ("batchnorm",), ("activation", "relu"),
              ("dropout", 0.5), ("dense", 4))
    for name in ("batch_normalization", "activation", "dropout", "dense"):
        assert fields_of(g, name) == square(3, 1, 0)


def test_paths_that_meet_take_the_largest_field_per_axis():
    text = """
    network branches
    input 12x12x1
    wide: conv2d 2 (5, 1) same
    tall: conv2d(input_layer) 2 (1, 3) same
    add(wide, tall)
    """
    g = cnnc.load_spec(text)
    assert fields_of(g, "wide") == ((5, 1, -2), (1, 1, 0))
    assert fields_of(g, "tall") == ((1, 1, 0), (3, 1, -1))
    assert fields_of(g, "add") == ((5, 1, -2), (3, 1, -1))


def test_offset_paths_meet_in_their_union():
    # 'same' pads an even kernel after, not before: two 2x2 layers cover pixels 0..2, one 3x3
    # covers -1..1; a unit after both sees -1..2, wider than either path's field
    text = """
    network offset
    input 10x10x1
    a: conv2d 2 3 same
    conv2d(input_layer) 2 2 same
    b: conv2d 2 2 same
    concatenate(a, b)
    """
    g = cnnc.load_spec(text)
    assert fields_of(g, "a") == square(3, 1, -1)
    assert fields_of(g, "b") == square(3, 1, 0)
    assert fields_of(g, "concatenate") == square(4, 1, -1)


def test_the_bundled_dags(capsys):
    g = cnnc.load_spec(SPECS / "resnet_mini.cnn")
    # main path: 3x3, 3x3, 3x3 (7), 3x3 stride 2 (9, pad 0 before on 28), 3x3 (+2*2 = 13)
    assert fields_of(g, "b2_bn") == square(13, 2, -5)
    assert fields_of(g, "shortcut") == square(7, 2, -3)
    assert fields_of(g, "add_1") == square(13, 2, -5)
    g = cnnc.load_spec(SPECS / "inception_mini.cnn")
    assert fields_of(g, "b1") == square(4, 2, -1)
    assert fields_of(g, "b2") == square(8, 2, -3)
    assert fields_of(g, "concatenate") == square(8, 2, -3)


def test_the_inference_graph_has_the_spec_graphs_fields():
    g = cnnc.load_spec(SPECS / "fashion.yaml")
    spec, fused = receptive_fields(g), receptive_fields(inference_graph(g))
    assert all(fused[name] == spec[name] for name in fused)


def test_a_network_on_vectors_has_no_fields():
    g = chain((8,), ("dense", 4), ("dense", 2))
    assert all(f == () for f in receptive_fields(g).values())
    assert describe(()) == ("-", "-", "-")


def test_several_image_inputs_each_get_their_field():
    text = """
    network two
    left: input 8x8x1
    right: input 8x8x1
    a: conv2d(left) 2 3 same
    b: conv2d(right) 2 5 same
    add(a, b)
    """
    g = cnnc.load_spec(text)
    fields = receptive_fields(g)["add"]
    assert {f.input: f.h for f in fields} == {"left": AxisField(3, 1, -1),
                                              "right": AxisField(5, 1, -2)}
    assert describe(fields) == ("left: 3x3; right: 5x5", "left: 1; right: 1",
                                "left: -1; right: -2")


@pytest.mark.parametrize("spec", sorted(p.name for p in SPECS.glob("*.yaml")))
def test_every_bundled_spec_has_fields_that_only_grow(spec):
    g = cnnc.load_spec(SPECS / spec)
    fields = receptive_fields(g)
    for node in g.nodes:
        for value in node.inputs:
            for before, after in zip(fields[value], fields[node.name]):
                assert after.h.size >= before.h.size and after.w.size >= before.w.size
                assert after.h.start <= before.h.start


def test_depthwise_convolutions_and_relu_layers():
    """mobilenet_mini: a 3x3 stride-2 'same' stem on 28 pads nothing before (13*2 + 3 - 28 = 1
    row, after), then 3x3 depthwise layers add 2 jumps each; the strided one on 14 again pads
    only after."""
    g = cnnc.load_spec(SPECS / "mobilenet_mini.cnn")
    assert fields_of(g, "conv2d") == square(3, 2, 0)
    assert fields_of(g, "re_lu") == square(3, 2, 0)
    assert fields_of(g, "depthwise_conv2d") == square(7, 2, -2)
    assert fields_of(g, "depthwise_conv2d_1") == square(11, 2, -4)
    assert fields_of(g, "depthwise_conv2d_2") == square(15, 4, -4)
    assert fields_of(g, "leaky_re_lu") == square(15, 4, -4)
    # global pooling over the 7x7 map: 15 + 6 * 4 = 39 pixels from -4
    assert fields_of(g, "global_average_pooling2d") == square(39, 28, -4)


def test_zero_padding_shifts_the_fields():
    # 2 rows and 1 column of zeros before: a following valid 3x3 conv's first output starts
    # there, at row -2 and column -1 of the input
    g = chain((8, 8, 1), ("zero_padding2d", {"padding": ((2, 0), (1, 3))}), ("conv2d", 2, 3))
    assert fields_of(g, "zero_padding2d") == ((1, 1, -2), (1, 1, -1))
    assert fields_of(g, "conv2d") == ((3, 1, -2), (3, 1, -1))
