"""ShuffleNetV2's concatenate -> channel_shuffle -> channel_slice as concat_shuffle gathers
(passes/fuse_shuffle.py, cnnc/ir/concat_shuffle.py): the op's values worked by hand, which
graphs fuse and which must not, and that the fused graph computes what the unfused one does on
the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
from test_fold_batchnorm import random_state

import cnnc
from cnnc.backends.numpy.channel_shuffle_impls import concat_shuffle
from cnnc.errors import ShapeError
from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.ir.args import ArgError
from cnnc.ir.ops import OPS
from cnnc.passes.pipeline import inference_graph, inference_pipeline, run_pipeline
from cnnc.testing.nets import run


def test_the_gather_interleaves_its_inputs_and_keeps_the_range():
    a = np.array([[0.0, 1.0, 2.0, 3.0]])
    b = np.array([[10.0, 11.0, 12.0, 13.0]])
    # concatenate: 0 1 2 3 10 11 12 13; shuffle (2 groups): 0 10 1 11 2 12 3 13
    assert concat_shuffle((a, b), 2, 0, 8).tolist() == [[0, 10, 1, 11, 2, 12, 3, 13]]
    assert concat_shuffle((a, b), 2, 2, 6).tolist() == [[1, 11, 2, 12]]
    c = np.array([[20.0, 21.0]])
    three = concat_shuffle((a[:, :2], b[:, :2], c), 3, 3, 6)
    assert three.tolist() == [[1, 11, 21]]


def test_the_op_checks_its_range_and_inputs():
    op = OPS["concat_shuffle"]
    with pytest.raises(ArgError, match="multiples of groups=2"):
        op.check_attrs({"groups": 2, "start": 1, "stop": 4})
    with pytest.raises(ArgError, match="groups <= 4"):
        op.check_attrs({"groups": 5, "start": 0, "stop": 5})
    attrs = op.check_attrs({"groups": 2, "start": 0, "stop": 8})
    assert op.infer(attrs, ((3, 5, 5, 4), (3, 5, 5, 4))) == (3, 5, 5, 8)
    with pytest.raises(ShapeError, match="one shape"):
        op.infer(attrs, ((3, 5, 5, 4), (3, 5, 5, 2)))
    with pytest.raises(ShapeError, match="run past"):
        op.infer(op.check_attrs({"groups": 2, "start": 0, "stop": 10}),
                 ((3, 5, 5, 4), (3, 5, 5, 4)))


def _unit(*tail: L, left: int = 4, right: int = 4, outputs=None):
    """A stride-1 ShuffleNetV2 unit's end: two branches concatenated and shuffled."""
    return lower("net", [L("input", [(5, 5, 3)], name="in"),
                         L("conv2d", [left, 1], {"activation": "relu"}, name="a"),
                         L("conv2d", [right, 3], {"padding": "same"}, name="b",
                           inputs=["in"]),
                         L("concatenate", name="cat", inputs=["a", "b"]),
                         *tail], outputs=outputs)


def _same_outputs(graph, seed: int = 0):
    fused = inference_graph(graph, check=True)
    rng = np.random.default_rng(seed)
    feeds = {n: rng.normal(size=(3, *graph.node(n).shape[1:])) for n in graph.inputs}
    state = random_state(graph, seed + 1)
    before, after = run(graph, feeds, state), run(fused, feeds, state)
    for name in graph.outputs:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    return fused


def _ops(graph):
    return {n.name: n.op for n in graph.nodes if n.op not in ("input", "conv2d")}


def test_a_split_after_the_shuffle_reads_the_branches_straight():
    g = _unit(L("channel_shuffle", [2], name="sh"),
              L("channel_slice", [0, 4], name="keep", inputs=["sh"]),
              L("channel_slice", [4, 8], name="half", inputs=["sh"]),
              L("conv2d", [6, 1], name="c", inputs=["half"]),
              L("concatenate", name="out", inputs=["keep", "c"]))
    fused = _same_outputs(g)
    assert _ops(fused) == {"keep": "concat_shuffle", "half": "concat_shuffle",
                           "out": "concatenate"}
    assert fused.node("half").inputs == ("a", "b")
    assert (fused.node("half").attrs["start"], fused.node("half").attrs["stop"]) == (4, 8)


def test_a_shuffle_read_whole_is_one_gather():
    g = _unit(L("channel_shuffle", [2], name="sh"), L("conv2d", [6, 1], name="out"))
    fused = _same_outputs(g)
    assert _ops(fused) == {"sh": "concat_shuffle"}
    assert fused.node("sh").attrs["stop"] == 8


@pytest.mark.parametrize("case", ["unequal", "cut_group", "two_readers", "output", "groups"])
def test_what_must_stay_as_it_is(case):
    if case == "unequal":  # shuffle group 1 would straddle both inputs
        g = _unit(L("channel_shuffle", [2], name="sh"), L("conv2d", [6, 1], name="out"),
                  left=2, right=6)
        expect = {"cat": "concatenate", "sh": "channel_shuffle"}
    elif case == "cut_group":  # the slice starts inside a group: fused gather, slice kept
        g = _unit(L("channel_shuffle", [2], name="sh"),
                  L("channel_slice", [1, 5], name="out", inputs=["sh"]))
        expect = {"sh": "concat_shuffle", "out": "channel_slice"}
    elif case == "two_readers":  # the concatenation is needed anyway
        g = _unit(L("channel_shuffle", [2], name="sh"),
                  L("add", name="out", inputs=["sh", "cat"]))
        expect = {"cat": "concatenate", "sh": "channel_shuffle", "out": "add"}
    elif case == "output":
        g = _unit(L("channel_shuffle", [2], name="sh"), outputs=["cat", "sh"])
        expect = {"cat": "concatenate", "sh": "channel_shuffle"}
    else:  # four shuffle groups over two inputs
        g = _unit(L("channel_shuffle", [4], name="sh"), L("conv2d", [6, 1], name="out"))
        expect = {"cat": "concatenate", "sh": "channel_shuffle"}
    assert _ops(_same_outputs(g)) == expect


def test_shufflenet_mini_keeps_no_copy_of_a_concatenation_or_shuffle():
    graph = cnnc.load_spec("shufflenet_mini")
    spec_ops = [n.op for n in graph.nodes]
    assert spec_ops.count("channel_shuffle") == 3 and spec_ops.count("channel_slice") == 4
    fused = inference_graph(graph, check=True)
    ops = [n.op for n in fused.nodes]
    assert not {"concatenate", "channel_shuffle", "channel_slice"} & set(ops)
    assert ops.count("concat_shuffle") == 5  # two splits of two units and the last shuffle
    rng = np.random.default_rng(0)
    feeds = {n: rng.random((2, *graph.node(n).shape[1:])) for n in graph.inputs}
    state = random_state(graph, 1)
    # the same passes but for fuse_shuffle
    unfused = run_pipeline(graph, [p for p in inference_pipeline() if p.name != "fuse_shuffle"])
    out = graph.outputs[0]
    np.testing.assert_array_equal(run(fused, feeds, state)[out], run(unfused, feeds, state)[out])
