"""Finite-difference checks, in float64, of the gradient of every op the training graph uses.

Each case is a tiny network around one op; GradientCheck builds its training graph (with
gradients for the input too) and compares grad/<name> against central differences of the loss
for random entries of the input and every trainable parameter. ReLU/max-pool kinks are avoided:
an entry whose +-h runs change a ReLU sign or a max-pool winner is not compared (and few may be).
The cases of tests/opencl/op_cases.py (every op on odd shapes) are checked the same way, so a
new op's case there is its gradient check too; the cases here add what those do not reach (each
activation on its own, losses on outputs they do not fuse with, kinks). The last test checks
that together they exercise every layer, gradient and loss op.
"""

from __future__ import annotations

import pytest
from op_cases_module import op_cases

from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.frontend.spec import load_spec
from cnnc.ir.args import ACTIVATIONS
from cnnc.ir.graph import Graph
from cnnc.ir.ops import node_op_names
from cnnc.ir.train_config import TrainConfig
from cnnc.passes.pipeline import training_graph
from cnnc.testing.gradcheck import GradientCheck
from cnnc.testing.nets import chain

MSE = "mean_squared_error"
SPARSE = "sparse_categorical_crossentropy"
CATEGORICAL = "categorical_crossentropy"


def _branchy():
    """A value read three times (two convs and an add): gradients must accumulate."""
    return lower("branchy", [
        L("input", [(4, 4, 2)], name="x"),
        L("conv2d", [3, 3], {"padding": "same", "activation": "tanh"}, name="a", inputs=["x"]),
        L("conv2d", [3, 1], {"activation": "sigmoid"}, name="b", inputs=["a"]),
        L("conv2d", [3, 2], {"padding": "same", "activation": "elu"}, name="c", inputs=["a"]),
        L("add", name="s", inputs=["a", "b", "c"]),
        L("concatenate", name="cat", inputs=["s", "a"]),
        L("concatenate", [], {"axis": 1}, name="cat2", inputs=["cat", "cat"]),
    ])


CASES = {
    "conv2d_valid": (lambda: chain((5, 5, 2), ("conv2d", 3, 3)), MSE),
    "conv2d_same_stride2": (lambda: chain((6, 5, 2), ("conv2d", 3, 3, {
        "strides": 2, "padding": "same", "activation": "tanh"})), MSE),
    "conv2d_dilated_groups": (lambda: chain((6, 6, 4), ("conv2d", 6, (3, 2), {
        "dilation_rate": (2, 1), "groups": 2, "activation": "sigmoid"})), MSE),
    "conv2d_no_bias_relu": (lambda: chain((5, 5, 2), ("conv2d", 3, 2, {
        "use_bias": False, "activation": "relu", "strides": (1, 2)})), MSE),
    "depthwise_same_multiplier2": (lambda: chain((5, 6, 3), ("depthwise_conv2d", 3, {
        "padding": "same", "depth_multiplier": 2, "activation": "tanh"})), MSE),
    "depthwise_strided_relu6_no_bias": (lambda: chain((7, 6, 2), ("depthwise_conv2d", (3, 2), {
        "strides": (2, 1), "activation": "relu6", "use_bias": False})), MSE),
    "depthwise_dilated": (lambda: chain((7, 7, 3), ("depthwise_conv2d", 2, {
        "dilation_rate": 2, "depth_multiplier": 3})), MSE),
    "relu_layer_plain": (lambda: chain((2, 5), ("dense", 5), ("relu",)), MSE),
    "relu_layer_capped_leaky_threshold": (lambda: chain((2, 5), ("dense", 5), ("relu", {
        "max_value": 0.5, "negative_slope": 0.3, "threshold": -0.2})), MSE),
    "relu_layer_threshold_above_zero": (lambda: chain((2, 5), ("dense", 5), ("relu", {
        "negative_slope": 0.1, "threshold": 0.25})), MSE),
    "leaky_relu_layer": (lambda: chain((2, 5), ("dense", 5), ("leaky_relu", 0.05)), MSE),
    "maxpool2d_overlapping": (lambda: chain((5, 5, 2), ("maxpool2d", 3, {"strides": 1})), MSE),
    "maxpool2d_same": (lambda: chain((5, 4, 2), ("maxpool2d", 2, {"padding": "same"})), MSE),
    "avgpool2d_same": (lambda: chain((5, 5, 2), ("avgpool2d", 3, {
        "strides": 2, "padding": "same"})), MSE),
    "global_avgpool2d": (lambda: chain((3, 4, 2), ("global_avgpool2d",)), MSE),
    "global_avgpool2d_keepdims": (lambda: chain((3, 4, 2), (
        "global_avgpool2d", {"keepdims": True})), MSE),
    "zero_padding2d_conv": (lambda: chain((4, 3, 2), ("zero_padding2d", ((1, 0), (0, 2))),
                                          ("conv2d", 2, 3, {"strides": 2})), MSE),
    "dense_flatten": (lambda: chain((2, 3, 2), ("flatten",), ("dense", 4)), MSE),
    "dense_rank3_no_bias": (lambda: chain((3, 4), ("dense", 2, {"use_bias": False})), MSE),
    "dropout": (lambda: chain((4, 4, 3), ("conv2d", 2, 1), ("dropout", 0.5)), MSE),
    "batchnorm": (lambda: chain((3, 3, 2), ("batchnorm",)), MSE),
    "batchnorm_plain": (lambda: chain((3, 3, 2), ("conv2d", 2, 1),
                                      ("batchnorm", {"center": False, "scale": False})), MSE),
    "batchnorm_scale_only": (lambda: chain((5,), ("batchnorm", {"center": False})), MSE),
    "batchnorm_center_only": (lambda: chain((5,), ("batchnorm", {"scale": False})), MSE),
    "branches_add_concatenate": (_branchy, MSE),
    **{f"activation_{a}": (lambda a=a: chain((2, 5), ("activation", a)), MSE)
       for a in ACTIVATIONS},
    **{f"dense_{a}": (lambda a=a: chain((4,), ("dense", 3, {"activation": a})), MSE)
       for a in ACTIVATIONS},
    "sparse_ce_fused_dense": (lambda: chain((6,), ("dense", 4, {"activation": "softmax"})),
                              SPARSE),
    "sparse_ce_fused_activation": (lambda: chain((6,), ("dense", 4),
                                                 ("activation", "softmax")), SPARSE),
    "categorical_ce_fused_conv": (lambda: chain((3, 3, 2), ("conv2d", 3, 1, {
        "activation": "softmax"})), CATEGORICAL),
    "sparse_ce_on_sigmoid": (lambda: chain((6,), ("dense", 4, {"activation": "sigmoid"})),
                             SPARSE),
    "categorical_ce_on_sigmoid": (lambda: chain((6,), ("dense", 4, {
        "activation": "sigmoid"})), CATEGORICAL),
    "mse_on_softmax": (lambda: chain((6,), ("dense", 4, {"activation": "softmax"})), MSE),
}


# tests/opencl/op_cases.py: the networks every op runs on the devices, checked here too, so that
# a new op's case there is its gradient check as well.
OP_CASES = {case.name: case for case in op_cases().CASES}


def _graphs() -> list[tuple[Graph, str]]:
    """(forward graph, loss) of every case, hand-written and shared."""
    return ([(build(), loss) for build, loss in CASES.values()]
            + [(load_spec(case.spec()), case.loss) for case in OP_CASES.values()])


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradient_matches_finite_differences(case):
    build, loss = CASES[case]
    _check(build(), loss)


@pytest.mark.parametrize("name", sorted(OP_CASES))
def test_op_case_gradient_matches_finite_differences(name):
    case = OP_CASES[name]
    _check(load_spec(case.spec()), case.loss)


def _check(forward: Graph, loss: str) -> None:
    check = GradientCheck(forward, loss=loss, batch=3, seed=7, step=5)
    report = check.check(entries=8)
    assert len(report.skipped) <= len(report.entries) // 4, report.summary()
    worst = report.worst()
    assert worst is not None, "nothing was checked"
    assert worst.error < 1e-5, report.summary()
    checked = {e.name for e in report.checked}
    assert checked == set(check.differentiable()), "every input and parameter is checked"


def test_the_cases_exercise_every_op():
    used = set()
    for forward, loss in _graphs():
        g = training_graph(forward, TrainConfig(loss=loss), optimizer=False, wrt_inputs=True)
        used |= {n.op for n in g.nodes}
    want = (set(node_op_names("layer")) | set(node_op_names("gradient"))
            | set(node_op_names("loss")))
    # inference-only forms are replaced in training graphs; they are pinned by hand elsewhere
    want -= {"dropout", "batchnorm"}
    # l2_penalty joins only graphs with updates, which add its gradient (tests/train/
    # test_kernel_regularizer.py, tests/numpy/test_optimizers_vs_pytorch.py)
    want -= {"l2_penalty"}
    # gradient clipping acts on the optimizer's updates, which these graphs leave out; the
    # op cases with global_clipnorm run it (tests/opencl, tests/train/test_clipping.py)
    want -= {"square_sum", "clip_coefficient", "scale_gradient"}
    # share_bn_sums.py reads gamma's gradient from the input gradient's sums wherever that is
    # taken (always here, wrt_inputs); data-parallel graphs run it (tests/distributed)
    want -= {"batchnorm_grad_gamma"}
    assert not want - used, f"ops no gradient case runs: {sorted(want - used)}"
