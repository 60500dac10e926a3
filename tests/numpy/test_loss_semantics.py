"""Hand-computed examples pinning each loss op and its gradient (group 'loss')."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnc.errors import InputError
from cnnc.ir.ops import op_names
from cnnc.testing.nets import run, single_op


def loss_graph(op, sparse=None, classes=2):
    target = ((), "int32") if sparse else (classes,)
    attrs = {} if sparse is None else {"sparse": sparse}
    return single_op(op, inputs={"pred": (classes,), "t": target}, attrs=attrs)


def value(op, pred, target, sparse=None):
    g = loss_graph(op, sparse, len(pred[0]))
    t = np.asarray(target, dtype=np.int32 if sparse else np.float64)
    return run(g, {"pred": np.asarray(pred, dtype=np.float64), "t": t})["out"]


LOG3 = math.log(3)


@pytest.mark.parametrize("sparse,target", [(True, [1, 0]), (False, [[0, 1], [1, 0]])])
def test_softmax_cross_entropy__mean_negative_log_softmax(sparse, target):
    # softmax(0, ln 3) = (1/4, 3/4); softmax(0, 0) = (1/2, 1/2)
    got = value("softmax_cross_entropy", [[0, LOG3], [0, 0]], target, sparse)
    assert got.shape == ()
    assert got == pytest.approx((-math.log(0.75) - math.log(0.5)) / 2, rel=1e-14)


def test_softmax_cross_entropy__stable_for_huge_logits():
    got = value("softmax_cross_entropy", [[1000.0, 0.0]], [1], True)
    assert got == pytest.approx(1000.0)


def test_softmax_cross_entropy_grad__softmax_minus_target_over_n():
    got = value("softmax_cross_entropy_grad", [[0, LOG3], [0, 0]], [1, 0], True)
    np.testing.assert_allclose(got, [[0.125, -0.125], [-0.25, 0.25]], rtol=1e-14)


def test_softmax_cross_entropy__label_out_of_range_is_a_clear_error():
    with pytest.raises(InputError, match="label 2 is not a class id in 0..1"):
        value("softmax_cross_entropy", [[0.0, 1.0]], [2], True)


@pytest.mark.parametrize("sparse,target", [(True, [0]), (False, [[1, 0]])])
def test_cross_entropy__normalises_then_takes_the_log(sparse, target):
    got = value("cross_entropy", [[0.2, 0.6]], target, sparse)  # q = (1/4, 3/4)
    assert got == pytest.approx(math.log(4), rel=1e-14)


def test_cross_entropy__clips_at_epsilon():
    got = value("cross_entropy", [[1.0, 0.0]], [1], True)
    assert got == pytest.approx(-math.log(1e-7), rel=1e-12)


def test_cross_entropy_grad__through_the_normalisation():
    got = value("cross_entropy_grad", [[0.2, 0.6]], [0], True)
    # dL/dq = (-4, 0); dL/dp = (dL/dq - sum(dL/dq * q)) / sum(p) = ((-4, 0) + 1) / 0.8
    np.testing.assert_allclose(got, [[-3.75, 1.25]], rtol=1e-14)


def test_cross_entropy_grad__zero_where_the_clip_is_active():
    got = value("cross_entropy_grad", [[1.0, 0.0]], [[0.0, 1.0]], False)
    np.testing.assert_array_equal(got, [[0.0, 0.0]])


def test_mean_squared_error__mean_over_every_element():
    got = value("mean_squared_error", [[1.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]])
    assert got == pytest.approx(6 / 4)


def test_mean_squared_error_grad__two_diff_over_size():
    got = value("mean_squared_error_grad", [[1.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(got, [[0.5, 1.0], [0.0, -0.5]])


def test_l2_penalty__adds_l2_times_the_sum_of_squares():
    from cnnc.backends.numpy import NumpyBackend

    g = single_op("l2_penalty", state={"loss": (), "w": (2, 2)}, attrs={"l2": 0.5})
    backend = NumpyBackend("float64")
    backend.init_state(g.state, {"loss": np.array(1.25), "w": np.array([[1.0, -2.0],
                                                                         [0.5, 0.0]])})
    out = backend.compile(g, 1).run({}, ["out"])["out"]
    assert float(out) == pytest.approx(1.25 + 0.5 * (1 + 4 + 0.25))  # 3.875


def test_every_loss_op_has_a_pinned_example():
    pinned = {name[5:].split("__")[0] for name in globals() if name.startswith("test_")}
    missing = set(op_names("loss")) - pinned
    assert not missing, f"loss ops without a hand-computed test: {sorted(missing)}"
