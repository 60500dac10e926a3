"""Bad arguments and shapes of the transposed, separable and resampling layers: located errors
naming the layer, the argument, the expectation and the value."""

from __future__ import annotations

import pytest

from cnnc.errors import CnncError
from cnnc.testing.nets import chain


@pytest.mark.parametrize("layer,message", [
    (("cropping2d", ((2, 2), (0, 0))),
     r"cropping2d: cropping \(\(2, 2\), \(0, 0\)\) leaves nothing of a 4x4x1 input"),
    (("cropping2d", -1), r"cropping2d: Expected a non-negative integer.*Received cropping=-1"),
    (("upsampling2d", 0), r"up_sampling2d: Expected a positive integer.*Received size=0"),
    (("upsampling2d", 2, {"interpolation": "bicubic"}),
     r"up_sampling2d: Expected one of 'nearest', 'bilinear'. Received interpolation='bicubic'"),
    (("conv2d_transpose", 2, 3, {"strides": 2, "output_padding": 3}),
     r"output_padding must be smaller than strides.*output_padding=\(3, 3\), strides=\(2, 2\)"),
    (("conv2d_transpose", 2, 3, {"strides": 2, "dilation_rate": 2}),
     "strides > 1 is not supported together with dilation_rate > 1"),
    (("conv2d_transpose", 2, 3, {"activation": "softmax"}),
     "element-wise activations only. Received activation=softmax"),
    (("separable_conv2d", 2, 5), r"5x5 kernel does not fit a 4x4x1 input with padding 'valid'"),
    (("separable_conv2d", 0, 3),
     r"separable_conv2d: Expected a strictly positive integer. Received filters=0"),
])
def test_bad_layers_are_refused_with_the_argument_and_value(layer, message):
    with pytest.raises(CnncError, match=message):
        chain((4, 4, 1), layer)


def test_a_transposed_convolution_with_no_output_is_refused():
    # An even kernel with 'same' and output_padding 0 loses a row per Keras' formula: a 1x1
    # input gives a 0x0 output.
    with pytest.raises(CnncError, match=r"a 1x1 input gives a 0x0 output"):
        chain((1, 1, 2), ("conv2d_transpose", 2, 2, {"strides": 2, "padding": "same",
                                                     "output_padding": 0}))
