"""A model whose input only rescaling layers read takes uint8 images as they are (cnnc/inputs.py
with cnnc.ir.preprocessing.rescaled_inputs); any other model still refuses integer images."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.errors import InputError
from cnnc.ir.preprocessing import rescaled_inputs

RESCALED = "input 3x3x1\nrescaling 0.00392156862745098\nflatten\ndense 2 softmax"


def test_uint8_pixels_give_what_their_float_values_give():
    model = cnnc.compile(RESCALED, backend="numpy")
    pixels = np.random.default_rng(0).integers(0, 256, (4, 3, 3, 1)).astype(np.uint8)
    np.testing.assert_array_equal(model.predict(pixels), model.predict(pixels.astype(np.float32)))
    loss = model.train_step(pixels, np.array([0, 1, 0, 1]))
    assert np.isfinite(loss)


def test_only_inputs_read_by_rescaling_alone_take_integers():
    assert rescaled_inputs(cnnc.load_spec(RESCALED)) == {"input_layer"}
    # read by a rescaling and by another layer: the other layer would see 0..255
    both = cnnc.load_spec("input 4\nr: rescaling 0.5\nd: dense(input_layer) 4\nadd(r, d)")
    assert rescaled_inputs(both) == frozenset()
    model = cnnc.compile("input 3x3x1\nflatten\ndense 2", backend="numpy")
    with pytest.raises(InputError, match=r"expects floating-point values, received uint8"):
        model.predict(np.zeros((1, 3, 3, 1), np.uint8))
