"""Hand-computed tiny examples pinning each layer op's semantics (Keras/TensorFlow conventions).

Test names start with test_<op>__ so that the coverage test at the end can check every layer op
of the op table has at least one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnc.ir.activations import ACTIVATIONS
from cnnc.ir.ops import op_names
from cnnc.testing.nets import chain, run, single_op


def forward(graph, x, weights=None):
    return run(graph, {"input_layer": np.asarray(x, dtype=np.float64)}, weights)[graph.outputs[0]]


def img(rows) -> np.ndarray:
    """One single-channel image (1, H, W, 1) from a 2-D list."""
    return np.asarray(rows, dtype=np.float64)[None, :, :, None]


def test_input__feeds_its_value_through():
    g = single_op("input", attrs={"shape": (3,)})
    x = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(run(g, {"out": x})["out"], x)


def test_conv2d__valid_cross_correlation_with_bias():
    g = chain((3, 3, 1), ("conv2d", 1, 2))
    k = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)
    y = forward(g, img([[1, 2, 3], [4, 5, 6], [7, 8, 9]]),
                {"conv2d/kernel": k, "conv2d/bias": np.array([1.0])})
    # Not flipped (a cross-correlation, as Keras): 1*1 + 2*2 + 3*4 + 4*5 + 1 = 38.
    np.testing.assert_array_equal(y[0, :, :, 0], [[38, 48], [68, 78]])


def test_conv2d__same_stride2_pads_bottom_right():
    g = chain((4, 4, 1), ("conv2d", 1, 3, {"strides": 2, "padding": "same",
                                          "use_bias": False}))
    y = forward(g, img(np.arange(16).reshape(4, 4)), {"conv2d/kernel": np.ones((3, 3, 1, 1))})
    # Total padding 1 goes after (TensorFlow): the first window is rows 0-2, cols 0-2.
    np.testing.assert_array_equal(y[0, :, :, 0], [[45, 39], [66, 50]])


def test_conv2d__dilation():
    g = chain((5, 5, 1), ("conv2d", 1, 2, {"dilation_rate": 2, "use_bias": False}))
    k = np.array([[1.0, 0.0], [0.0, 1.0]]).reshape(2, 2, 1, 1)
    y = forward(g, img(np.arange(25).reshape(5, 5)), {"conv2d/kernel": k})
    # y[i, j] = x[i, j] + x[i + 2, j + 2] = 2 * x[i, j] + 12
    np.testing.assert_array_equal(y[0, :, :, 0], [[12, 14, 16], [22, 24, 26], [32, 34, 36]])


def test_conv2d__groups_split_channels_in_order():
    g = chain((1, 1, 4), ("conv2d", 2, 1, {"groups": 2, "use_bias": False}))
    k = np.zeros((1, 1, 2, 2))
    k[0, 0, :, 0] = [1, 10]  # filter 0 sees channels 0, 1
    k[0, 0, :, 1] = [100, 1000]  # filter 1 sees channels 2, 3
    y = forward(g, np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 1, 4), {"conv2d/kernel": k})
    np.testing.assert_array_equal(y.ravel(), [21, 4300])


def test_conv2d__fused_activation_after_bias():
    g = chain((1, 2, 1), ("conv2d", 1, 1, {"activation": "relu"}))
    y = forward(g, img([[1, -3]]), {"conv2d/kernel": np.ones((1, 1, 1, 1)),
                                    "conv2d/bias": np.array([1.0])})
    np.testing.assert_array_equal(y.ravel(), [2, 0])


def test_maxpool2d__floors_and_takes_window_max():
    g = chain((5, 5, 1), ("maxpool2d", 2))
    y = forward(g, img(np.arange(25).reshape(5, 5)))
    np.testing.assert_array_equal(y[0, :, :, 0], [[6, 8], [16, 18]])  # last row/col dropped


def test_maxpool2d__same_padding_never_wins():
    g = chain((3, 3, 1), ("maxpool2d", 2, {"padding": "same"}))
    y = forward(g, img(-np.arange(1, 10).reshape(3, 3)))
    np.testing.assert_array_equal(y[0, :, :, 0], [[-1, -3], [-7, -9]])


def test_avgpool2d__same_padding_averages_real_cells():
    g = chain((3, 3, 1), ("avgpool2d", 2, {"padding": "same"}))
    y = forward(g, img(np.arange(1, 10).reshape(3, 3)))
    np.testing.assert_array_equal(y[0, :, :, 0], [[3, 4.5], [7.5, 9]])


def test_avgpool2d__overlapping_windows():
    g = chain((3, 3, 1), ("avgpool2d", 2, {"strides": 1}))
    y = forward(g, img(np.arange(1, 10).reshape(3, 3)))
    np.testing.assert_array_equal(y[0, :, :, 0], [[3, 4], [6, 7]])


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_avgpool2d__means_height_and_width(keepdims):
    g = chain((2, 2, 2), ("global_avgpool2d", {"keepdims": keepdims}))
    x = np.arange(8.0).reshape(1, 2, 2, 2)
    y = forward(g, x)
    assert y.shape == ((1, 1, 1, 2) if keepdims else (1, 2))
    np.testing.assert_array_equal(y.ravel(), [3, 4])


def test_dense__matrix_product_and_bias():
    g = chain((2,), ("dense", 3))
    w = {"dense/kernel": np.array([[1.0, 2, 3], [4, 5, 6]]), "dense/bias": np.array([0.5, 0, 0])}
    np.testing.assert_array_equal(forward(g, [[1.0, 2.0]], w), [[9.5, 12, 15]])


def test_dense__acts_on_the_last_axis():
    g = chain((2, 2), ("dense", 1, {"use_bias": False}))
    y = forward(g, [[[1.0, 2.0], [3.0, 4.0]]], {"dense/kernel": np.array([[1.0], [10.0]])})
    np.testing.assert_array_equal(y, [[[21], [43]]])


def test_flatten__row_major_height_width_channels():
    g = chain((2, 2, 2), ("flatten",))
    x = np.zeros((1, 2, 2, 2))
    x[0, 0, 1, 0] = 1  # (h=0, w=1, c=0) -> index 0*4 + 1*2 + 0 = 2
    np.testing.assert_array_equal(forward(g, x), [[0, 0, 1, 0, 0, 0, 0, 0]])


def test_dropout__identity_at_inference():
    g = chain((3,), ("dropout", 0.5))
    x = [[1.0, 2.0, 3.0]]
    np.testing.assert_array_equal(forward(g, x), x)


def test_batchnorm__inference_uses_moving_statistics():
    g = chain((2,), ("batchnorm",))
    w = {"batch_normalization/gamma": np.array([2.0, 1.0]),
         "batch_normalization/beta": np.array([0.0, 1.0]),
         "batch_normalization/moving_mean": np.array([0.5, 1.0]),
         "batch_normalization/moving_variance": np.array([4.0, 0.25])}
    y = forward(g, [[1.0, 2.0]], w)
    want = [0.5 / math.sqrt(4.001) * 2, 1.0 / math.sqrt(0.251) + 1]
    np.testing.assert_allclose(y, [want], rtol=1e-14)


def test_batchnorm__without_center_or_scale():
    g = chain((1,), ("batchnorm", {"center": False, "scale": False, "epsilon": 0.5}))
    assert [p for n in g.nodes for p in n.params] == [
        "batch_normalization/moving_mean", "batch_normalization/moving_variance"]
    w = {"batch_normalization/moving_mean": np.array([1.0]),
         "batch_normalization/moving_variance": np.array([1.5])}
    np.testing.assert_allclose(forward(g, [[3.0]], w), [[2.0 / math.sqrt(2.0)]])


# Hand-computed at x = -1, 0, 2, one row per activation of the table (a new one too: see
# test_activation__every_one_has_a_hand_computed_case).
ACTIVATION_CASES = {
    "linear": [-1.0, 0.0, 2.0],
    "relu": [0.0, 0.0, 2.0],
    "leaky_relu": [-0.2, 0.0, 2.0],
    "relu6": [0.0, 0.0, 2.0],
    "elu": [math.exp(-1) - 1, 0.0, 2.0],
    "sigmoid": [1 / (1 + math.e), 0.5, 1 / (1 + math.exp(-2))],
    "tanh": [math.tanh(-1), 0.0, math.tanh(2)],
    "softmax": [math.exp(-1) / (math.exp(-1) + 1 + math.exp(2)),
                1 / (math.exp(-1) + 1 + math.exp(2)),
                math.exp(2) / (math.exp(-1) + 1 + math.exp(2))],
    # issue 20: Keras 3's definitions, at the same -1, 0, 2
    "silu": [-1 / (1 + math.e), 0.0, 2 / (1 + math.exp(-2))],
    "hard_sigmoid": [1 / 3, 0.5, 5 / 6],  # relu6(x + 3) / 6
    "hard_swish": [-1 / 3, 0.0, 5 / 3],  # x relu6(x + 3) / 6
    "gelu": [-0.15865525393145707, 0.0, 2 * 0.9772498680518208],  # x Phi(x), Phi from tables
    "gelu_tanh": [0.5 * -1 * (1 + math.tanh(math.sqrt(2 / math.pi) * (-1 - 0.044715))), 0.0,
                  0.5 * 2 * (1 + math.tanh(math.sqrt(2 / math.pi) * (2 + 0.044715 * 8)))],
    "softplus": [math.log(1 + math.exp(-1)), math.log(2), math.log(1 + math.exp(2))],
    "mish": [-math.tanh(math.log(1 + math.exp(-1))), 0.0, 2 * math.tanh(math.log(1 + math.e ** 2))],
}


@pytest.mark.parametrize("act", sorted(ACTIVATION_CASES))
def test_activation__each_function(act):
    g = chain((3,), ("activation", act))
    np.testing.assert_allclose(forward(g, [[-1.0, 0.0, 2.0]]), [ACTIVATION_CASES[act]],
                               rtol=1e-14, atol=1e-300)


def test_activation__every_one_has_a_hand_computed_case():
    missing = sorted(set(ACTIVATIONS) - set(ACTIVATION_CASES))
    assert not missing, f"activations without a hand-computed case: {missing}"


def test_activation__softmax_over_the_last_axis_only():
    g = chain((2, 2), ("activation", "softmax"))
    y = forward(g, [[[0.0, 0.0], [0.0, math.log(3)]]])
    np.testing.assert_allclose(y, [[[0.5, 0.5], [0.25, 0.75]]])


def test_activation__sigmoid_saturates_without_overflow():
    g = chain((2,), ("activation", "sigmoid"))
    with np.errstate(all="raise"):
        y = forward(g, [[-1000.0, 1000.0]])
    np.testing.assert_array_equal(y, [[0.0, 1.0]])


def test_add__sums_every_input():
    g = single_op("add", inputs={"a": (2,), "b": (2,), "c": (2,)})
    y = run(g, {"a": np.array([[1.0, 2]]), "b": np.array([[10.0, 20]]),
                "c": np.array([[100.0, 200]])})["out"]
    np.testing.assert_array_equal(y, [[111, 222]])


@pytest.mark.parametrize("axis,want", [(-1, [[[1, 2, 5]], [[3, 4, 6]]]), (1, None)])
def test_concatenate__joins_along_the_axis(axis, want):
    g = single_op("concatenate", inputs={"a": (2, 1, 2), "b": (2, 1, 1)} if axis == -1
                  else {"a": (1, 1, 2), "b": (2, 1, 2)}, attrs={"axis": axis})
    if axis == -1:
        a = np.array([[[[1.0, 2]], [[3, 4]]]])
        b = np.array([[[[5.0]], [[6]]]])
        np.testing.assert_array_equal(run(g, {"a": a, "b": b})["out"][0], want)
    else:
        a = np.array([[[[1.0, 2]]]])
        b = np.array([[[[3.0, 4]]], [[[5, 6]]]]).reshape(1, 2, 1, 2)
        np.testing.assert_array_equal(run(g, {"a": a, "b": b})["out"][0, :, 0],
                                      [[1, 2], [3, 4], [5, 6]])


def test_zero_padding2d__zeros_around_the_image():
    g = chain((2, 2, 1), ("zero_padding2d", ((1, 0), (0, 2))))
    y = forward(g, img([[1, 2], [3, 4]]))
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 0, 0, 0], [1, 2, 0, 0], [3, 4, 0, 0]])


def test_zero_padding2d__keras_argument_forms():
    for given, want in ((2, ((2, 2), (2, 2))), ((1, 3), ((1, 1), (3, 3))),
                        (((0, 1), (2, 3)), ((0, 1), (2, 3)))):
        assert chain((3, 3, 1), ("zero_padding2d", given)).node("zero_padding2d").attrs[
            "padding"] == want


def test_depthwise_conv2d__each_channel_with_its_own_filters_channel_major():
    # Keras: output channel c * depth_multiplier + m is input channel c with filter (c, m).
    g = chain((2, 2, 2), ("depthwise_conv2d", 2, {"depth_multiplier": 2}))
    x = np.array([[[1.0, 10.0], [2.0, 20.0]], [[3.0, 30.0], [4.0, 40.0]]])[None]
    k = np.zeros((2, 2, 2, 2))
    k[:, :, 0, 0] = 1.0        # channel 0, filter 0: sum of the window
    k[0, 0, 0, 1] = 1.0        # channel 0, filter 1: top-left tap
    k[1, 1, 1, 0] = 1.0        # channel 1, filter 0: bottom-right tap
    k[:, :, 1, 1] = -1.0       # channel 1, filter 1: minus the sum
    y = forward(g, x, {"depthwise_conv2d/kernel": k,
                       "depthwise_conv2d/bias": np.array([0.0, 0.5, 0.0, 0.0])})
    np.testing.assert_array_equal(y.reshape(-1), [10, 1.5, 40, -100])


def test_depthwise_conv2d__same_padding_and_keras_parameter_shapes():
    g = chain((3, 3, 2), ("depthwise_conv2d", 3, {"padding": "same", "depth_multiplier": 3}))
    shapes = {s.name: s.shape for s in g.state}
    assert shapes == {"depthwise_conv2d/kernel": (3, 3, 2, 3), "depthwise_conv2d/bias": (6,)}
    assert g.node("depthwise_conv2d").shape == (None, 3, 3, 6)


def test_relu__keras_threshold_cap_and_slope():
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 1.0, 2.0, 7.0]])
    cases = [
        ({}, [0, 0, 0, 0.5, 1, 2, 7]),
        ({"max_value": 6}, [0, 0, 0, 0.5, 1, 2, 6]),
        ({"negative_slope": 0.5}, [-1, -0.25, 0, 0.5, 1, 2, 7]),
        # Keras: x above the threshold (not x - threshold), slope * (x - threshold) below it.
        ({"threshold": 1.0, "negative_slope": 0.5}, [-1.5, -0.75, -0.5, -0.25, 0, 2, 7]),
        ({"threshold": 0.5, "max_value": 1.5}, [0, 0, 0, 0, 1, 1.5, 1.5]),
    ]
    for attrs, want in cases:
        g = chain((7,), ("relu", attrs))
        np.testing.assert_array_equal(forward(g, x)[0], want, err_msg=str(attrs))


def test_activation__relu_takes_keras_relu_arguments():
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 1.0, 2.0, 7.0]])
    g = chain((7,), ("activation", {"activation": "relu", "threshold": 0.5, "max_value": 1.5}))
    np.testing.assert_array_equal(forward(g, x)[0], [0, 0, 0, 0, 1, 1.5, 1.5])


def test_leaky_relu__is_relu_with_a_negative_slope():
    g = chain((3,), ("leaky_relu", 0.1))
    node = g.node(g.outputs[0])
    assert node.op == "activation" and node.attrs["activation"] == "relu"
    assert node.attrs["negative_slope"] == 0.1
    np.testing.assert_allclose(forward(g, [[-2.0, 0.0, 3.0]])[0], [-0.2, 0, 3], rtol=1e-15)
    default = chain((1,), ("leaky_relu",))
    assert default.node(default.outputs[0]).attrs["negative_slope"] == 0.2  # Keras 3


def test_thresholded_relu__is_relu_with_a_threshold():
    g = chain((4,), ("thresholded_relu", 0.5))
    node = g.node(g.outputs[0])
    assert node.op == "activation" and node.attrs["threshold"] == 0.5
    np.testing.assert_array_equal(forward(g, [[-1.0, 0.5, 0.75, 3.0]])[0], [0, 0, 0.75, 3])
    default = chain((1,), ("ThresholdedReLU",))
    assert default.node(default.outputs[0]).attrs["threshold"] == 1.0  # Keras 2's theta


def test_activation__relu6_caps_at_six():
    g = chain((3,), ("activation", "relu6"))
    np.testing.assert_array_equal(forward(g, [[-1.0, 3.0, 9.0]])[0], [0, 3, 6])


# ---- the broadcasting merges and reshape (cnnc/ir/merges.py, reshapes.py)

GATE = np.array([[[[2.0, -1.0]]]])             # (1, 1, 1, 2): a squeeze-excite gate
MAP = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])   # (1, 1, 2, 2): an image of 2 channels


def merge(op, a, b, *more):
    shapes = {k: v.shape[1:] for k, v in zip("abc", (a, b, *more))}
    g = single_op(op, inputs=shapes)
    return g.node("out").shape, run(g, dict(zip("abc", (a, b, *more))))["out"]


def test_multiply__a_channel_gate_scales_every_pixel():
    shape, y = merge("multiply", MAP, GATE)
    assert shape == (None, 1, 2, 2)
    np.testing.assert_array_equal(y, [[[[2, -2], [6, -4]]]])


def test_multiply__a_vector_meets_the_last_axis():
    # Keras: a (N, C) input is seen as (N, 1, 1, C) against an (N, H, W, C) map
    shape, y = merge("multiply", MAP, np.array([[10.0, 100.0]]), np.array([[1.0, 2.0]]))
    assert shape == (None, 1, 2, 2)
    np.testing.assert_array_equal(y, [[[[10, 400], [30, 800]]]])


def test_subtract__first_minus_second_either_way_round():
    np.testing.assert_array_equal(merge("subtract", MAP, GATE)[1], [[[[-1, 3], [1, 5]]]])
    np.testing.assert_array_equal(merge("subtract", GATE, MAP)[1], [[[[1, -3], [-1, -5]]]])


def test_maximum__elementwise_larger_with_broadcast():
    np.testing.assert_array_equal(merge("maximum", MAP, GATE)[1], [[[[2, 2], [3, 4]]]])


def test_minimum__elementwise_smaller_over_three_inputs():
    y = merge("minimum", MAP, GATE, np.array([[[[0.0, 5.0]]]]))[1]
    np.testing.assert_array_equal(y, [[[[0, -1], [0, -1]]]])


def test_average__mean_of_the_inputs():
    np.testing.assert_array_equal(merge("average", MAP, GATE)[1], [[[[1.5, 0.5], [2.5, 1.5]]]])


def test_add__broadcasts_a_gate_like_the_other_merges():
    shape, y = merge("add", GATE, MAP)
    assert shape == (None, 1, 2, 2)
    np.testing.assert_array_equal(y, [[[[3, 1], [5, 3]]]])


@pytest.mark.parametrize("op", ["add", "multiply", "subtract", "maximum", "minimum", "average"])
def test_merges__refuse_shapes_that_do_not_broadcast(op):
    from cnnc.errors import CnncError
    with pytest.raises(CnncError, match=r"\(None, 4, 4, 8\) and \(None, 3\) do not broadcast: "
                       r"axis -1 has sizes 8 and 3"):
        single_op(op, inputs={"a": (4, 4, 8), "b": (3,)})


@pytest.mark.parametrize("source,target,want", [
    ((3,), (1, 1, 3), (None, 1, 1, 3)),
    ((1, 1, 3), (3,), (None, 3)),
    ((1, 1, 3), (1, -1), (None, 1, 3)),
    ((1, 3), (-1,), (None, 3)),
])
def test_reshape__adds_and_removes_size_one_axes_around_the_channels(source, target, want):
    g = chain(source, ("reshape", target))
    assert g.node("reshape").shape == want
    x = np.arange(3.0).reshape(1, *source)
    np.testing.assert_array_equal(forward(g, x).reshape(-1), [0, 1, 2])
# ---- resampling and transposed convolutions (cnnc/ir/resample.py, conv_transpose.py)


def test_cropping2d__cuts_the_borders_keras_argument_forms():
    g = chain((3, 4, 1), ("cropping2d", ((1, 0), (1, 2))))
    y = forward(g, img([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]))
    np.testing.assert_array_equal(y[0, :, :, 0], [[6], [10]])
    for given, want in ((1, ((1, 1), (1, 1))), ((1, 0), ((1, 1), (0, 0)))):
        assert chain((3, 3, 1), ("cropping2d", given)).node("cropping2d").attrs[
            "cropping"] == want


def test_upsampling2d__nearest_repeats_rows_and_columns():
    g = chain((2, 2, 1), ("upsampling2d", (2, 1)))
    y = forward(g, img([[1, 2], [3, 4]]))
    np.testing.assert_array_equal(y[0, :, :, 0], [[1, 2], [1, 2], [3, 4], [3, 4]])


def test_upsampling2d__bilinear_half_pixel_clamped_at_the_edges():
    # Output column o reads src = (o + 0.5) / 2 - 0.5: -0.25 (clamped to 0), 0.25, 0.75, 1.25
    # (its right neighbour clamped to column 1): 0, 0.75*0 + 0.25*4, 0.25*0 + 0.75*4, 4.
    g = chain((1, 2, 1), ("upsampling2d", (1, 2), {"interpolation": "bilinear"}))
    y = forward(g, img([[0, 4]]))
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 1, 3, 4]])


def test_conv2d_transpose__2x2_stride2_tiles_the_kernel_times_each_pixel():
    g = chain((2, 2, 1), ("conv2d_transpose", 1, 2, {"strides": 2, "use_bias": False}))
    k = np.array([[1.0, 10.0], [100.0, 1000.0]]).reshape(2, 2, 1, 1)
    y = forward(g, img([[1, 2], [3, 4]]), {"conv2d_transpose/kernel": k})
    np.testing.assert_array_equal(y[0, :, :, 0], [[1, 10, 2, 20], [100, 1000, 200, 2000],
                                                  [3, 30, 4, 40], [300, 3000, 400, 4000]])


def test_conv2d_transpose__same_stride2_keeps_the_first_rows_as_tensorflow():
    # Output column o = 2 i + t (no padding before, as TensorFlow's 'same' input gradient):
    # [1, 2, 3] from x = 1 at 0..2, [2, 4, 6] from x = 2 at 2..4, cut to 4 columns; + bias 1.
    g = chain((1, 2, 1), ("conv2d_transpose", 1, (1, 3), {"strides": (1, 2),
                                                          "padding": "same"}))
    k = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    y = forward(g, img([[1, 2]]), {"conv2d_transpose/kernel": k,
                                   "conv2d_transpose/bias": np.array([1.0])})
    np.testing.assert_array_equal(y[0, :, :, 0], [[2, 3, 6, 5]])


@pytest.mark.parametrize("n,k,s,padding,output_padding,dilation,want", [
    # Keras' deconv_output_length, by hand
    (5, 3, 2, "valid", None, 1, 11),   # n * s + max(k - s, 0)
    (5, 1, 3, "valid", None, 1, 15),   # max(k - s, 0) = 0
    (5, 3, 2, "same", None, 1, 10),    # n * s
    (5, 3, 2, "valid", 1, 1, 12),      # (n - 1) * s + k + output_padding
    (5, 3, 2, "same", 1, 1, 10),       # (n - 1) * s + k - 2 * (k // 2) + output_padding
    (5, 4, 2, "same", 0, 1, 8),        # an even kernel loses a row
    (4, 3, 1, "valid", None, 2, 8),    # dilated kernel spans 5
])
def test_conv2d_transpose__output_size_is_keras_deconv_output_length(
        n, k, s, padding, output_padding, dilation, want):
    keywords = {"strides": s, "padding": padding, "output_padding": output_padding,
                "dilation_rate": dilation}
    g = chain((n, n, 2), ("conv2d_transpose", 3, k, keywords))
    assert g.shape_of("conv2d_transpose") == (None, want, want, 3)


def test_conv2d_transpose__refuses_output_padding_not_below_the_stride():
    from cnnc.errors import CnncError

    with pytest.raises(CnncError, match="output_padding must be smaller than strides"):
        chain((3, 3, 1), ("conv2d_transpose", 1, 3, {"strides": 2, "output_padding": 2}))


def test_separable_conv2d__depthwise_then_pointwise_with_bias():
    # Channel 0 summed over the 2x2 window (10), channel 1's bottom-right tap (40), then
    # filter 0 = 1*a + 2*b + 1 (bias) and filter 1 = a - b.
    g = chain((2, 2, 2), ("separable_conv2d", 2, 2))
    x = np.array([[[1.0, 10.0], [2.0, 20.0]], [[3.0, 30.0], [4.0, 40.0]]])[None]
    dk = np.zeros((2, 2, 2, 1))
    dk[:, :, 0, 0] = 1.0
    dk[1, 1, 1, 0] = 1.0
    pk = np.array([[1.0, 1.0], [2.0, -1.0]]).reshape(1, 1, 2, 2)
    y = forward(g, x, {"separable_conv2d/depthwise_kernel": dk,
                       "separable_conv2d/pointwise_kernel": pk,
                       "separable_conv2d/bias": np.array([1.0, 0.0])})
    np.testing.assert_array_equal(y.reshape(-1), [91, -30])
    assert [s.shape for s in g.state] == [(2, 2, 2, 1), (1, 1, 2, 2), (2,)]


def test_every_layer_op_has_a_pinned_example():
    pinned = {name[5:].split("__")[0] for name in globals() if name.startswith("test_")}
    missing = set(op_names("layer")) - pinned
    assert not missing, f"layer ops without a hand-computed test: {sorted(missing)}"


# ---------------------------------------------------------------- layer norm, global max pooling,
# channel shuffle


def test_layer_norm__each_row_by_its_own_mean_and_variance():
    g = chain((2, 4), ("layer_norm", {"epsilon": 0.5}))
    w = {"layer_normalization/gamma": np.array([1.0, 2.0, 1.0, 2.0]),
         "layer_normalization/beta": np.array([0.0, 0.0, 1.0, 1.0])}
    # Row [1, 2, 3, 6]: mean 3, deviations -2 -1 0 3, variance 14/4 = 3.5, sqrt(3.5 + 0.5) = 2,
    # xhat -1 -0.5 0 1.5. Row [5, 5, 5, 5]: xhat 0 everywhere, so y = beta.
    y = forward(g, [[[1.0, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0]]], w)
    np.testing.assert_allclose(y, [[[-1, -1, 1, 4], [0, 0, 1, 1]]], rtol=1e-14)


def test_layer_norm__keras_defaults_and_parameters():
    g = chain((3, 3, 5), ("layer_norm",))
    (node,) = [n for n in g.nodes if n.op == "layer_norm"]
    assert node.attrs["epsilon"] == 1e-3 and node.attrs["axis"] == -1
    assert {s.name: (s.shape, s.init) for s in g.weights} == {
        "layer_normalization/gamma": ((5,), "ones"), "layer_normalization/beta": ((5,), "zeros")}
    plain = chain((2,), ("layer_norm", {"center": False, "scale": False, "epsilon": 1.0}))
    assert not plain.weights
    # [0, 2]: mean 1, variance 1, sqrt(1 + 1) = sqrt(2)
    np.testing.assert_allclose(forward(plain, [[0.0, 2.0]]), [[-1 / math.sqrt(2),
                                                               1 / math.sqrt(2)]])


def test_layer_norm__refuses_other_axes():
    from cnnc.errors import CnncError

    with pytest.raises(CnncError, match=r"only axis=-1 .*Received axis=1"):
        chain((3, 3, 2), ("layer_norm", {"axis": 1}))


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_maxpool2d__max_of_height_and_width(keepdims):
    g = chain((2, 2, 2), ("global_maxpool2d", {"keepdims": keepdims}))
    x = np.array([[[[1.0, -8.0], [7.0, -2.0]], [[3.0, -5.0], [-1.0, -9.0]]]])
    y = forward(g, x)
    assert y.shape == ((1, 1, 1, 2) if keepdims else (1, 2))
    np.testing.assert_array_equal(y.ravel(), [7, -2])


@pytest.mark.parametrize(("groups", "want"), [(2, [0, 3, 1, 4, 2, 5]),
                                              (3, [0, 2, 4, 1, 3, 5])])
def test_channel_shuffle__six_channels(groups, want):
    # 2 groups: (2, 3) [[0 1 2] [3 4 5]] transposed to (3, 2) [[0 3] [1 4] [2 5]];
    # 3 groups: (3, 2) [[0 1] [2 3] [4 5]] transposed to (2, 3) [[0 2 4] [1 3 5]].
    g = chain((1, 2, 6), ("channel_shuffle", groups))
    x = np.arange(6.0)[None, None, None, :] + np.array([0.0, 10.0])[None, None, :, None]
    y = forward(g, x)
    np.testing.assert_array_equal(y[0, 0, 0], want)
    np.testing.assert_array_equal(y[0, 0, 1], np.array(want) + 10)


def test_channel_shuffle__inverse_is_the_shuffle_by_the_other_factor():
    g = chain((12,), ("channel_shuffle", 3), ("channel_shuffle", 4))
    x = np.arange(12.0)[None]
    np.testing.assert_array_equal(forward(g, x), x)


def test_channel_shuffle__channels_must_divide_into_groups():
    from cnnc.errors import CnncError

    with pytest.raises(CnncError, match=r"5 channels .* not a multiple of groups=2"):
        chain((3, 3, 5), ("channel_shuffle", 2))
    with pytest.raises(CnncError, match=r"groups"):
        chain((3, 3, 4), ("channel_shuffle", 0))


# ---------------------------------------------------------------- channel slice


def test_channel_slice__a_contiguous_range_of_channels():
    g = chain((1, 2, 5), ("channel_slice", 1, 4))
    x = np.arange(5.0)[None, None, None, :] + np.array([0.0, 10.0])[None, None, :, None]
    y = forward(g, x)
    assert y.shape == (1, 1, 2, 3)
    np.testing.assert_array_equal(y[0, 0], [[1, 2, 3], [11, 12, 13]])


def test_channel_slice__the_two_halves_of_a_split_concatenate_back_in_any_front_end():
    from cnnc.frontend.spec import load_spec
    from cnnc.frontend.yaml_spec import load_yaml

    spec = {"network": "split", "input": [1, 1, 4], "layers": [
        {"channel_slice": [2, 4], "name": "hi"},
        {"channel_slice": {"start": 0, "stop": 2}, "name": "lo", "inputs": ["input_layer"]},
        {"concatenate": None, "inputs": ["hi", "lo"]}]}
    yaml = ("network: split\ninput: [1, 1, 4]\nlayers:\n"
            "  - {channel_slice: [2, 4], name: hi}\n"
            "  - {channel_slice: [0, 2], name: lo, inputs: [input_layer]}\n"
            "  - {concatenate: null, inputs: [hi, lo]}\n")
    x = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 1, 4)
    for g in (load_spec(spec), load_yaml(yaml)):
        np.testing.assert_array_equal(forward(g, x).ravel(), [3, 4, 1, 2])


def test_channel_slice__refuses_empty_and_out_of_range():
    from cnnc.errors import CnncError

    with pytest.raises(CnncError, match=r"stop > start.*start=3, stop=3"):
        chain((2, 2, 4), ("channel_slice", 3, 3))
    with pytest.raises(CnncError, match=r"channels 2:6 run past the input's 4 channels"):
        chain((2, 2, 4), ("channel_slice", 2, 6))
    with pytest.raises(CnncError, match=r"start"):
        chain((2, 2, 4), ("channel_slice", -1, 2))


# ---------------------------------------------------------------- preprocessing layers
# (cnnc/ir/preprocessing.py)


def _initial(g):
    """The weights a graph starts from (normalization's given mean and variance)."""
    from cnnc.initializers import initial_values

    return initial_values(g.weights, seed=0, dtype="float64")


def test_rescaling__scale_then_offset():
    g = chain((2, 1, 2), ("rescaling", 0.5, -1.0))
    # Keras' Rescaling: y = x * scale + offset; [0, 2, 255, -4] * 0.5 - 1.
    y = forward(g, [[[[0.0, 2.0]], [[255.0, -4.0]]]])
    np.testing.assert_array_equal(y.ravel(), [-1.0, 0.0, 126.5, -3.0])
    assert not g.weights


def test_rescaling__offset_defaults_to_zero_and_pixels_to_the_unit_interval():
    g = chain((3,), ("rescaling", 1 / 255))
    np.testing.assert_allclose(forward(g, [[0.0, 51.0, 255.0]]), [[0.0, 0.2, 1.0]], rtol=1e-15)


def test_normalization__per_channel_mean_and_variance():
    g = chain((1, 2, 3), ("normalization", {"mean": [1.0, -2.0, 0.5], "variance": [4.0, 0.25,
                                                                                   0.0]}))
    # (x - mean) / max(sqrt(var), 1e-7): channel 0 / 2, channel 1 / 0.5, channel 2 / 1e-7.
    x = [[[[3.0, -2.0, 0.5], [-1.0, -1.0, 0.5000001]]]]
    y = forward(g, x, _initial(g))
    np.testing.assert_allclose(y[0, 0], [[1.0, 0.0, 0.0], [-1.0, 2.0, 1.0]], rtol=1e-8)
    assert {s.name: (s.shape, s.trainable) for s in g.weights} == {
        "normalization/mean": ((3,), False), "normalization/variance": ((3,), False)}


def test_normalization__one_value_for_every_channel_and_weights_override():
    g = chain((2,), ("normalization", {"mean": 3.0, "variance": 9.0}))
    np.testing.assert_allclose(forward(g, [[6.0, 0.0]], _initial(g)), [[1.0, -1.0]])
    w = {"normalization/mean": np.array([1.0, 2.0]),
         "normalization/variance": np.array([1.0, 16.0])}
    np.testing.assert_allclose(forward(g, [[6.0, 0.0]], w), [[5.0, -0.5]])


def test_normalization__without_values_adapts_and_starts_as_the_identity():
    from cnnc.ir.preprocessing import adapts

    g = chain((2,), ("normalization",))
    (node,) = [n for n in g.nodes if n.op == "normalization"]
    assert adapts(node.attrs)
    np.testing.assert_array_equal(forward(g, [[6.0, -1.0]], _initial(g)), [[6.0, -1.0]])
    (fixed,) = [n for n in chain((2,), ("normalization", {"adapt": False})).nodes
                if n.op == "normalization"]
    assert not adapts(fixed.attrs)


def test_normalization__refusals():
    from cnnc.errors import CnncError

    with pytest.raises(CnncError, match=r"give both mean and variance, or neither"):
        chain((2,), ("normalization", {"mean": 1.0}))
    with pytest.raises(CnncError, match=r"adapt=true computes mean and variance"):
        chain((2,), ("normalization", {"mean": 1.0, "variance": 1.0, "adapt": True}))
    with pytest.raises(CnncError, match=r"variance has 3 values, but the input has 2 channels"):
        chain((2,), ("normalization", {"mean": 0.0, "variance": [1.0, 2.0, 3.0]}))
    with pytest.raises(CnncError, match=r"Expected variances >= 0"):
        chain((2,), ("normalization", {"mean": 0.0, "variance": -1.0}))
    with pytest.raises(CnncError, match=r"only axis=-1"):
        chain((2, 2, 2), ("normalization", {"axis": 1}))
    with pytest.raises(CnncError, match=r"Expected a number"):
        chain((2,), ("rescaling", "x"))


# ---------------------------------------------------------------- local response normalisation


def test_lrn__divides_by_a_power_of_the_windows_sum_of_squares():
    # size 3, alpha 3 (alpha/size = 1), beta 1, bias 1 over channels [1, 2, 3]: the divisors are
    # 1 + 1 + 4 = 6 (window clipped at the start), 1 + 1 + 4 + 9 = 15, 1 + 4 + 9 = 14 (clipped
    # at the end).
    g = chain((1, 1, 3), ("lrn", 3, {"alpha": 3.0, "beta": 1.0, "bias": 1.0}))
    y = forward(g, [[[[1.0, 2.0, 3.0]]]])
    np.testing.assert_allclose(y.reshape(-1), [1 / 6, 2 / 15, 3 / 14], rtol=1e-15)
    # size 1, beta 0.5, bias 9: 4 / sqrt(9 + 16) = 0.8; 0 stays 0.
    g = chain((2,), ("lrn", 1, {"alpha": 1.0, "beta": 0.5, "bias": 9.0}))
    np.testing.assert_allclose(forward(g, [[4.0, 0.0]]), [[0.8, 0.0]], rtol=1e-15)
    # size 5 over 2 channels: every window holds both; alpha/size = 1, so d = 1 + 1 + 4.
    g = chain((2,), ("lrn", 5, {"alpha": 5.0, "beta": 1.0}))
    np.testing.assert_allclose(forward(g, [[1.0, 2.0]]), [[1 / 6, 1 / 3]], rtol=1e-15)


def test_lrn__onnx_defaults_and_names():
    g = chain((3, 3, 4), ("local_response_normalization", 5))
    (node,) = [n for n in g.nodes if n.op == "lrn"]
    assert node.name == "lrn" and not g.weights
    assert (node.attrs["alpha"], node.attrs["beta"], node.attrs["bias"]) == (1e-4, 0.75, 1.0)


@pytest.mark.parametrize("keywords,message", [
    ({"size": 4}, r"Expected an odd number of channels .*Received size=4"),
    ({"size": 0}, r"Expected a strictly positive integer. Received size=0"),
    ({"size": 3, "bias": 0.0}, r"Received bias=0.0"),
    ({"size": 3, "alpha": -1.0}, r"Received alpha=-1.0"),
])
def test_lrn__refuses_even_windows_and_bad_constants(keywords, message):
    from cnnc.errors import CnncError

    with pytest.raises(CnncError, match=message):
        chain((3, 3, 4), ("lrn", keywords))
