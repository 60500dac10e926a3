"""The Python builder: reads like Keras, lowers like the DSL, errors point at the caller's line."""

from __future__ import annotations

import numpy as np
import pytest
from frontend_helpers import error_of

import cnnc
from cnnc.errors import CnncError
from cnnc.frontend.dsl import load_dsl
from cnnc.frontend.network import Layer, Network, UnknownLayerError


def test_network_is_exported_from_cnnc():
    assert cnnc.Network is Network


def test_the_seed_style_chain():
    net = cnnc.Network("tiny", input=(28, 28, 1))
    net.conv2d(8, 3, activation="relu", padding="same")
    net.maxpool2d(2)
    net.flatten()
    net.dense(10, activation="softmax")
    assert net.build() == load_dsl(
        "network tiny\ninput 28x28x1\nconv2d 8 3 relu same\nmaxpool2d 2\nflatten\n"
        "dense 10 softmax")


def test_handles_make_a_dag_and_names_are_kept():
    net = Network("dag", input=8)
    a = net.dense(4, name="a")
    b = net.dense(a, 4)
    s = net.add(a, b, name="s")
    net.dense(s, 2, name="c")
    net.layer("dense", 3, inputs=[s], name="d")
    net.output("c", "d")
    graph = net.build()
    assert isinstance(a, Layer) and a.name == "a" and b.name is None and s.op == "add"
    assert graph.node("dense").inputs == ("a",)
    assert graph.node("s").inputs == ("a", "dense")
    assert graph.outputs == ("c", "d")


def test_outputs_may_be_unnamed_handles():
    net = Network("o", input=8)
    first = net.dense(4)
    second = net.dense(first, 2)
    net.dense(first, 3)
    net.output(first, second)
    assert net.build().outputs == ("dense", "dense_1")


def test_numpy_numbers_lists_and_dims_strings_are_plain_values():
    net = Network("np", input="8x8x3")
    net.conv2d(np.int64(4), [3, 3], strides=np.int32(1))
    net.dropout(np.float32(0.5))
    graph = net.build()
    conv = graph.node("conv2d")
    assert conv.attrs["filters"] == 4 and type(conv.attrs["filters"]) is int
    assert graph.node("input_layer").shape == (None, 8, 8, 3)
    assert graph.node("dropout").attrs["rate"] == 0.5


def test_train_settings():
    net = Network("t", input=4, train={"epochs": 2})
    net.dense(2)
    assert net.build().train.epochs == 2
    net.train(epochs=3, optimizer={"name": "sgd", "momentum": 0.5})
    train = net.build().train
    assert train.epochs == 3 and train.optimizer.args["momentum"] == 0.5


def test_unknown_layer_method_is_a_cnnc_error_and_an_attribute_error():
    net = Network("u", input=4)
    with pytest.raises(UnknownLayerError) as info:
        net.conv2e(3, 3)
    assert isinstance(info.value, CnncError) and isinstance(info.value, AttributeError)
    assert info.value.hint == "did you mean 'conv2d'?"
    assert not hasattr(net, "nonsense_layer")
    assert "conv2d" in dir(net) and "Conv2D" in dir(net)


def test_errors_point_at_the_line_that_declared_the_layer():
    net = Network("e", input=(8, 8, 3))
    net.conv2d(0, 3)  # the line the error names
    err = error_of(net.build)
    assert err.span.file == __file__
    assert err.message == "conv2d: Expected a strictly positive integer. Received filters=0."
    assert err.render().splitlines()[1].strip() == "net.conv2d(0, 3)  # the line the error names"


def test_train_errors_point_at_the_train_call():
    net = Network("e", input=4)
    net.dense(2)
    net.train(epochs=0)
    err = error_of(net.build)
    assert err.span.file == __file__ and err.path == "train.epochs"
    assert "net.train(epochs=0)" in err.render()


def test_handles_of_another_network_are_refused():
    other = Network("x", input=4).dense(2)
    net = Network("y", input=4)
    assert "another network" in error_of(net.add, other, other).message
    assert "not both" in error_of(net.dense, other, 2, inputs=["x"]).message
    assert "inputs= takes layers" in error_of(net.dense, 2, inputs=3).message


def test_empty_network():
    assert error_of(Network("e").build).message.startswith("the network is empty")
