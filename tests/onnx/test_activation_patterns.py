"""The element-wise subgraphs exporters write for one activation (cnnc/frontend/onnx_patterns.py),
in each operand order and association, built by hand: each imports as one activation layer and
matches onnxruntime; a subgraph whose inner value has another reader is not rewritten."""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import helper
from onnx_helpers import check_against_ort, make_model, save

import cnnc
from cnnc.errors import SpecError

K = math.sqrt(2 / math.pi)


def mk(op, ins, out, **attrs):
    return helper.make_node(op, ins, [out], **attrs)


def scalars(**values):
    return {k: np.array(v, dtype=np.float32) for k, v in values.items()}


def _tail(p, order):
    """p * x * 0.5 in the three associations exporters write."""
    if order == "x_first":
        return [mk("Mul", ["x", p], "q"), mk("Mul", ["q", "half"], "y")]
    if order == "half_first":
        return [mk("Mul", ["half", p], "q"), mk("Mul", ["q", "x"], "y")]
    return [mk("Mul", ["x", "half"], "xh"), mk("Mul", ["xh", p], "y")]


PATTERNS = {
    "silu_x_s": ([mk("Sigmoid", ["x"], "s"), mk("Mul", ["x", "s"], "y")], {}, "silu"),
    "silu_s_x": ([mk("Sigmoid", ["x"], "s"), mk("Mul", ["s", "x"], "y")], {}, "silu"),
    "hard_swish": ([mk("HardSigmoid", ["x"], "h", alpha=1 / 6), mk("Mul", ["h", "x"], "y")],
                   {}, "hard_swish"),
    "mish": ([mk("Softplus", ["x"], "sp"), mk("Tanh", ["sp"], "t"), mk("Mul", ["t", "x"], "y")],
             {}, "mish"),
    **{f"gelu_div_{order}": (
        [mk("Div", ["x", "sqrt2"], "d"), mk("Erf", ["d"], "e"), mk("Add", ["one", "e"], "p"),
         *_tail("p", order)], scalars(sqrt2=math.sqrt(2), one=1.0, half=0.5), "gelu")
       for order in ("x_first", "half_first", "x_half")},
    "gelu_mul": ([mk("Mul", ["r", "x"], "d"), mk("Erf", ["d"], "e"), mk("Add", ["e", "one"], "p"),
                  *_tail("p", "x_first")], scalars(r=math.sqrt(0.5), one=1.0, half=0.5), "gelu"),
    "gelu_tanh_pow": (
        [mk("Pow", ["x", "three"], "x3"), mk("Mul", ["x3", "c"], "cx3"),
         mk("Add", ["x", "cx3"], "a"), mk("Mul", ["a", "k"], "u"), mk("Tanh", ["u"], "t"),
         mk("Add", ["t", "one"], "p"), *_tail("p", "half_first")],
        scalars(three=3.0, c=0.044715, k=K, one=1.0, half=0.5), "gelu_tanh"),
    "gelu_tanh_muls": (
        [mk("Mul", ["x", "x"], "x2"), mk("Mul", ["x2", "x"], "x3"), mk("Mul", ["c", "x3"], "cx3"),
         mk("Add", ["cx3", "x"], "a"), mk("Mul", ["k", "a"], "u"), mk("Tanh", ["u"], "t"),
         mk("Add", ["one", "t"], "p"), *_tail("p", "x_half")],
        scalars(c=0.044715, k=K, one=1.0, half=0.5), "gelu_tanh"),
    "softplus_threshold": (
        [mk("Softplus", ["x"], "sp"), mk("Greater", ["x", "twenty"], "g"),
         mk("Where", ["g", "x", "sp"], "y")], scalars(twenty=20.0), "softplus"),
}


@pytest.mark.parametrize("case", sorted(PATTERNS))
def test_pattern_imports_as_one_activation(case, tmp_path):
    nodes, inits, act = PATTERNS[case]
    path = save(make_model(nodes, {"x": ["N", 7]}, ["y"], inits), tmp_path / f"{case}.onnx")
    x = np.linspace(-25, 25, 21, dtype=np.float32).reshape(3, 7)
    graph = check_against_ort(path, x)
    assert [(n.op, n.attrs.get("activation")) for n in graph.nodes] == [
        ("input", None), ("activation", act)]


def _rewritten_ops(path):
    from cnnc.frontend.onnx_file import read_model
    from cnnc.frontend.onnx_graph import read_graph
    from cnnc.frontend.onnx_patterns import rewrite_activation_patterns

    graph = read_graph(read_model(str(path)), str(path))
    return [n.op for n in rewrite_activation_patterns(graph).nodes]


def test_an_inner_value_read_twice_is_not_rewritten(tmp_path):
    nodes = [mk("Sigmoid", ["x"], "s"), mk("Mul", ["x", "s"], "y"), mk("Relu", ["s"], "z")]
    path = save(make_model(nodes, {"x": ["N", 4]}, ["y", "z"]), tmp_path / "two.onnx")
    assert _rewritten_ops(path) == ["Sigmoid", "Mul", "Relu"]  # left to the general rules


def test_gelu_with_another_constant_is_not_gelu(tmp_path):
    nodes = [mk("Div", ["x", "two"], "d"), mk("Erf", ["d"], "e"), mk("Add", ["e", "one"], "p"),
             *_tail("p", "x_first")]
    path = save(make_model(nodes, {"x": ["N", 4]}, ["y"], scalars(two=2.0, one=1.0, half=0.5)),
                tmp_path / "notgelu.onnx")
    assert _rewritten_ops(path) == ["Div", "Erf", "Add", "Mul", "Mul"]
    with pytest.raises(SpecError, match=r"\(Erf\): this operator is not supported"):
        cnnc.load_spec(path)


def test_the_rewritten_node_takes_the_last_nodes_name(tmp_path):
    nodes = [mk("Sigmoid", ["x"], "s", name="/act/Sigmoid"),
             mk("Mul", ["x", "s"], "y", name="/act/Mul")]
    path = save(make_model(nodes, {"x": ["N", 4]}, ["y"]), tmp_path / "named.onnx")
    assert _rewritten_ops(path) == ["Swish"]
    assert [n.name for n in cnnc.load_spec(path).nodes] == ["x", "act"]


def test_gelu_with_an_unknown_approximation_is_refused_by_name(tmp_path):
    path = save(make_model([mk("Gelu", ["x"], "y", approximate="fast")], {"x": ["N", 4]}, ["y"],
                           opset=20), tmp_path / "g.onnx")
    with pytest.raises(SpecError, match="approximate='fast': cnnc computes Gelu with "
                                        "approximate='none' .gelu.; approximate='tanh'"):
        cnnc.load_spec(path)
