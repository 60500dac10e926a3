"""The DSL: what each construct means (arguments, names, references, repeat, train, output)."""

from __future__ import annotations

from cnnc.frontend import ast
from cnnc.frontend.dsl import load_dsl
from cnnc.frontend.dsl_parser import parse_program, parser
from cnnc.ir.train_config import DEFAULT_AUGMENT, TrainConfig


def nodes(text: str):
    return load_dsl(text).nodes


def test_parser_is_built_once():
    assert parser() is parser()


def test_comments_blank_lines_and_semicolons():
    graph = load_dsl("""
        # a comment line
        input 8        # a comment after a layer

        dense 4; dense 2 softmax   # two layers on one line
    """)
    assert [n.op for n in graph.nodes] == ["input", "dense", "dense"]
    assert graph.node("dense_1").attrs["activation"] == "softmax"


def test_positional_shorthand_and_keywords_give_the_same_layer():
    short = nodes("input 28x28x1\nconv2d 64 3 relu same")[1]
    long = nodes("input 28x28x1\n"
                 "conv2d filters=64 kernel_size=3 activation=relu padding=same")[1]
    assert short == long
    assert short.attrs["kernel_size"] == (3, 3) and short.attrs["strides"] == (1, 1)


def test_pairs_as_dims_or_tuples_and_spaced_keywords():
    a, b = nodes("input 28x28x1\nconv2d 8 3x5 strides = 2\nconv2d 8 (3, 5) strides=(1,2)")[1:]
    assert a.attrs["kernel_size"] == (3, 5) and a.attrs["strides"] == (2, 2)
    assert b.attrs["kernel_size"] == (3, 5) and b.attrs["strides"] == (1, 2)


def test_numbers_booleans_and_keras_class_names():
    graph = load_dsl("input 4x4x2\nBatchNormalization momentum=0.9 epsilon=1e-5 center=false\n"
                     "Conv2D 3 1 use_bias=False\nDropout rate=0.25")
    bn, conv, drop = graph.nodes[1:]
    assert bn.op == "batchnorm" and bn.attrs["epsilon"] == 1e-5 and bn.attrs["center"] is False
    assert conv.op == "conv2d" and conv.attrs["use_bias"] is False
    assert drop.attrs["rate"] == 0.25


def test_labels_name_layers_and_others_get_keras_auto_names():
    graph = load_dsl("input 8\nfc1: dense 4\ndense 4\nout: dense 2")
    assert [n.name for n in graph.nodes] == ["input_layer", "fc1", "dense", "out"]


def test_auto_names_skip_names_already_given():
    graph = load_dsl("input 8\ndense 4\ndense: dense 4")
    assert [n.name for n in graph.nodes] == ["input_layer", "dense_1", "dense"]


def test_references_make_a_dag():
    graph = load_dsl("""
        x: input 8
        a: dense 4
        b: dense(x) 4
        add(a, b)
        concatenate(a, b) axis=-1
    """)
    assert graph.node("b").inputs == ("x",)
    assert graph.node("add").inputs == ("a", "b")
    assert graph.node("concatenate").inputs == ("a", "b")
    assert graph.node("concatenate").shape == (None, 8)


def test_a_layer_may_refer_to_a_later_one():
    graph = load_dsl("input 4\nout: dense(mid) 2\nmid: dense(input_layer) 3\noutput out")
    assert [n.name for n in graph.nodes] == ["input_layer", "mid", "out"]
    assert graph.outputs == ("out",)


def test_repeat_unrolls_and_suffixes_labels():
    graph = load_dsl("""
        input 8
        repeat 2 {
            a: dense 8 relu
            b: dense 8
            add(a, b)
        }
    """)
    names = [n.name for n in graph.nodes]
    assert names == ["input_layer", "a_1", "b_1", "add", "a_2", "b_2", "add_1"]
    # Inside a copy, a label means that copy's layer; the block chains onto what came before.
    assert graph.node("add_1").inputs == ("a_2", "b_2")
    assert graph.node("a_2").inputs == ("add",)


def test_repeat_keeps_references_to_layers_outside_the_block():
    graph = load_dsl("""
        x: input 8
        repeat 2 {
            d: dense 8
            s: add(x, d)
        }
    """)
    assert graph.node("s_1").inputs == ("x", "d_1")
    assert graph.node("s_2").inputs == ("x", "d_2")
    assert graph.node("d_2").inputs == ("s_1",)


def test_nested_repeat():
    graph = load_dsl("input 8\nrepeat 2 { repeat 3 { dense 4 } ; dropout 0.1 }")
    assert [n.op for n in graph.nodes[1:]] == (["dense"] * 3 + ["dropout"]) * 2


def test_repeat_on_one_line_as_in_the_seed_note():
    graph = load_dsl("input 28x28x1\nrepeat 2 { conv2d 128 3 relu same }")
    assert [n.name for n in graph.nodes] == ["input_layer", "conv2d", "conv2d_1"]


def test_outputs():
    graph = load_dsl("input 8\na: dense 4\nb: dense(a) 2\nc: dense(a) 3\noutput b, c")
    assert graph.outputs == ("b", "c")
    assert load_dsl("input 8\ndense 4\nlast: dense 2").outputs == ("last",)


def test_network_name_defaults_to_the_file_stem():
    assert load_dsl("network mine\ninput 2\ndense 1").name == "mine"
    assert load_dsl("input 2\ndense 1", file="specs/x-y.cnn").name == "x-y"
    assert load_dsl("input 2\ndense 1").name == "network"
    assert load_dsl('network "two words"\ninput 2\ndense 1').name == "two words"


def test_train_block_maps_onto_train_config():
    graph = load_dsl("""
        input 8
        dense 2 softmax
        train {
            dataset fashion_mnist
            epochs 3  batch_size 16
            optimizer adam learning_rate=0.01 beta_2=0.99
            loss categorical_crossentropy
            schedule step factor=0.5 every=2
            augment shift=1 flip=true
            validation_split 0.25  shuffle false  seed 7
        }
    """)
    t = graph.train
    assert isinstance(t, TrainConfig)
    assert (t.epochs, t.batch_size, t.loss, t.seed, t.shuffle) == (
        3, 16, "categorical_crossentropy", 7, False)
    assert t.optimizer.name == "adam"
    assert t.optimizer.args["learning_rate"] == 0.01 and t.optimizer.args["beta_2"] == 0.99
    assert dict(t.schedule) == {"name": "step", "factor": 0.5, "every": 2}
    assert {k: v for k, v in t.augment.items() if v != DEFAULT_AUGMENT[k]} == {
        "shift": 1, "flip": True}  # the others at their defaults
    assert t.validation_split == 0.25


def test_empty_train_block_gives_the_defaults_and_no_block_gives_none():
    assert load_dsl("input 2\ndense 1\ntrain { }").train == TrainConfig()
    assert load_dsl("input 2\ndense 1").train is None


def test_every_ast_node_has_a_span():
    program = parse_program("input 8\nc: dense(input_layer) 4 relu use_bias=false\n"
                            "repeat 2 { dense 2 }\ntrain { epochs 2 }\noutput c\n",
                            "x.cnn")
    layer = program.statements[1]
    assert isinstance(layer, ast.Layer)
    assert (layer.span.line, layer.span.column) == (2, 1)
    assert (layer.op.span.line, layer.op.span.column) == (2, 4)
    assert layer.label.span.column == 1 and layer.inputs[0].span.column == 10
    kw = layer.args[-1]
    assert kw.key.text == "use_bias" and kw.key.span.column == 30
    assert kw.value.value is False and kw.value.span.column == 39
    for stmt in program.statements:
        assert stmt.span is not None and stmt.span.file == "x.cnn"


def test_strings_and_line_continuation():
    graph = load_dsl('input 8\ndense 4 \\\n    activation="relu"')
    assert graph.node("dense").attrs["activation"] == "relu"
