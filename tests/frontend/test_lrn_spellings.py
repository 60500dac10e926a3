"""The lrn layer through every front end (DSL, YAML, Python builder, aliases), the writers'
round trip and `cnnc summary`, all from the op table; and TensorFlow's parameters mapped as
docs/dsl.md says (TensorFlow's formula written out in NumPy as the oracle)."""

from __future__ import annotations

import numpy as np

import cnnc
from cnnc.frontend.writers import to_dsl, to_yaml
from cnnc.ir.summary import summary_text
from cnnc.testing.nets import chain, run

DSL = """network alex
input 9x9x3
conv2d 8 3 relu
n: lrn 5 alpha=0.0001
local_response_normalization 3 alpha=2.0 beta=0.5 bias=2.0
"""


def test_dsl_yaml_python_and_aliases_give_one_graph():
    dsl = cnnc.load_spec(DSL)
    yaml = cnnc.load_spec({"network": "alex", "input": [9, 9, 3], "layers": [
        {"conv2d": [8, 3], "activation": "relu"}, {"lrn": 5, "alpha": 0.0001, "name": "n"},
        {"LRN": 3, "alpha": 2.0, "beta": 0.5, "bias": 2.0}]})
    net = cnnc.Network("alex", input=(9, 9, 3))
    net.conv2d(8, 3, activation="relu")
    net.lrn(5, alpha=0.0001, name="n")
    net.local_response_normalization(3, alpha=2.0, beta=0.5, bias=2.0)
    assert dsl == yaml == net.build()
    assert [n.op for n in dsl.nodes][-2:] == ["lrn", "lrn"]
    assert dsl.nodes[-1].name == "lrn"  # no Keras class: auto names say lrn


def test_writers_round_trip_and_summary():
    graph = cnnc.load_spec(DSL)
    assert "lrn 5" in to_dsl(graph)
    assert cnnc.load_spec(to_dsl(graph)) == graph
    assert cnnc.load_spec(to_yaml(graph)) == graph
    text = summary_text(graph)
    assert "n (lrn)" in text and "(None, 7, 7, 8)" in text


def _tensorflow_lrn(x, depth_radius, bias, alpha, beta):
    """tf.nn.local_response_normalization as TensorFlow documents it: sqr_sum[..., d] = sum of
    x[..., d - r : d + r + 1] ** 2; output = x / (bias + alpha * sqr_sum) ** beta."""
    out = np.empty_like(x)
    channels = x.shape[-1]
    for d in range(channels):
        lo, hi = max(0, d - depth_radius), min(channels, d + depth_radius + 1)
        sqr_sum = (x[..., lo:hi] ** 2).sum(axis=-1)
        out[..., d] = x[..., d] / (bias + alpha * sqr_sum) ** beta
    return out


def test_tensorflow_parameters_map_to_size_2r_plus_1_and_alpha_times_size():
    r, bias, alpha, beta = 2, 1.5, 0.3, 0.6
    size = 2 * r + 1
    g = chain((3, 2, 7), ("lrn", size, {"alpha": alpha * size, "bias": bias, "beta": beta}))
    x = np.random.default_rng(0).normal(size=(2, 3, 2, 7))
    y = run(g, {"input_layer": x})["lrn"]
    np.testing.assert_allclose(y, _tensorflow_lrn(x, r, bias, alpha, beta), rtol=1e-13)
