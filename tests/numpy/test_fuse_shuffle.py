"""ShuffleNetV2's concatenate -> channel_shuffle -> channel_slice as concat_shuffle gathers
(passes/fuse_shuffle.py, cnnc/ir/concat_shuffle.py), and the 1x1 convolutions that read those
gathers in place (cnnc/ir/gathered.py): the ops' values worked by hand, which graphs fuse and
which must not, and that the fused graph computes what the unfused one does on the NumPy
reference."""

from __future__ import annotations

import numpy as np
import pytest
from test_fold_batchnorm import random_state

import cnnc
from cnnc.backends.numpy.channel_shuffle_impls import concat_shuffle
from cnnc.backends.numpy.gathered_impls import gather
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
        # float64; a folded batch norm or a gathered sum rounds apart from the layers'
        np.testing.assert_allclose(after[name], before[name], rtol=1e-12, atol=1e-12,
                                   err_msg=name)
    return fused


def _ops(graph):
    return {n.name: n.op for n in graph.nodes if n.op not in ("input", "conv2d")}


def test_a_split_after_the_shuffle_reads_the_branches_straight():
    g = _unit(L("channel_shuffle", [2], name="sh"),
              L("channel_slice", [0, 4], name="keep", inputs=["sh"]),
              L("channel_slice", [4, 8], name="half", inputs=["sh"]),
              L("conv2d", [6, 3], {"padding": "same"}, name="c", inputs=["half"]),
              L("concatenate", name="out", inputs=["keep", "c"]))
    fused = _same_outputs(g)
    assert _ops(fused) == {"keep": "concat_shuffle", "half": "concat_shuffle",
                           "out": "concatenate"}
    assert fused.node("half").inputs == ("a", "b")
    assert (fused.node("half").attrs["start"], fused.node("half").attrs["stop"]) == (4, 8)


def test_a_shuffle_read_whole_is_one_gather():
    g = _unit(L("channel_shuffle", [2], name="sh"), L("maxpool2d", [2], name="out"))
    fused = _same_outputs(g)
    assert _ops(fused) == {"sh": "concat_shuffle", "out": "maxpool2d"}
    assert fused.node("sh").attrs["stop"] == 8


@pytest.mark.parametrize("case", ["unequal", "cut_group", "two_readers", "output", "groups"])
def test_what_must_stay_as_it_is(case):
    if case == "unequal":  # shuffle group 1 would straddle both inputs
        g = _unit(L("channel_shuffle", [2], name="sh"), L("conv2d", [6, 3], name="out"),
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
        g = _unit(L("channel_shuffle", [4], name="sh"), L("conv2d", [6, 3], name="out"))
        expect = {"cat": "concatenate", "sh": "channel_shuffle"}
    assert _ops(_same_outputs(g)) == expect


def test_shufflenet_mini_keeps_no_copy_of_a_concatenation_or_shuffle():
    graph = cnnc.load_spec("shufflenet_mini")
    spec_ops = [n.op for n in graph.nodes]
    assert spec_ops.count("channel_shuffle") == 3 and spec_ops.count("channel_slice") == 4
    fused = inference_graph(graph, check=True)
    ops = [n.op for n in fused.nodes]
    assert not {"concatenate", "channel_shuffle", "channel_slice", "concat_shuffle"} & set(ops)
    # both splits' transformed halves and the head's 1x1 convolution read the branches in place
    # (the head's, with the pooling it goes into: fuse_pointwise_avgpool)
    gathered = {n.name: n.inputs for n in fused.nodes if n.op == "conv2d_bn_gathered"
                or n.op == "pointwise_avgpool" and n.attrs["conv_op"] == "conv2d_bn_gathered"}
    assert {k: set(v) for k, v in gathered.items()} == {
        "activation_1": {"u1_left", "u1_right"},
        "activation_2": {"u1_left", "u1_right", "u2_branch"},
        "global_average_pooling2d": {"u1_left", "u1_right", "u2_branch", "u3_branch"}}
    rng = np.random.default_rng(0)
    state = random_state(graph, 1)
    out = graph.outputs[0]
    for batch in (1, 7):
        feeds = {n: rng.random((batch, *graph.node(n).shape[1:])) for n in graph.inputs}
        # the same passes but for fuse_shuffle
        unfused = run_pipeline(graph, [p for p in inference_pipeline()
                                       if p.name != "fuse_shuffle"])
        np.testing.assert_allclose(run(fused, feeds, state)[out],
                                   run(unfused, feeds, state)[out], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(run(fused, feeds, state)[out], run(graph, feeds, state)[out],
                                   rtol=1e-12, atol=1e-14)


def test_the_gathered_input_places_each_run():
    a = np.arange(4.0).reshape(1, 4)  # 0 1 2 3
    b = 10 + np.arange(3.0).reshape(1, 3)  # 10 11 12
    # a's channels 1..3 at 0, 2, 4; b's 0..1 at 1, 3; b's 2 at 5
    x = gather((a, b), ((0, 1, 3, 0, 2), (1, 0, 2, 1, 2), (1, 2, 1, 5, 1)))
    assert x.tolist() == [[1, 10, 2, 11, 3, 12]]


def test_the_gathered_op_checks_its_runs_and_window():
    op = OPS["conv2d_gathered"]
    base = {"filters": 4, "kernel_size": 1}
    with pytest.raises(ArgError, match="fill channels 0..3 once"):
        op.check_attrs({**base, "segments": ((0, 0, 2, 0, 1), (1, 0, 2, 1, 1))})
    with pytest.raises(ArgError, match="1x1, stride-1"):
        op.check_attrs({**base, "kernel_size": 3, "segments": ((0, 0, 2, 0, 1),)})
    with pytest.raises(ArgError, match="runs"):
        op.check_attrs({**base, "segments": ((0, 0, 0, 0, 1),)})
    attrs = op.check_attrs({**base, "segments": ((0, 2, 2, 0, 2), (1, 0, 2, 1, 2))})
    assert op.infer(attrs, ((3, 5, 5, 4), (3, 5, 5, 2))) == (3, 5, 5, 4)
    assert op.params(attrs, ((3, 5, 5, 4), (3, 5, 5, 2)))[0].shape == (1, 1, 4, 4)
    with pytest.raises(ShapeError, match="channels 0:2 of input 1"):
        op.infer(attrs, ((3, 5, 5, 4), (3, 5, 5, 1)))
    with pytest.raises(ShapeError, match="one size"):
        op.infer(attrs, ((3, 5, 5, 4), (3, 4, 5, 2)))


def _gathered(fused):
    return {n.name: n for n in fused.nodes if n.op.endswith("_gathered")}


def test_a_1x1_convolution_reads_a_chain_of_gathers_in_place():
    """Two units: the second's split reads the first's kept gather, which then has no reader."""
    g = _unit(L("channel_shuffle", [2], name="sh"),
              L("channel_slice", [0, 4], name="keep", inputs=["sh"]),
              L("channel_slice", [4, 8], name="half", inputs=["sh"]),
              L("conv2d", [4, 1], name="c", inputs=["half"]),
              L("concatenate", name="cat2", inputs=["keep", "c"]),
              L("channel_shuffle", [2], name="sh2"),
              L("channel_slice", [4, 8], name="half2", inputs=["sh2"]),
              L("conv2d", [5, 1], {"use_bias": False}, name="c2", inputs=["half2"]),
              L("batchnorm", name="out"))
    fused = _same_outputs(g)
    assert not {"concat_shuffle", "concatenate", "channel_shuffle"} & set(_ops(fused).values())
    c, c2 = _gathered(fused)["c"], _gathered(fused)["out"]
    assert c.op == "conv2d_gathered" and c.inputs == ("a", "b")
    # half = a[2:4], b[2:4] interleaved
    assert c.attrs["segments"] == ((0, 2, 2, 0, 2), (1, 2, 2, 1, 2))
    # half2 = keep[2:4] (a[1], b[1]) and c[2:4] interleaved: a[1] b[1] at 0 2, c[2:4] at 1 3
    assert c2.op == "conv2d_bn_gathered" and set(c2.inputs) == {"a", "b", "c"}
    runs = {c2.inputs[s[0]]: s[1:] for s in c2.attrs["segments"]}
    assert runs == {"a": (1, 1, 0, 1), "b": (1, 1, 2, 1), "c": (2, 2, 1, 2)}


@pytest.mark.parametrize("case", ["other_reader", "output", "strided", "3x3", "grouped"])
def test_where_the_convolution_reads_the_gather_as_it_is(case):
    conv = {"strided": L("conv2d", [6, 1], {"strides": 2}, name="c", inputs=["half"]),
            "3x3": L("conv2d", [6, 3], name="c", inputs=["half"]),
            "grouped": L("conv2d", [6, 1], {"groups": 2}, name="c", inputs=["half"])}
    layers = [L("channel_shuffle", [2], name="sh"),
              L("channel_slice", [4, 8], name="half", inputs=["sh"]),
              conv.get(case, L("conv2d", [6, 1], name="c", inputs=["half"]))]
    outputs = None
    if case == "other_reader":  # the gather is needed anyway: no launch would be saved
        layers.append(L("maxpool2d", [2], name="p", inputs=["half"]))
        outputs = ["c", "p"]
    elif case == "output":
        outputs = ["c", "half"]
    fused = _same_outputs(_unit(*layers, outputs=outputs))
    assert _ops(fused)["half"] == "concat_shuffle" and fused.node("c").inputs == ("half",)
    assert not _gathered(fused)


def test_a_convolution_that_would_read_too_many_tensors_reads_the_gather():
    """Five branches reach the last 1x1 convolution: more than MAX_SOURCES, so it reads its
    gather as it is (which still reads the gathers before it); another reads four in place."""
    from cnnc.ir.gathered import MAX_SOURCES

    layers = [L("input", [(5, 5, 3)], name="in")]
    for name in "abcde":
        layers.append(L("conv2d", [4, 1], name=name, inputs=["in"]))
    layers += [L("concatenate", name="ab", inputs=["a", "b"]),
               L("channel_shuffle", [2], name="s1"),
               L("concatenate", name="cd", inputs=["c", "d"]),
               L("channel_shuffle", [2], name="s2"),
               L("concatenate", name="s12", inputs=["s1", "s2"]),
               L("channel_shuffle", [2], name="s3"),
               L("channel_slice", [0, 8], name="x3", inputs=["s3"]),
               L("channel_slice", [8, 16], name="y3", inputs=["s3"]),
               L("conv2d", [8, 1], name="y", inputs=["y3"]),
               L("conv2d", [8, 1], name="e2", inputs=["e"]),
               L("concatenate", name="j", inputs=["x3", "e2"]),
               L("channel_shuffle", [2], name="s4"),
               L("conv2d", [3, 1], name="out")]
    fused = _same_outputs(lower("net", layers, outputs=["out", "y"]))
    gathered = _gathered(fused)
    assert set(gathered) == {"y"} and set(gathered["y"].inputs) == {"a", "b", "c", "d"}
    assert fused.node("out").op == "conv2d" and len({"a", "b", "c", "d", "e2"}) > MAX_SOURCES
    assert fused.node(fused.node("out").inputs[0]).op == "concat_shuffle"


def test_training_graphs_keep_the_copies():
    """The gathers and the in-place reads are inference passes: a training step differentiates
    the concatenations, shuffles and slices as written."""
    from cnnc.passes.pipeline import training_graph

    ops = {n.op for n in training_graph(cnnc.load_spec("shufflenet_mini")).nodes}
    assert {"concatenate", "channel_shuffle", "channel_slice"} <= ops
    assert not {"concat_shuffle", "conv2d_gathered", "conv2d_bn_gathered"} & ops
