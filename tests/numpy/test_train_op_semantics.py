"""Hand-computed tiny examples pinning each training op's `doc` semantics (cnnc/ir/gradients.py).

Test names start with test_<op>__; the last test checks every 'gradient' op has one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnc import rng as crandom
from cnnc.ir.ops import node_op_names
from cnnc.testing.nets import run, single_op

EPS = 1e-3
CONV = {"filters": 1, "kernel_size": (2, 2), "input_shape": (3, 3, 1)}


def one(graph, **feeds):
    return run(graph, {k: np.asarray(v, dtype=np.float64) for k, v in feeds.items()})["out"]


@pytest.mark.parametrize("act,y,dy,want", [
    ("linear", [-1.0, 2.0], [3.0, 4.0], [3.0, 4.0]),
    ("relu", [0.0, 1.0], [5.0, 7.0], [0.0, 7.0]),
    ("leaky_relu", [-0.2, 2.0], [5.0, 7.0], [1.0, 7.0]),
    ("relu6", [0.0, 3.0, 6.0], [5.0, 7.0, 9.0], [0.0, 7.0, 0.0]),
    ("elu", [-0.5, 1.0], [4.0, 7.0], [2.0, 7.0]),
    ("sigmoid", [0.25, 0.5], [1.0, 2.0], [0.1875, 0.5]),
    ("tanh", [0.5, 0.0], [1.0, 2.0], [0.75, 2.0]),
    ("softmax", [0.25, 0.75], [1.0, 0.0], [0.1875, -0.1875]),
])
def test_activation_grad__from_the_output(act, y, dy, want):
    n = len(y)
    g = single_op("activation_grad", inputs={"y": (n,), "dy": (n,)}, attrs={"activation": act})
    np.testing.assert_allclose(one(g, y=[y], dy=[dy]), [want], rtol=1e-15)


def test_conv2d_grad_input__one_output_spreads_the_kernel():
    g = single_op("conv2d_grad_input", inputs={"dy": (2, 2, 1)}, state={"k": (2, 2, 1, 1)},
                  attrs=CONV)
    k = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)
    dy = np.array([[0.0, 0.0], [0.0, 1.0]]).reshape(1, 2, 2, 1)
    dx = run(g, {"dy": dy}, {"k": k})["out"]
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 0, 0], [0, 1, 2], [0, 3, 4]])


def test_conv2d_grad_input__same_stride2_counts_window_coverage():
    attrs = {"filters": 1, "kernel_size": (3, 3), "strides": (2, 2), "padding": "same",
             "input_shape": (4, 4, 1)}
    g = single_op("conv2d_grad_input", inputs={"dy": (2, 2, 1)}, state={"k": (3, 3, 1, 1)},
                  attrs=attrs)
    dx = run(g, {"dy": np.ones((1, 2, 2, 1))}, {"k": np.ones((3, 3, 1, 1))})["out"]
    cover = np.array([1, 1, 2, 1])  # windows cover rows 0-2 and 2-4 (4 is padding)
    np.testing.assert_array_equal(dx[0, :, :, 0], np.outer(cover, cover))


def test_conv2d_grad_kernel__correlates_input_with_dy_summed_over_batch():
    g = single_op("conv2d_grad_kernel", inputs={"x": (3, 3, 1), "dy": (2, 2, 1)}, attrs=CONV)
    x1 = np.arange(1.0, 10.0).reshape(3, 3)
    x = np.stack([x1, 2 * x1])[..., None]
    dy = np.zeros((2, 2, 2, 1))
    dy[:, 0, 0, 0] = 1
    dk = one(g, x=x, dy=dy)
    np.testing.assert_array_equal(dk[:, :, 0, 0], 3 * np.array([[1, 2], [4, 5]]))


def test_activation_grad__a_relu_with_parameters_from_the_input_across_threshold_and_cap():
    attrs = {"activation": "relu", "threshold": 0.5, "max_value": 2.0, "negative_slope": 0.25}
    g = single_op("activation_grad", inputs={"x": (5,), "dy": (5,)}, attrs=attrs)
    dx = one(g, x=[[-1.0, 0.25, 1.0, 2.0, 3.0]], dy=[[4.0, 4.0, 4.0, 4.0, 4.0]])
    np.testing.assert_array_equal(dx, [[1.0, 1.0, 4.0, 0.0, 0.0]])


DEPTHWISE = {"kernel_size": (2, 2), "depth_multiplier": 2, "input_shape": (2, 2, 2)}


def test_depthwise_conv2d_grad_input__each_channel_from_its_own_filters():
    g = single_op("depthwise_conv2d_grad_input", inputs={"dy": (1, 1, 4)},
                  state={"k": (2, 2, 2, 2)}, attrs=DEPTHWISE)
    k = np.arange(16.0).reshape(2, 2, 2, 2)
    dy = np.array([1.0, 0.0, 0.0, 2.0]).reshape(1, 1, 1, 4)  # (c0, m0) and (c1, m1)
    dx = run(g, {"dy": dy}, {"k": k})["out"]
    np.testing.assert_array_equal(dx[0, :, :, 0], k[:, :, 0, 0])
    np.testing.assert_array_equal(dx[0, :, :, 1], 2 * k[:, :, 1, 1])


def test_depthwise_conv2d_grad_kernel__keras_shape_summed_over_batch():
    g = single_op("depthwise_conv2d_grad_kernel", inputs={"x": (2, 2, 2), "dy": (1, 1, 4)},
                  attrs=DEPTHWISE)
    x = np.arange(8.0).reshape(1, 2, 2, 2)
    x = np.concatenate([x, 3 * x])
    dy = np.zeros((2, 1, 1, 4))
    dy[:, 0, 0, 1] = 1.0  # only channel 0's second filter
    dk = one(g, x=x, dy=dy)
    assert dk.shape == (2, 2, 2, 2)
    want = np.zeros((2, 2, 2, 2))
    want[:, :, 0, 1] = 4 * x[0, :, :, 0]
    np.testing.assert_array_equal(dk, want)


def test_bias_grad__sums_all_but_the_last_axis():
    g = single_op("bias_grad", inputs={"dy": (2, 2)})
    np.testing.assert_array_equal(one(g, dy=[[[1, 2], [3, 4]], [[5, 6], [7, 8]]]), [16, 20])


def test_dense_grad_input__dy_times_kernel_transposed():
    g = single_op("dense_grad_input", inputs={"dy": (3,)}, state={"k": (2, 3)})
    k = np.array([[1.0, 2, 3], [4, 5, 6]])
    dx = run(g, {"dy": np.array([[1.0, 0, 1]])}, {"k": k})["out"]
    np.testing.assert_array_equal(dx, [[4, 10]])


def test_dense_grad_kernel__flattens_leading_axes():
    g = single_op("dense_grad_kernel", inputs={"x": (2, 2), "dy": (2, 1)})
    x = [[[1.0, 2.0], [3.0, 4.0]]]
    dy = [[[1.0], [10.0]]]
    np.testing.assert_array_equal(one(g, x=x, dy=dy), [[31], [42]])


def test_maxpool2d_grad__ties_go_to_the_first_maximum():
    g = single_op("maxpool2d_grad", inputs={"x": (2, 2, 1), "dy": (1, 1, 1)},
                  attrs={"pool_size": (2, 2)})
    x = np.array([[1.0, 1.0], [0.0, 1.0]]).reshape(1, 2, 2, 1)
    dx = one(g, x=x, dy=np.full((1, 1, 1, 1), 5.0))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[5, 0], [0, 0]])


def test_maxpool2d_grad__overlapping_windows_accumulate():
    g = single_op("maxpool2d_grad", inputs={"x": (1, 3, 1), "dy": (1, 2, 1)},
                  attrs={"pool_size": (1, 2), "strides": (1, 1)})
    dx = one(g, x=np.array([0.0, 2.0, 1.0]).reshape(1, 1, 3, 1),
             dy=np.array([3.0, 4.0]).reshape(1, 1, 2, 1))
    np.testing.assert_array_equal(dx.ravel(), [0, 7, 0])


def test_avgpool2d_grad__same_padding_shares_over_real_cells():
    g = single_op("avgpool2d_grad", inputs={"dy": (2, 2, 1)},
                  attrs={"pool_size": (2, 2), "padding": "same", "input_shape": (3, 3, 1)})
    dx = one(g, dy=np.ones((1, 2, 2, 1)))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[.25, .25, .5], [.25, .25, .5], [.5, .5, 1]])


def test_global_avgpool2d_grad__spreads_evenly():
    g = single_op("global_avgpool2d_grad", inputs={"dy": (2,)}, attrs={"input_shape": (2, 2, 2)})
    dx = one(g, dy=[[4.0, 8.0]])
    np.testing.assert_array_equal(dx[0], np.broadcast_to([1.0, 2.0], (2, 2, 2)))


def test_view__row_major():
    g = single_op("view", inputs={"x": (4,)}, attrs={"shape": (2, 2)})
    np.testing.assert_array_equal(one(g, x=[[1, 2, 3, 4]]), [[[1, 2], [3, 4]]])


def test_slice__along_an_axis():
    g = single_op("slice", inputs={"x": (2, 3)}, attrs={"axis": 2, "start": 1, "stop": 3})
    np.testing.assert_array_equal(one(g, x=[[[1, 2, 3], [4, 5, 6]]]), [[[2, 3], [5, 6]]])


def _lowbias32(x: int) -> int:
    """cnnc.rng's hash, re-written with Python integers (independent of the NumPy one)."""
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    x ^= x >> 16
    return x


def _uniform(seed: int, step: int, i: int) -> float:
    return (_lowbias32(_lowbias32(_lowbias32(seed) ^ step) ^ i) >> 8) * 2.0 ** -24


def test_dropout_train__mask_is_the_counter_based_hash():
    seed, step, rate = 1234, 7, 0.5
    g = single_op("dropout_train", inputs={"x": (3, 4)}, attrs={"rate": rate, "seed": seed})
    x = np.arange(1.0, 25.0).reshape(2, 3, 4)
    y = run(g, {"x": x}, step=step)["out"]
    keep = np.array([_uniform(seed, step, i) >= rate for i in range(24)]).reshape(x.shape)
    assert 0 < keep.sum() < 24
    np.testing.assert_array_equal(y, np.where(keep, x / (1 - rate), 0))
    np.testing.assert_array_equal(keep, crandom.keep_mask(seed, step, x.shape, rate))
    y_next = run(g, {"x": x}, step=step + 1)["out"]
    assert not np.array_equal(y_next != 0, keep), "the mask must change with the step"


def test_dropout_grad__same_mask_as_dropout_train():
    attrs = {"rate": 0.25, "seed": 99}
    fwd = single_op("dropout_train", inputs={"x": (50,)}, attrs=attrs)
    bwd = single_op("dropout_grad", inputs={"dy": (50,)}, attrs=attrs)
    ones = np.ones((2, 50))
    y = run(fwd, {"x": ones}, step=3)["out"]
    dx = run(bwd, {"dy": 2 * ones}, step=3)["out"]
    np.testing.assert_allclose(dx, 2 * y)
    assert set(np.unique(y)) == {0.0, 1 / 0.75}


def test_batchnorm_stats__mean_and_biased_variance():
    g = single_op("batchnorm_stats", inputs={"x": (2,)})
    np.testing.assert_array_equal(one(g, x=[[1, 2], [3, 5]]), [[2, 3.5], [1, 2.25]])


def test_batchnorm_train__normalises_with_given_stats():
    g = single_op("batchnorm_train", inputs={"x": (1,)}, state={"stats": (2, 1), "gamma": (1,),
                                                                "beta": (1,)})
    state = {"stats": np.array([[1.0], [4.0]]), "gamma": np.array([3.0]),
             "beta": np.array([0.5])}
    y = run(g, {"x": np.array([[0.0], [2.0]])}, state)["out"]
    s = math.sqrt(4 + EPS)
    np.testing.assert_allclose(y.ravel(), [-3 / s + 0.5, 3 / s + 0.5], rtol=1e-15)


def test_batchnorm_grad_input__through_the_batch_statistics():
    g = single_op("batchnorm_grad_input", inputs={"x": (1,), "dy": (1,)},
                  state={"stats": (2, 1)}, operands=("x", "stats", "dy"),
                  attrs={"scale": False, "center": False})
    dx = run(g, {"x": np.array([[0.0], [2.0]]), "dy": np.array([[1.0], [0.0]])},
             {"stats": np.array([[1.0], [1.0]])})["out"]
    # xhat = (-1, 1)/s, g = (1, 0): mean g = 1/2, mean g*xhat = -1/(2s)
    s = math.sqrt(1 + EPS)
    want = np.array([0.5 - 0.5 / s**2, -0.5 + 0.5 / s**2]) / s
    np.testing.assert_allclose(dx.ravel(), want, rtol=1e-12)


def test_batchnorm_grad_gamma__dy_times_xhat():
    g = single_op("batchnorm_grad_gamma", inputs={"x": (1,), "dy": (1,)},
                  state={"stats": (2, 1)}, operands=("x", "stats", "dy"))
    dg = run(g, {"x": np.array([[0.0], [2.0]]), "dy": np.array([[1.0], [3.0]])},
             {"stats": np.array([[1.0], [1.0]])})["out"]
    np.testing.assert_allclose(dg, [2 / math.sqrt(1 + EPS)], rtol=1e-15)


# ---- the broadcasting merges' gradients (cnnc/ir/merges.py)


def test_unbroadcast__sums_the_broadcast_axes_and_scales():
    g = single_op("unbroadcast", inputs={"dy": (2, 2, 2)},
                  attrs={"input_shape": (1, 1, 2), "scale": -0.5})
    dy = np.arange(8.0).reshape(1, 2, 2, 2)  # channel 0: 0+2+4+6, channel 1: 1+3+5+7
    np.testing.assert_array_equal(one(g, dy=dy), [[[[-6.0, -8.0]]]])


def test_unbroadcast__to_a_lower_rank_vector():
    g = single_op("unbroadcast", inputs={"dy": (1, 2, 2)}, attrs={"input_shape": (2,)})
    np.testing.assert_array_equal(one(g, dy=[[[[1.0, 2.0], [3.0, 4.0]]]]), [[4.0, 6.0]])


def test_multiply_grad__dy_times_the_other_summed_over_the_gate_axes():
    g = single_op("multiply_grad", inputs={"dy": (1, 2, 2), "other": (1, 2, 2)},
                  attrs={"input_shape": (1, 1, 2)})
    dx = one(g, dy=[[[[1.0, 2.0], [3.0, 4.0]]]], other=[[[[10.0, 20.0], [30.0, 40.0]]]])
    np.testing.assert_array_equal(dx, [[[[100.0, 200.0]]]])  # 1*10+3*30, 2*20+4*40


@pytest.mark.parametrize("op,want", [("maximum_grad", [[1.0, 0.0, 1.5]]),
                                     ("minimum_grad", [[0.0, 2.0, 1.5]])])
def test_maximum_grad__winner_takes_dy_and_ties_share_it(op, want):
    # minimum_grad is pinned by the same case (the other side of each comparison)
    g = single_op(op, inputs={"dy": (3,), "x": (3,), "other": (3,)},
                  attrs={"input_shape": (3,)})
    dx = one(g, dy=[[1.0, 2.0, 3.0]], x=[[5.0, 1.0, 4.0]], other=[[2.0, 7.0, 4.0]])
    np.testing.assert_array_equal(dx, want)


def test_minimum_grad__a_broadcast_operand_sums_its_shares():
    g = single_op("minimum_grad", inputs={"dy": (3,), "x": (1,), "other": (3,)},
                  attrs={"input_shape": (1,)})
    dx = one(g, dy=[[1.0, 2.0, 4.0]], x=[[3.0]], other=[[5.0, 3.0, 1.0]])
    np.testing.assert_array_equal(dx, [[1.0 + 1.0 + 0.0]])
# ---------------------------------------------------------------- layer norm, global max pooling


def test_layer_norm_grad_input__through_the_row_statistics():
    # Row [1, 3], epsilon 3: mean 2, variance 1, 1/sqrt(1 + 3) = 1/2, xhat [-1/2, 1/2]. As a
    # function of d = (x0 - x1)/2, y0 = d / sqrt(d^2 + 3), dy0/dd = 3 / (d^2 + 3)^(3/2) = 3/8,
    # so dy0/dx0 = 3/16 and dy0/dx1 = -3/16; gamma scales g.
    g = single_op("layer_norm_grad_input", inputs={"x": (2,), "dy": (2,)},
                  attrs={"epsilon": 3.0, "scale": False})
    np.testing.assert_allclose(one(g, x=[[1.0, 3.0]], dy=[[1.0, 0.0]]), [[0.1875, -0.1875]],
                               rtol=1e-15)
    g = single_op("layer_norm_grad_input", inputs={"x": (2,), "dy": (2,)},
                  state={"gamma": (2,)}, attrs={"epsilon": 3.0})
    out = run(g, {"x": np.array([[1.0, 3.0]]), "dy": np.array([[1.0, 0.0]])},
              {"gamma": np.array([2.0, 5.0])})["out"]
    np.testing.assert_allclose(out, [[0.375, -0.375]], rtol=1e-15)


def test_layer_norm_grad_gamma__dy_times_xhat_summed_over_rows():
    # Rows [1, 3] (xhat [-1/2, 1/2] with epsilon 3) and [5, 5] (xhat 0).
    g = single_op("layer_norm_grad_gamma", inputs={"x": (2,), "dy": (2,)},
                  attrs={"epsilon": 3.0})
    np.testing.assert_allclose(one(g, x=[[1.0, 3.0], [5.0, 5.0]], dy=[[1.0, 2.0], [7.0, 7.0]]),
                               [-0.5, 1.0], rtol=1e-15)


def test_layer_norm_grad_sums__beta_row_then_gamma_row():
    # The rows of the test above: sum(dy) = [8, 9], sum(dy * xhat) = [-0.5, 1].
    g = single_op("layer_norm_grad_sums", inputs={"x": (2,), "dy": (2,)},
                  attrs={"epsilon": 3.0})
    np.testing.assert_allclose(one(g, x=[[1.0, 3.0], [5.0, 5.0]], dy=[[1.0, 2.0], [7.0, 7.0]]),
                               [[8.0, 9.0], [-0.5, 1.0]], rtol=1e-15)


def test_excite_grad__dm_times_gate_plus_the_pooled_share():
    # 2x2 positions, 2 channels: channel 0 dm * 0.5 + 4 / 4, channel 1 dm * 2 - 8 / 4.
    g = single_op("excite_grad", inputs={"dm": (2, 2, 2), "gate": (1, 1, 2), "dpool": (2,)})
    dm = np.arange(1.0, 9.0).reshape(1, 2, 2, 2)
    out = one(g, dm=dm, gate=[[[[0.5, 2.0]]]], dpool=[[4.0, -8.0]])
    want = [[[[1.5, 2.0], [2.5, 6.0]], [[3.5, 10.0], [4.5, 14.0]]]]
    np.testing.assert_array_equal(out, want)


def test_global_maxpool2d_grad__ties_go_to_the_first_maximum():
    g = single_op("global_maxpool2d_grad", inputs={"x": (2, 2, 2), "dy": (2,)})
    # channel 0: 4 at (0, 1) and (1, 0), the first in row-major order wins; channel 1: one max.
    x = [[[[1.0, 0.0], [4.0, 0.0]], [[4.0, 9.0], [2.0, 0.0]]]]
    want = np.zeros((1, 2, 2, 2))
    want[0, 0, 1, 0] = 10.0
    want[0, 1, 0, 1] = 20.0
    np.testing.assert_array_equal(one(g, x=x, dy=[[10.0, 20.0]]), want)
# ---- resampling and transposed convolutions (cnnc/ir/resample.py, conv_transpose.py)


def test_upsampling2d_grad__nearest_sums_each_block():
    g = single_op("upsampling2d_grad", inputs={"dy": (2, 4, 1)},
                  attrs={"size": (2, 2), "interpolation": "nearest", "input_shape": (1, 2, 1)})
    dy = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]).reshape(1, 2, 4, 1)
    np.testing.assert_array_equal(one(g, dy=dy)[0, :, :, 0], [[14, 22]])


def test_upsampling2d_grad__bilinear_hands_back_the_weights():
    # Forward weights on columns (0, 1): (1, 0), (0.75, 0.25), (0.25, 0.75), (0, 1).
    g = single_op("upsampling2d_grad", inputs={"dy": (1, 4, 1)},
                  attrs={"size": (1, 2), "interpolation": "bilinear", "input_shape": (1, 2, 1)})
    dy = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 4, 1)
    np.testing.assert_array_equal(one(g, dy=dy)[0, 0, :, 0], [3.25, 6.75])


# The transposed convolution of test_layer_semantics: width 2 -> 4, kernel [1, 2, 3], 'same'
# stride 2: input i meets output 2 i + t.
TRANSPOSE = {"filters": 1, "kernel_size": (1, 3), "strides": (1, 2), "padding": "same",
             "input_shape": (1, 2, 1)}


def test_conv2d_transpose_grad_input__reads_each_inputs_outputs():
    g = single_op("conv2d_transpose_grad_input", inputs={"dy": (1, 4, 1)},
                  state={"k": (1, 3, 1, 1)}, attrs=TRANSPOSE)
    dy = np.array([1.0, 0.0, 0.0, 1.0]).reshape(1, 1, 4, 1)
    k = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    # dx[0] = 1*dy[0] + 2*dy[1] + 3*dy[2] = 1; dx[1] = 1*dy[2] + 2*dy[3] (dy[4]: cut) = 2
    np.testing.assert_array_equal(run(g, {"dy": dy}, {"k": k})["out"][0, 0, :, 0], [1, 2])


def test_conv2d_transpose_grad_kernel__sums_dy_times_x_per_tap():
    g = single_op("conv2d_transpose_grad_kernel", inputs={"x": (1, 2, 1), "dy": (1, 4, 1)},
                  attrs=TRANSPOSE)
    x = np.array([1.0, 2.0]).reshape(1, 1, 2, 1)
    dy = np.array([1.0, 0.0, 0.0, 1.0]).reshape(1, 1, 4, 1)
    # tap t: dy[t] * x[0] + dy[2 + t] * x[1]: 1 + 0, 0 + 2, 0 + (cut)
    np.testing.assert_array_equal(one(g, x=x, dy=dy)[0, :, 0, 0], [1, 2, 0])


def test_every_train_op_has_a_pinned_example():
    pinned = {name[5:].split("__")[0] for name in globals() if name.startswith("test_")}
    missing = set(node_op_names("gradient")) - pinned
    assert not missing, f"train ops without a hand-computed test: {sorted(missing)}"


def test_channel_slice_grad__dy_in_its_channels_zeros_elsewhere():
    g = single_op("channel_slice_grad", inputs={"dy": (2, 2)},
                  attrs={"start": 1, "stop": 3, "channels": 5})
    np.testing.assert_array_equal(one(g, dy=[[[1, 2], [3, 4]]]),
                                  [[[0, 1, 2, 0, 0], [0, 3, 4, 0, 0]]])


# ---------------------------------------------------------------- normalization's gradient,
# gradient clipping (cnnc/ir/preprocessing.py, cnnc/ir/clipping.py)


def test_normalization_grad__dy_over_the_clamped_standard_deviation():
    g = single_op("normalization_grad", inputs={"dy": (2,)}, state={"variance": (2,)})
    out = run(g, {"dy": np.array([[2.0, 3e-7]])}, {"variance": np.array([4.0, 0.0])})["out"]
    # sqrt(4) = 2; sqrt(0) is clamped to Keras' epsilon 1e-7
    np.testing.assert_allclose(out, [[1.0, 3.0]], rtol=1e-12)


def test_square_sum__every_element_squared_plus_the_running_sum():
    g = single_op("square_sum", inputs={"x": (3,)}, state={"running": (1,)})
    x = np.array([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]])
    out = run(g, {"x": x}, {"running": np.array([10.0])})["out"]
    assert out.tolist() == [1 + 4 + 9 + 0.25 + 0 + 1 + 10]


@pytest.mark.parametrize(("squared", "want"), [(100.0, 5.0 / (10.0 + 1e-6)), (16.0, 1.0)])
def test_clip_coefficient__pytorchs_clip_grad_norm(squared, want):
    g = single_op("clip_coefficient", state={"sq": (1,)}, attrs={"max_norm": 5.0})
    out = run(g, {}, {"sq": np.array([squared])})["out"]
    assert out.tolist() == [want]  # norm 10 > 5: 5 / (10 + 1e-6); norm 4: not scaled up


def test_scale_gradient__times_the_coefficient():
    g = single_op("scale_gradient", state={"grad": (3,), "c": (1,)})
    out = run(g, {}, {"grad": np.array([2.0, -4.0, 1.0]), "c": np.array([0.25])})["out"]
    assert out.tolist() == [0.5, -1.0, 0.25]


# ---------------------------------------------------------------- an activation's derivative
# applied where its dy is produced (cnnc/ir/act_grad_fused.py): the producer's value times
# f'(v), v the activation's input. softplus' = sigmoid: 1/2 at 0, 3/4 at ln 3.
LN3 = math.log(3.0)


def test_dense_grad_input_act_grad__dy_times_kernel_transposed_then_the_derivative():
    g = single_op("dense_grad_input_act_grad", inputs={"dy": (3,), "v": (2,)},
                  state={"k": (2, 3)}, attrs={"activation": "softplus"},
                  operands=["dy", "k", "v"])
    k = np.array([[1.0, 2, 3], [4, 5, 6]])
    out = run(g, {"dy": np.array([[1.0, 0, 1]]), "v": np.array([[0.0, LN3]])}, {"k": k})["out"]
    np.testing.assert_allclose(out, [[4 * 0.5, 10 * 0.75]], rtol=1e-12)


def test_conv2d_grad_input_act_grad__spread_kernel_then_the_derivative():
    g = single_op("conv2d_grad_input_act_grad", inputs={"dy": (2, 2, 1), "v": (3, 3, 1)},
                  state={"k": (2, 2, 1, 1)}, attrs={**CONV, "activation": "softplus"},
                  operands=["dy", "k", "v"])
    k = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)
    dy = np.array([[0.0, 0.0], [0.0, 1.0]]).reshape(1, 2, 2, 1)
    v = np.zeros((1, 3, 3, 1))
    v[0, 2, 2, 0] = LN3
    out = run(g, {"dy": dy, "v": v}, {"k": k})["out"]
    np.testing.assert_allclose(out[0, :, :, 0], [[0, 0, 0], [0, 0.5, 1.0], [0, 1.5, 3.0]],
                               rtol=1e-12)


def test_depthwise_conv2d_grad_input_act_grad__own_filters_then_the_derivative():
    g = single_op("depthwise_conv2d_grad_input_act_grad", inputs={"dy": (1, 1, 4),
                                                                  "v": (2, 2, 2)},
                  state={"k": (2, 2, 2, 2)}, attrs={**DEPTHWISE, "activation": "softplus"},
                  operands=["dy", "k", "v"])
    k = np.arange(16.0).reshape(2, 2, 2, 2)
    dy = np.array([1.0, 0.0, 0.0, 2.0]).reshape(1, 1, 1, 4)
    v = np.zeros((1, 2, 2, 2))
    v[..., 1] = LN3
    out = run(g, {"dy": dy, "v": v}, {"k": k})["out"]
    np.testing.assert_allclose(out[0, :, :, 0], 0.5 * k[:, :, 0, 0], rtol=1e-12)
    np.testing.assert_allclose(out[0, :, :, 1], 0.75 * 2 * k[:, :, 1, 1], rtol=1e-12)


def test_add_act_grad__the_sum_then_the_derivative():
    g = single_op("add_act_grad", inputs={"a": (2,), "b": (2,), "v": (2,)},
                  attrs={"activation": "softplus"})
    out = one(g, a=[[1.0, 2.0]], b=[[3.0, 4.0]], v=[[0.0, LN3]])
    np.testing.assert_allclose(out, [[4 * 0.5, 6 * 0.75]], rtol=1e-12)


def test_lrn_grad__direct_term_and_through_the_neighbours_divisors():
    # x = [1, 2, 3], size 3, alpha/size = 1, beta 1, bias 1: y0 = x0 / (1 + x0^2 + x1^2), d0 = 6.
    # dy0/dx0 = (d0 - 2 x0^2) / d0^2 = 4/36, dy0/dx1 = -2 x0 x1 / d0^2 = -4/36, and x2 is
    # outside channel 0's window.
    attrs = {"size": 3, "alpha": 3.0, "beta": 1.0, "bias": 1.0}
    g = single_op("lrn_grad", inputs={"x": (3,), "dy": (3,)}, attrs=attrs)
    np.testing.assert_allclose(one(g, x=[[1.0, 2.0, 3.0]], dy=[[1.0, 0.0, 0.0]]),
                               [[1 / 9, -1 / 9, 0.0]], rtol=1e-15, atol=1e-17)
    # size 1, beta 0.5, bias 9, x = 4: d/dx x (9 + x^2)^-0.5 = 1/5 - 16/125 = 9/125.
    g = single_op("lrn_grad", inputs={"x": (1,), "dy": (1,)},
                  attrs={"size": 1, "alpha": 1.0, "beta": 0.5, "bias": 9.0})
    np.testing.assert_allclose(one(g, x=[[4.0]], dy=[[2.0]]), [[2 * 9 / 125]], rtol=1e-15)


# ---- batch norm's shared sums and its gradient through an activation
# (cnnc/passes/share_bn_sums.py, fuse_bn_act_grad.py): x = (0, 2), mean 1, variance 1, so
# xhat = (-1, 1) / s; relu of v = xhat passes the second element only.


def test_sums_row__one_row_of_the_sums():
    g = single_op("sums_row", state={"s": (2, 3)}, attrs={"row": 1})
    out = run(g, {}, {"s": np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])})["out"]
    np.testing.assert_array_equal(out, [4.0, 5.0, 6.0])


def test_batchnorm_act_grad_sums__dv_and_dv_times_xhat():
    g = single_op("batchnorm_act_grad_sums", inputs={"x": (1,), "dy": (1,)},
                  state={"stats": (2, 1)}, operands=("x", "stats", "dy"),
                  attrs={"scale": False, "center": False, "activation": "relu"})
    sums = run(g, {"x": np.array([[0.0], [2.0]]), "dy": np.array([[1.0], [3.0]])},
               {"stats": np.array([[1.0], [1.0]])})["out"]
    s = math.sqrt(1 + EPS)
    np.testing.assert_allclose(sums.ravel(), [3.0, 3.0 / s], rtol=1e-15)  # dv = (0, 3)


def test_batchnorm_act_grad_apply__batchnorm_grad_input_of_dv():
    g = single_op("batchnorm_act_grad_apply", inputs={"x": (1,), "dy": (1,)},
                  state={"stats": (2, 1), "sums": (2, 1)}, operands=("x", "stats", "dy", "sums"),
                  attrs={"scale": False, "center": False, "activation": "relu"})
    s = math.sqrt(1 + EPS)
    dx = run(g, {"x": np.array([[0.0], [2.0]]), "dy": np.array([[1.0], [3.0]])},
             {"stats": np.array([[1.0], [1.0]]), "sums": np.array([[3.0], [3.0 / s]])})["out"]
    want = np.array([-1.5 + 1.5 / s**2, 1.5 - 1.5 / s**2]) / s
    np.testing.assert_allclose(dx.ravel(), want, rtol=1e-12)
