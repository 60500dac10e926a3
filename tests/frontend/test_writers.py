"""Writers: a graph written as DSL or YAML parses back to an equal graph, for any network."""

from __future__ import annotations

import pytest
from frontend_helpers import error_of
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cnnc.errors import CnncError
from cnnc.frontend.dsl import load_dsl
from cnnc.frontend.network import Network
from cnnc.frontend.writers import to_dsl, to_yaml
from cnnc.frontend.yaml_spec import load_yaml
from cnnc.ir.train_config import TrainConfig


def round_trips(graph) -> None:
    dsl, yaml_text = to_dsl(graph), to_yaml(graph)
    assert load_dsl(dsl) == graph, dsl
    assert load_yaml(yaml_text) == graph, yaml_text


def test_dsl_text_of_a_small_dag():
    graph = load_dsl("""
        network "my net"
        x: input 8x8x3
        conv2d 4 3 relu same strides=2
        b: conv2d(x) 4 (1, 3) strides=(2, 2) padding=same use_bias=false
        add(conv2d, b)
        dense 5
        output add, dense
        train { epochs 2  schedule exponential factor=0.5  augment flip=true }
    """)
    assert to_dsl(graph) == (
        'network "my net"\n'
        "x: input 8x8x3\n"
        "conv2d 4 3 strides=2 same relu\n"
        "b: conv2d(x) 4 1x3 strides=2 same use_bias=false\n"
        "add(conv2d, b)\n"
        "dense 5\n"
        "output add, dense\n"
        "train {\n"
        "  dataset fashion_mnist\n"
        "  epochs 2\n"
        "  batch_size 32\n"
        "  optimizer nadam\n"
        "  loss sparse_categorical_crossentropy\n"
        "  schedule exponential factor=0.5\n"
        "  augment flip=true\n"
        "}\n"
    )
    round_trips(graph)


def test_yaml_text_of_a_small_dag():
    graph = load_dsl("x: input 8\na: dense 4 relu\nb: dense(x) 4\nconcatenate(a, b)\nflatten")
    assert to_yaml(graph) == (
        "network: network\n"
        "layers:\n"
        "  - {input: 8, name: x}\n"
        "  - {dense: 4, activation: relu, name: a}\n"
        "  - {dense: 4, inputs: [x], name: b}\n"
        "  - concatenate: {inputs: [a, b]}\n"
        "  - flatten\n"
    )
    round_trips(graph)


def test_names_that_auto_naming_would_not_give_are_written():
    graph = load_dsl("input 8\ndense_1: dense 4\ndense 4\ndense 4\ndense: dense 2")
    assert [n.name for n in graph.nodes] == ["input_layer", "dense_1", "dense_2", "dense_3",
                                             "dense"]
    text = to_dsl(graph)
    assert "input 8\ndense 4\ndense 4\ndense 4\ndense: dense 2\n" in text
    round_trips(graph)


def test_yaml_quotes_what_would_read_as_another_type():
    graph = load_dsl('network "yes"\ninput 4\nnull_: dense 2\ndense(null_) 3\noutput null_')
    assert "network: 'yes'" in to_yaml(graph)
    round_trips(graph)


def test_training_graph_ops_cannot_be_written():
    from dataclasses import replace

    graph = load_dsl("input 4\ndense 2")
    node = replace(graph.nodes[1], op="bias_grad")
    err = error_of(to_dsl, graph.with_nodes([graph.nodes[0], node]))
    assert "only layer graphs can be written" in err.message


def test_reserved_words_cannot_name_layers():
    err = error_of(load_yaml, "input: [4]\nlayers: [{dense: 2, name: train}]")
    assert err.message == "'train' is a reserved word and cannot name a layer"


# ---------------------------------------------------------------- any network

NAMES = st.one_of(st.none(), st.none(), st.sampled_from(
    ["a", "b", "x.y", "p-q", "conv2d", "conv2d_1", "dense", "max_pooling2d_1", "null", "true"]))
ACTIVATIONS = st.sampled_from(["linear", "relu", "leaky_relu", "elu", "sigmoid", "tanh",
                               "softmax"])
PADDING = st.sampled_from(["valid", "same"])
SIZE = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))


@st.composite
def image_layer(draw, net, x):
    kind = draw(st.sampled_from(["conv", "pool", "bn", "act", "drop", "add", "concat"]))
    name = draw(NAMES)
    if kind == "conv":
        strides = draw(st.sampled_from([1, 2, (1, 2)]))
        dilation = 1 if strides != 1 else draw(st.sampled_from([1, 2]))
        return net.conv2d(x, draw(st.integers(1, 6)), draw(SIZE), strides=strides,
                          padding=draw(PADDING), dilation_rate=dilation,
                          activation=draw(ACTIVATIONS), use_bias=draw(st.booleans()), name=name)
    if kind == "pool":
        op = draw(st.sampled_from(["maxpool2d", "avgpool2d"]))
        strides = draw(st.one_of(st.none(), SIZE))
        return net.layer(op, x, draw(SIZE), strides=strides, padding=draw(PADDING), name=name)
    if kind == "bn":
        return net.batchnorm(x, momentum=draw(st.sampled_from([0.99, 0.9, 0.5])),
                             epsilon=draw(st.sampled_from([1e-3, 1e-5, 0.25])),
                             center=draw(st.booleans()), scale=draw(st.booleans()), name=name)
    if kind == "act":
        return net.activation(x, draw(ACTIVATIONS), name=name)
    if kind == "drop":
        return net.dropout(x, draw(st.sampled_from([0.0, 0.1, 0.5])), name=name)
    other = net.activation(x, draw(ACTIVATIONS))
    if kind == "add":
        return net.add(x, other, name=name)
    return net.concatenate(x, other, axis=draw(st.sampled_from([-1, 3, 1])), name=name)


@st.composite
def networks(draw):
    net = Network(draw(st.sampled_from(["n", "my-net", "two words"])))
    x = net.input((draw(st.integers(6, 12)), draw(st.integers(6, 12)), draw(st.integers(1, 3))),
                  name=draw(NAMES))
    layers = [x]
    for _ in range(draw(st.integers(1, 6))):
        source = layers[-1] if draw(st.booleans()) else draw(st.sampled_from(layers))
        layers.append(draw(image_layer(net, source)))
    head = draw(st.sampled_from(["flatten", "global_avgpool2d", None]))
    if head:
        layers.append(net.layer(head, name=draw(NAMES)))
        layers.append(net.dense(draw(st.integers(1, 5)), activation=draw(ACTIVATIONS),
                                use_bias=draw(st.booleans()), name=draw(NAMES)))
    if draw(st.booleans()):
        net.output(*draw(st.lists(st.sampled_from(layers), min_size=1, max_size=2, unique=True)))
    if draw(st.booleans()):
        net.train(draw(st.sampled_from([
            {},
            {"epochs": 3, "optimizer": {"name": "sgd", "momentum": 0.9, "nesterov": True}},
            {"optimizer": "adam", "schedule": "cosine", "validation_split": 0.2, "seed": 4},
            {"schedule": {"name": "step", "every": 3}, "augment": {"shift": 1},
             "shuffle": False, "loss": "mse", "validation_size": 100},
        ])))
    return net


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_any_network_round_trips(net):
    try:
        graph = net.build()
    except CnncError:
        assume(False)  # a drawn network whose shapes do not fit, or with a duplicate name
    round_trips(graph)
    assert to_dsl(load_dsl(to_dsl(graph))) == to_dsl(graph)


def test_train_section_only_lists_what_differs_besides_the_main_settings():
    from cnnc.frontend.writers import train_settings

    assert train_settings(TrainConfig()) == {
        "dataset": "fashion_mnist", "epochs": 10, "batch_size": 32, "optimizer": "nadam",
        "loss": "sparse_categorical_crossentropy"}


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_unwritable_numbers_are_refused(value):
    from cnnc.frontend.writers import _dsl_value

    assert "cannot write" in error_of(_dsl_value, value).message
