"""Passes around layer_norm, global_maxpool2d and channel_shuffle: batch-norm folding and
residual fusion leave a layer norm alone (it normalises per row, not per channel with
constants), the training graph keeps it as it is (no training-mode variant), and the
channel shuffle's gradient is the inverse shuffle."""

from __future__ import annotations

from cnnc.ir.ops import OPS
from cnnc.ir.train_config import TrainConfig
from cnnc.passes.pipeline import inference_graph, training_graph
from cnnc.testing.nets import chain


def _ops(graph):
    return [n.op for n in graph.nodes]


def test_inference_passes_do_not_fold_a_layer_norm_into_the_layer_before():
    g = chain((5, 5, 3), ("conv2d", 4, 3), ("layer_norm",), ("dense", 4), ("layer_norm",),
              ("activation", "relu"))
    ops = _ops(inference_graph(g))
    assert ops.count("layer_norm") == 2
    assert "conv2d_bn" not in ops and "dense_bn" not in ops
    assert ops.count("conv2d") == 1 and ops.count("dense") == 1


def test_training_keeps_the_layer_norm_and_differentiates_it():
    g = chain((4, 4, 6), ("conv2d", 6, 1), ("layer_norm",), ("channel_shuffle", 2),
              ("global_maxpool2d",))
    tg = training_graph(g, TrainConfig(loss="mean_squared_error"), optimizer=False)
    ops = _ops(tg)
    assert ops.count("layer_norm") == 1
    # gamma's and beta's gradients: rows of one pass's sums (share_ln_sums.py)
    assert {"layer_norm_grad_input", "layer_norm_grad_sums", "global_maxpool2d_grad"} <= set(ops)
    # the forward shuffle (2 groups of 3) and its gradient, the inverse (3 groups of 2)
    groups = sorted(n.attrs["groups"] for n in tg.nodes if n.op == "channel_shuffle")
    assert groups == [2, 3]


def test_cross_check_terms_grow_with_the_channels():
    attrs = OPS["layer_norm"].check_attrs({})
    assert OPS["layer_norm"].reduction(attrs, ((2, 3, 3, 64),)) == 64
    grad_gamma = OPS["layer_norm_grad_gamma"]
    assert grad_gamma.reduction(grad_gamma.check_attrs({"epsilon": 1e-3}),
                                ((2, 3, 3, 64), (2, 3, 3, 64))) == 18
