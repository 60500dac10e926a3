"""A max pooling and the channel concatenation it alone reads as one maxpool2d_concat node
(passes/fuse_pool_concat.py, cnnc/ir/pool_concat.py): which graphs fuse and which must not,
that the fused graph computes what the unfused one does on the NumPy reference (2 to 4 parts,
odd maps, overlapping 'same' windows, the Inception example), and that training graphs keep
the concatenation."""

from __future__ import annotations

import pytest
from fusion_checks import ops as _ops
from fusion_checks import same_outputs

import cnnc
from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.ir.args import ArgError
from cnnc.ir.ops import OPS
from cnnc.ir.train_config import TrainConfig, parse_optimizer
from cnnc.passes.pipeline import training_graph


def _net(*tail: L, channels=(3, 5), shape=(6, 8, 2), pool=(2, 2, "valid"), op="maxpool2d",
         outputs=None):
    """in -> p<i>: a 3x3 'same' conv per part -> cat: their concatenation -> m: `pool`
    pooling [-> tail]."""
    size, strides, padding = pool
    layers = [L("input", [shape], name="in")]
    layers += [L("conv2d", [c, 3], {"padding": "same"}, name=f"p{i}", inputs=["in"])
               for i, c in enumerate(channels)]
    layers += [L("concatenate", [], name="cat", inputs=[f"p{i}" for i in range(len(channels))]),
               L(op, [size], {"strides": strides, "padding": padding}, name="m"), *tail]
    return lower("net", layers, outputs=outputs)


def _parts(channels):
    return {f"p{i}": "conv2d" for i in range(len(channels))}


@pytest.mark.parametrize("channels", [(3, 5), (4, 1, 6), (2, 3, 4, 5)])
@pytest.mark.parametrize("shape, pool", [((6, 8, 2), (2, 2, "valid")),
                                         ((7, 5, 3), (3, 1, "same")),
                                         ((9, 8, 1), (3, 2, "valid"))])
def test_parts_fuse_and_compute_the_same(channels, shape, pool):
    fused = same_outputs(_net(channels=channels, shape=shape, pool=pool), "fuse_pool_concat")
    assert _ops(fused) == {**_parts(channels), "m": "maxpool2d_concat"}
    node = fused.node("m")
    assert node.inputs == tuple(f"p{i}" for i in range(len(channels)))
    assert node.shape[-1] == sum(channels)


@pytest.mark.parametrize("case", ["cat_second_reader", "cat_output", "five_parts", "avgpool",
                                  "rows"])
def test_what_must_stay_as_it_is(case):
    channels = (3, 5)
    if case == "cat_second_reader":  # the concatenated map is needed anyway
        g = _net(L("flatten", name="f", inputs=["cat"]), outputs=["m", "f"])
        keep = {"cat": "concatenate", "m": "maxpool2d", "f": "flatten"}
    elif case == "cat_output":
        g = _net(outputs=["cat", "m"])
        keep = {"cat": "concatenate", "m": "maxpool2d"}
    elif case == "five_parts":  # more parts than the kernel takes arguments for
        channels = (1, 2, 3, 4, 5)
        g = _net(channels=channels)
        keep = {"cat": "concatenate", "m": "maxpool2d"}
    elif case == "avgpool":  # only the max pooling reads parts
        g = _net(op="avgpool2d")
        keep = {"cat": "concatenate", "m": "avgpool2d"}
    else:  # a concatenation along the rows: a window would straddle the parts
        g = lower("net", [L("input", [(6, 6, 2)], name="in"),
                          L("concatenate", [], {"axis": 1}, name="cat", inputs=["in", "in"]),
                          L("maxpool2d", [2], name="m")])
        channels = ()
        keep = {"cat": "concatenate", "m": "maxpool2d"}
    fused = same_outputs(g, "fuse_pool_concat")
    assert _ops(fused) == {**_parts(channels), **keep}


def test_training_graphs_keep_the_concatenation():
    g = _net(L("flatten", name="f"), L("dense", [3], {"activation": "softmax"}, name="d"))
    config = TrainConfig(loss="sparse_categorical_crossentropy",
                         optimizer=parse_optimizer("sgd"))
    ops = {n.op for n in training_graph(g, config, seed=0).nodes}
    assert "maxpool2d_concat" not in ops and {"concatenate", "maxpool2d"} <= ops


def test_the_inception_example_fuses_and_computes_the_same():
    fused = same_outputs(cnnc.load_spec("inception_mini"), "fuse_pool_concat", batch=2)
    ops = list(_ops(fused).values())
    assert ops.count("maxpool2d_concat") == 1 and "concatenate" not in ops


def test_the_op_refuses_what_it_cannot_compute():
    pool = OPS["maxpool2d"].check_attrs({"pool_size": 2})
    cat = OPS["concatenate"].check_attrs({})
    ok = {"pool": pool, "concat": cat}
    attrs = OPS["maxpool2d_concat"].check_attrs(ok)
    assert OPS["maxpool2d_concat"].infer(attrs, ((None, 6, 8, 2), (None, 6, 8, 5))) == (
        None, 3, 4, 7)
    with pytest.raises(ArgError, match="channels"):
        OPS["maxpool2d_concat"].check_attrs({**ok, "concat": OPS["concatenate"].check_attrs(
            {"axis": 2})})
    with pytest.raises(ArgError, match="checked attributes"):
        OPS["maxpool2d_concat"].check_attrs({**ok, "pool": {"pool_size": 2}})
