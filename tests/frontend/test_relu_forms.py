"""One ReLU: every front end's ways of writing Keras' ReLU give the same `activation` node."""

from __future__ import annotations

import pytest
from frontend_helpers import error_of

import cnnc
from cnnc.frontend.dsl import load_dsl
from cnnc.frontend.writers import to_dsl, to_yaml
from cnnc.frontend.yaml_spec import load_yaml

WANT = {"activation": "relu", "max_value": 6.0, "negative_slope": 0.1, "threshold": 0.5}


def _relu_node(graph):
    (node,) = [n for n in graph.nodes if n.op != "input"]
    return node


@pytest.mark.parametrize("text", [
    "input 4\nr: activation relu max_value=6 negative_slope=0.1 threshold=0.5\n",
    "input 4\nr: ReLU max_value=6 negative_slope=0.1 threshold=0.5\n",
    "input 4\nr: relu threshold=0.5 max_value=6 negative_slope=0.1\n",
])
def test_dsl_forms(text):
    node = _relu_node(load_dsl(text))
    assert node.op == "activation" and dict(node.attrs) == WANT


@pytest.mark.parametrize("layer", [
    "{activation: relu, max_value: 6, negative_slope: 0.1, threshold: 0.5, name: r}",
    "{ReLU: {max_value: 6, negative_slope: 0.1, threshold: 0.5}, name: r}",
])
def test_yaml_forms(layer):
    node = _relu_node(load_yaml(f"input: [4]\nlayers:\n  - {layer}\n"))
    assert node.op == "activation" and dict(node.attrs) == WANT


def test_python_builder_forms():
    for build in (lambda net: net.relu(max_value=6, negative_slope=0.1, threshold=0.5),
                  lambda net: net.activation("relu", max_value=6, negative_slope=0.1,
                                             threshold=0.5)):
        net = cnnc.Network("n", input=(4,))
        build(net)
        node = _relu_node(net.build())
        assert node.op == "activation" and dict(node.attrs) == WANT


def test_leaky_and_thresholded_relu_are_the_relu_with_one_argument():
    leaky = _relu_node(load_dsl("input 4\nLeakyReLU 0.3\n"))
    assert dict(leaky.attrs) == {"activation": "relu", "max_value": None,
                                 "negative_slope": 0.3, "threshold": 0.0}
    plain = _relu_node(load_dsl("input 4\nReLU\n"))
    assert plain == _relu_node(load_dsl("input 4\nre_lu: activation relu\n"))
    shifted = _relu_node(load_dsl("input 4\nThresholdedReLU theta=0.25\n"))
    assert shifted.attrs["threshold"] == 0.25


def test_writers_give_the_relu_back():
    graph = load_dsl("input 4\nReLU max_value=6\nLeakyReLU 0.2\nthresholded_relu\n")
    assert load_dsl(to_dsl(graph)) == graph
    assert load_yaml(to_yaml(graph)) == graph


def test_parameters_of_another_activation_are_refused_with_the_location():
    err = error_of(load_dsl, "input 4\nactivation tanh max_value=1\n")
    assert "max_value applies to the relu activation only" in err.message
    assert err.span is not None and err.span.line == 2
    err = error_of(load_dsl, "input 4\nReLU max_value=1 threshold=2\n")
    assert "max_value must not be below threshold" in err.message and err.span.line == 2
