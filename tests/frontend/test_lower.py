"""Shared lowering: names, references, cycles, shapes and the errors each one gives."""

from __future__ import annotations

from frontend_helpers import error_of

from cnnc.errors import ShapeError, SpecError
from cnnc.frontend.dsl import load_dsl
from cnnc.frontend.lower import LayerDecl, assign_names, keras_auto_name, lower
from cnnc.ir.graph import verify
from cnnc.ir.ops import OPS

SHAPE_SPEC = """\
input 28x28x1
conv2d 64 7 relu same
maxpool2d 2
conv2d 128 3 same
conv2d 128 3 same
maxpool2d 2
conv2d 256 3 same
maxpool2d 2
conv2d 64 7
"""


def test_keras_auto_names():
    assert keras_auto_name(OPS["maxpool2d"]) == "max_pooling2d"
    assert keras_auto_name(OPS["batchnorm"]) == "batch_normalization"
    assert keras_auto_name(OPS["global_avgpool2d"]) == "global_average_pooling2d"
    assert keras_auto_name(OPS["input"]) == "input_layer"
    ops = [OPS["dense"]] * 3
    assert assign_names(ops, [None, "dense", None]) == ["dense_1", "dense", "dense_2"]


def test_lowered_graph_passes_the_verifier():
    verify(load_dsl(SHAPE_SPEC.replace("conv2d 64 7\n", "flatten\ndense 10 softmax\n")))


def test_kernel_that_does_not_fit():
    err = error_of(load_dsl, SHAPE_SPEC, file="s.cnn")
    assert isinstance(err, ShapeError)
    assert err.headline() == ("s.cnn:9:1: conv2d_4: 7x7 kernel does not fit a 3x3x256 input "
                              "with padding 'valid'")
    err = error_of(load_dsl, "input 5x5x1\nconv2d 1 3 dilation_rate=3")
    assert err.message == ("conv2d: 3x3 kernel (dilated to 7x7) does not fit a 5x5x1 input "
                           "with padding 'valid'")


def test_pool_window_that_does_not_fit():
    err = error_of(load_dsl, "input 1x1x3\nmaxpool2d 2")
    assert err.message == ("max_pooling2d: 2x2 pool window does not fit a 1x1x3 input with "
                           "padding 'valid'")


def test_add_of_different_shapes():
    text = """\
        input 28x28x1
        conv2d 64 3 same
        a: maxpool2d 2
        b: maxpool2d 2
        add(a, b)
    """
    err = error_of(load_dsl, text, file="r.cnn")
    assert isinstance(err, ShapeError)
    assert err.headline().startswith(
        "r.cnn:5:9: add: inputs of shapes (None, 14, 14, 64) and (None, 7, 7, 64) do not "
        "broadcast: axis -3 has sizes 14 and 7.")
    err = error_of(load_dsl, "input 28x28x1\na: conv2d 64 3 same\nb: conv2d 64 3 same\n"
                   "add(a, b)\nc: maxpool2d 2\nd: maxpool2d 2\nadd(c, d)")
    assert err.message.startswith("add_1: inputs of shapes (None, 14, 14, 64) and "
                                  "(None, 7, 7, 64) do not broadcast")


def test_concatenate_of_different_sizes():
    err = error_of(load_dsl, "input 8x8x3\na: maxpool2d 2\nconcatenate(a, input_layer)")
    assert "differ outside the concatenation axis" in err.message


def test_unknown_reference_with_suggestion():
    err = error_of(load_dsl, "input 8\nstem: dense 4\nadd(stme, stem)", file="u.cnn")
    assert err.headline() == ("u.cnn:3:5: unknown layer 'stme' in the inputs of 'add'; "
                              "did you mean 'stem'?")


def test_unknown_output():
    err = error_of(load_dsl, "input 8\ndense 4\noutput dens")
    assert (err.line, err.column, err.hint) == (3, 8, "did you mean 'dense'?")


def test_cycle():
    err = error_of(load_dsl, "input 8\na: dense(c) 4\nb: dense(a) 4\nc: dense(b) 4")
    assert err.message == "cycle in the layer graph: a -> b -> c -> a"
    assert err.line == 2
    err = error_of(load_dsl, "input 8\na: dense(a) 4")
    assert err.message == "cycle in the layer graph: a -> a"


def test_duplicate_name():
    err = error_of(load_dsl, "input 8\nx: dense 4\nx: dense 2", file="d.cnn")
    assert err.headline() == "d.cnn:3:1: duplicate layer name 'x' (first defined at d.cnn:2:1)"


def test_empty_networks():
    assert error_of(load_dsl, "", file="e.cnn").headline() == (
        "e.cnn: the network is empty: it needs an input and at least one layer")
    assert error_of(load_dsl, "# only a comment\nnetwork e\n").message.startswith(
        "the network is empty")
    assert error_of(load_dsl, "input 28x28x1").message == (
        "the network is empty: it has an input but no layers")


def test_first_layer_needs_an_input():
    err = error_of(load_dsl, "dense 4")
    assert err.message.startswith("the first layer 'dense' has no input")


def test_input_takes_no_inputs_and_merges_need_two():
    assert "cannot take inputs" in error_of(load_dsl, "a: input 8\ninput(a) 8").message
    err = error_of(load_dsl, "input 8\nadd(input_layer)")
    assert err.message == "add: add takes at least 2 inputs, got 1"


def test_rank_errors_name_the_layer():
    err = error_of(load_dsl, "input 8\nconv2d 3 3")
    assert err.message == ("conv2d: expects a rank-4 input (batch, height, width, channels), "
                           "got shape (None, 8)")


def test_declarations_may_refer_to_each_other_directly():
    a = LayerDecl("input", ((4,),))
    b = LayerDecl("dense", (3,), inputs=[a])
    c = LayerDecl("dense", (2,), inputs=[a])
    graph = lower("g", [a, b, c], outputs=[b, c])
    assert graph.outputs == ("dense", "dense_1")
    other = LayerDecl("dense", (2,), inputs=[LayerDecl("input", ((4,),))])
    err = error_of(lower, "g", [a, other])
    assert isinstance(err, SpecError) and "another network" in err.message


def test_parameters_are_named_after_their_layer():
    graph = load_dsl("input 4x4x3\nc: conv2d 8 3\nbatchnorm\nflatten\nd: dense 2")
    names = [s.name for s in graph.state]
    assert names == ["c/kernel", "c/bias", "batch_normalization/gamma",
                     "batch_normalization/beta", "batch_normalization/moving_mean",
                     "batch_normalization/moving_variance", "d/kernel", "d/bias"]
    assert graph.state_map["c/kernel"].shape == (3, 3, 3, 8)
    assert graph.state_map["d/kernel"].shape == (32, 2)
