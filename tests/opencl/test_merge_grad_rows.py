"""The row-wise forms of the broadcasting merges' gradients (bind_merges.py: _merge_grad_rows)
on the device against the NumPy reference in float64: a product's gradient with no sum
(excite.cl's channel_gate for a per-channel gate, else merge.cl's merge, the other operand
broadcast), and the gradient of an operand of shape (N, 1, 1, C) or (N, C) summed over the
positions (merge_grad_channels: a squeeze-excite gate's, a bias's, the binary maximum's and
minimum's with ties), on channel counts no vector width divides, 1x1 maps and batch 1, with the
device's tiling and a GPU's; and the strided merge_grad where neither applies."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.backends.numpy.call import Call
from cnnc.backends.numpy.table import IMPLS
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Target
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node, infer_shapes
from cnnc.ir.ops import OPS


def _input(name: str, shape: tuple[int, ...]) -> Node:
    return Node(name, "input", attrs=Attrs(shape=shape, dtype="float32"), shape=(None, *shape))


def _graph(op: str, shapes: tuple[tuple[int, ...], ...], target_shape: tuple[int, ...],
           **attrs) -> Graph:
    names = ("dy", "x", "other") if len(shapes) == 3 else ("dy", "other")[:len(shapes)]
    full = OPS[op].check_attrs({"input_shape": target_shape, **attrs})
    nodes = [_input(n, s) for n, s in zip(names, shapes)]
    node = Node("y", op, tuple(names), full)
    return infer_shapes(Graph(op, (*nodes, node), ("y",), ()))


# (op, operand shapes without the batch (dy, [x,] [other]), the gradient's shape, attrs, the
# kernel that must compute it)
CASES = [
    # a map's gradient through a per-channel gate: excite.cl's channel_gate (bind_merges.py)
    ("multiply_grad", ((5, 6, 7), (1, 1, 7)), (5, 6, 7), {}, "channel_gate"),
    ("multiply_grad", ((7, 7, 144), (1, 1, 144)), (7, 7, 144), {}, "channel_gate"),
    ("multiply_grad", ((5, 6, 7), (7,)), (5, 6, 7), {}, "channel_gate"),
    ("multiply_grad", ((5, 6, 7), (6, 1)), (5, 6, 7), {}, "merge"),
    ("multiply_grad", ((5, 6, 7), (5, 6, 7)), (1, 1, 7), {}, "merge_grad_channels"),
    ("multiply_grad", ((7, 7, 144), (7, 7, 144)), (1, 1, 144), {}, "merge_grad_channels"),
    ("multiply_grad", ((1, 1, 24), (1, 1, 24)), (1, 1, 24), {}, "channel_gate"),
    ("multiply_grad", ((3, 5, 6), (3, 5, 6)), (6,), {}, "merge_grad_channels"),
    ("unbroadcast", ((5, 3, 10),), (1, 1, 10), {"scale": -0.5}, "merge_grad_channels"),
    ("unbroadcast", ((5, 3, 10),), (10,), {"scale": 1 / 3}, "merge_grad_channels"),
    ("maximum_grad", ((4, 5, 6), (1, 1, 6), (4, 5, 6)), (1, 1, 6), {}, "merge_grad_channels"),
    ("minimum_grad", ((4, 5, 9), (1, 1, 9), (4, 5, 9)), (1, 1, 9), {}, "merge_grad_channels"),
    # neither form: a sum over the channels, a gate broadcast along a pixel axis
    ("multiply_grad", ((4, 5, 6), (4, 5, 6)), (4, 5, 1), {}, "merge_grad"),
    ("multiply_grad", ((4, 5, 6), (4, 5, 6)), (1, 5, 6), {}, "merge_grad"),
]


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("op,shapes,target_shape,attrs,kernel", CASES)
def test_merge_gradient_matches_numpy(op, shapes, target_shape, attrs, kernel, batch, tiling,
                                      device):
    if tiling == "gpu-tiling" and device.kind == "gpu":
        pytest.skip("the native tiling of a GPU device is the GPU tiling")
    target = Target("gpu", device.compute_units, force_local_tiles=True) \
        if tiling == "gpu-tiling" else None
    graph = _graph(op, shapes, target_shape, **attrs)
    rng = np.random.default_rng(batch)
    # small integers: maximum's and minimum's ties (half the gradient each way) happen often
    values = {n.name: rng.integers(-2, 3, (batch, *n.shape[1:])).astype(np.float32)
              for n in graph.nodes if n.op == "input"}
    backend = OpenCLBackend(device, target=target)
    exe = backend.compile(graph, batch)
    assert [lau.kernel for lau in exe.plan.bindings["y"].launches] == [kernel]
    got = exe.run(values, ["y"])["y"]
    node = graph.node("y")
    want = IMPLS[op](Call(node=node, dtype=np.dtype(np.float64)),
                     *(values[v].astype(np.float64) for v in node.inputs))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-5)
