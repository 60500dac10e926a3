"""Refusals of merges whose inputs do not broadcast and of reshapes cnnc does not accept, from
each front end (DSL, YAML, Python builder): located at the layer, naming both shapes or what
reshape accepts (flatten, channel_shuffle)."""

from __future__ import annotations

import pytest
from frontend_helpers import error_of

from cnnc.errors import ShapeError, SpecError
from cnnc.frontend.dsl import load_dsl
from cnnc.frontend.network import Network
from cnnc.frontend.yaml_spec import load_yaml

NOT_BROADCAST = ("inputs of shapes (None, 4, 4, 8) and (None, 3) do not broadcast: axis -1 has "
                 "sizes 8 and 3. Merges broadcast like NumPy on the non-batch axes")


@pytest.mark.parametrize("op", ["add", "multiply", "subtract", "maximum", "minimum", "average"])
def test_dsl_merge_of_shapes_that_do_not_broadcast(op):
    text = f"input 4x4x8\nv: global_avgpool2d\nd: dense 3\n{op}(input_layer, d)\n"
    err = error_of(load_dsl, text, file="m.cnn")
    assert isinstance(err, ShapeError)
    assert (err.line, err.column) == (4, 1)
    assert err.message.startswith(f"{op}: {NOT_BROADCAST}"), err.message


def test_yaml_merge_of_shapes_that_do_not_broadcast():
    text = ("input: [4, 4, 8]\nlayers:\n  - {global_avgpool2d: null}\n  - {dense: 3, name: d}\n"
            "  - {multiply: null, inputs: [input_layer, d]}\n")
    err = error_of(load_yaml, text, file="m.yaml")
    assert isinstance(err, ShapeError) and err.file == "m.yaml" and err.line == 5
    assert NOT_BROADCAST in err.message


def test_python_merge_of_shapes_that_do_not_broadcast():
    net = Network("m", input=(4, 4, 8))
    x = net.conv2d(8, 1, name="x")
    net.global_avgpool2d()
    d = net.dense(3)
    net.subtract(x, d)  # the line the error names
    err = error_of(net.build)
    assert err.span.file == __file__ and NOT_BROADCAST in err.message
    assert "net.subtract" in err.render()


def test_subtract_takes_exactly_two_inputs():
    err = error_of(load_dsl, "input 4\na: dense 4\nb: dense 4\nsubtract(input_layer, a, b)")
    assert isinstance(err, SpecError) and "subtract" in err.message


@pytest.mark.parametrize("source,target,needle", [
    ("4x4x8", "(16, 8)", "input (None, 4, 4, 8) to target_shape (16, 8) is not accepted"),
    ("4x4x8", "(4, 4, 2, 4)", "target_shape (4, 4, 2, 4) is not accepted"),
    ("8", "(8, 1)", "target_shape (8, 1) is not accepted"),
    ("8", "(3, -1)", "8 is not a multiple of 3"),
    ("8", "(1, 1, 4)", "(8 values per example) to target_shape (1, 1, 4) (4 values)"),
])
def test_dsl_reshapes_cnnc_does_not_accept(source, target, needle):
    err = error_of(load_dsl, f"input {source}\nreshape {target}\n", file="r.cnn")
    assert isinstance(err, ShapeError) and (err.line, err.column) == (2, 1)
    assert needle in err.message, err.message
    if "not accepted" in needle:
        assert "flatten" in err.message and "channel_shuffle" in err.message


@pytest.mark.parametrize("target,received", [
    ("(-1, -1)", "(-1, -1)"), ("(0, 4)", "(0, 4)"), ("(-2,)", "(-2,)"),
])
def test_dsl_bad_target_shapes_are_argument_errors(target, received):
    err = error_of(load_dsl, f"input 4\nreshape {target}\n", file="r.cnn")
    assert "Expected a shape of positive integers, with at most one -1" in err.message
    assert f"Received target_shape={received}" in err.message


def test_yaml_and_python_reshape_refusals_are_located():
    err = error_of(load_yaml, "input: [4, 4, 8]\nlayers:\n  - {reshape: null, "
                   "target_shape: [128]}\n", file="r.yaml")
    assert err.file == "r.yaml" and err.line == 3 and "is not accepted" in err.message
    net = Network("r", input=(4, 4, 8))
    net.reshape((2, 4, 16))  # the line the error names
    err = error_of(net.build)
    assert err.span.file == __file__ and "use flatten" in err.message.lower()
