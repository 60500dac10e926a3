"""One input contract for fit, evaluate, predict and train_step (cnnc/inputs.py), and Keras'
validation semantics in fit: validation_data replaces the split, validation_split takes the
last part, fit says what it trains and validates on, and its hints name Python arguments."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.errors import CnncError, InputError

SPEC = """network tiny
input 4x4x1
flatten
dense 3 softmax
train {
  epochs 1
  batch_size 4
  validation_split 0.25
}
"""
RESCALED = SPEC.replace("flatten", "rescaling 0.00392156862745098\nflatten")
UINT8 = ("input 'input_layer' expects floating-point values, received uint8; convert "
         "explicitly, e.g. x.astype('float32') / 255 for 8-bit images")


def _pixels(n: int = 8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 4, 4, 1)).astype(np.uint8)


def _labels(n: int = 8) -> np.ndarray:
    return np.arange(n) % 3


@pytest.mark.parametrize("entry", ["fit", "evaluate", "predict", "train_step",
                                   "validation_data"])
def test_every_entry_point_refuses_unscaled_uint8_images_with_one_message(entry):
    model = cnnc.compile(SPEC, backend="numpy")
    x, y = _pixels(), _labels()
    good = x.astype(np.float32) / 255
    calls = {
        "fit": lambda: model.fit(x, y, verbose=0),
        "evaluate": lambda: model.evaluate(x, y, verbose=0),
        "predict": lambda: model.predict(x),
        "train_step": lambda: model.train_step(x, y),
        "validation_data": lambda: model.fit(good, y, validation_data=(x, y), verbose=0),
    }
    with pytest.raises(InputError) as info:
        calls[entry]()
    assert info.value.render() == UINT8
    assert model.step == 0  # refused before any step


def test_every_entry_point_checks_shape_and_values_alike():
    model = cnnc.compile(SPEC, backend="numpy")
    y = _labels()
    wrong = np.zeros((8, 5, 4, 1), np.float32)
    for call in (lambda: model.fit(wrong, y, verbose=0),
                 lambda: model.evaluate(wrong, y, verbose=0), lambda: model.predict(wrong)):
        with pytest.raises(InputError, match=r"^input 'input_layer' expects shape "
                                             r"\(N, 4, 4, 1\), received \(8, 5, 4, 1\)$"):
            call()
    bad = np.zeros((8, 4, 4, 1), np.float32)
    bad[2, 1, 0, 0] = np.nan
    for call in (lambda: model.fit(bad, y, verbose=0),
                 lambda: model.evaluate(bad, y, verbose=0), lambda: model.train_step(bad, y)):
        with pytest.raises(InputError, match=r"contains 1 NaN or infinite value\(s\), the "
                                             r"first at index \(2, 1, 0, 0\)"):
            call()


def test_a_network_that_rescales_its_input_takes_uint8_everywhere():
    model = cnnc.compile(RESCALED, backend="numpy")
    x, y = _pixels(), _labels()
    twin = cnnc.compile(RESCALED, backend="numpy")
    model.fit(x, y, verbose=0)
    twin.fit(x.astype(np.float32), y, verbose=0)  # the same values as floats: the same run
    for name, value in model.get_weights().items():
        np.testing.assert_array_equal(value, twin.get_weights()[name])
    assert model.evaluate(x, y, verbose=0).loss == twin.evaluate(x.astype(np.float32), y,
                                                                 verbose=0).loss


def test_validation_data_replaces_the_specs_split(capsys):
    model = cnnc.compile(SPEC, backend="numpy")  # the spec holds out 25%
    rng = np.random.default_rng(1)
    x, y = rng.random((12, 4, 4, 1), dtype=np.float32), np.arange(12) % 3
    xv, yv = rng.random((5, 4, 4, 1), dtype=np.float32), np.arange(5) % 3
    history = model.fit(x, y, validation_data=(xv, yv))
    assert model.step == 3  # all 12 examples trained, batches of 4: nothing held out
    assert history.epochs[0]["val_loss"] == pytest.approx(model.evaluate(xv, yv,
                                                                         verbose=0).loss)
    assert "training on 12 examples, validating on 5 (validation_data)" in capsys.readouterr().out


def test_validation_split_holds_out_the_last_part_and_says_so(capsys):
    model = cnnc.compile(SPEC, backend="numpy")
    rng = np.random.default_rng(2)
    x, y = rng.random((20, 4, 4, 1), dtype=np.float32), np.arange(20) % 3
    history = model.fit(x, y, validation_split=0.1)
    assert model.step == 5  # 18 examples in batches of 4
    assert history.epochs[0]["val_loss"] == pytest.approx(
        model.evaluate(x[18:], y[18:], verbose=0).loss)
    out = capsys.readouterr().out
    assert "training on 18 examples, validating on 2 (the last 0.1 of x, validation_split)" in out


def test_fits_hints_name_python_arguments_not_flags():
    model = cnnc.compile(SPEC.replace("validation_split 0.25", "validation_size 50"),
                         backend="numpy")
    x, y = np.zeros((12, 4, 4, 1), np.float32), np.arange(12) % 3
    with pytest.raises(CnncError) as info:
        model.fit(x, y, verbose=0)
    text = info.value.render()
    assert "cannot hold out 50 validation examples from 12" in text and "--" not in text
    # validation_data given: nothing is held out, so the same call trains
    model.fit(x, y, validation_data=(x[:3], y[:3]), verbose=0)
    with pytest.raises(InputError, match=r"^limit must be a positive number of examples, "
                                         r"got 0$"):
        model.fit(x, y, limit=0, verbose=0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's, on the overflowing values
def test_a_diverged_fit_names_pythons_learning_rate_not_the_flag():
    model = cnnc.compile(SPEC.replace("batch_size 4", "batch_size 4\n  optimizer sgd "
                                      "learning_rate=1e30"), backend="numpy")
    x = np.random.default_rng(3).random((16, 4, 4, 1), dtype=np.float32) * 1e6
    with pytest.raises(CnncError) as info:
        model.fit(x, np.arange(16) % 3, verbose=0)
    text = info.value.render()
    assert "the training loss became" in text
    assert "lower the learning rate (cnnc.compile(..., learning_rate=))" in text
    assert "--lr" not in text


def test_a_missing_dataset_names_data_dir(tmp_path):
    model = cnnc.compile(SPEC, backend="numpy")
    with pytest.raises(CnncError) as info:
        model.fit(data_dir=tmp_path, verbose=0)
    text = info.value.render()
    assert "the folder given as data_dir" in text and "--data" not in text
