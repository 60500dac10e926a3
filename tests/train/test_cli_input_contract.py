"""The command line's loaders on the one input contract (cnnc/inputs.py): `cnnc run --data`
(.npz, .npy folder), `cnnc eval` and `cnnc predict` (.npy, .npz, IDX) refuse integer, NaN,
out-of-range and misshapen images with the text Python's fit/predict use, hints naming files
and the spec, and exit status 2; a spec that rescales its input takes integer pixels everywhere,
and float pixels in a file ([0, 1]) reach it scaled exactly once.

The probe model sums its four scaled pixels into class 0's logit (class 1's is 0): pixels of
255 give logits (4, 0), probability 1/(1 + e^-4) for class 0
(tests/train/test_no_double_scaling.py).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import cnnc
from cnnc.cli import main
from cnnc.data import write_idx
from cnnc.errors import CnncError

PLAIN = "input 2x2x1\nflatten\ndense 2 softmax\ntrain {\n  epochs 1\n  batch_size 2\n}\n"
RESCALED = PLAIN.replace("flatten", "rescaling 0.00392156862745098\nflatten")
INTEGERS = "expects floating-point values, received int64"
FILE_HINT = ("save 8-bit pixels as uint8 (cnnc divides them by 255) or floats in [0, 1], or "
             "start the spec with `rescaling 0.00392156862745098` to feed it 0-255 values")
PYTHON_HINT = "convert explicitly, e.g. x.astype('float32') / 255 for 8-bit images"
P_CLASS0 = 1.0 / (1.0 + math.exp(-4.0))


def _pixels(n: int, dtype=np.int64) -> np.ndarray:
    return (np.arange(n * 4).reshape(n, 2, 2) * 7 % 256).astype(dtype)


def _npz(path, x_train=None, x_test=None):
    np.savez(path, x_train=_pixels(6, np.uint8) if x_train is None else x_train,
             y_train=np.arange(6) % 2, x_test=_pixels(2, np.uint8) if x_test is None else x_test,
             y_test=np.array([0, 1]))
    return path


def _saved(tmp_path, text: str, probe: bool = False):
    spec = tmp_path / "net.cnn"
    spec.write_text(text)
    model = cnnc.compile(text, backend="numpy")
    if probe:
        weights = model.get_weights()
        weights[next(k for k in weights if k.endswith("kernel"))] = np.array([[1.0, 0.0]] * 4,
                                                                             np.float32)
        weights[next(k for k in weights if k.endswith("bias"))] = np.zeros(2, np.float32)
        model.set_weights(weights)
    weights_file = tmp_path / "w.safetensors"
    model.save_weights(str(weights_file))
    return spec, weights_file


def _cli(capsys, *argv) -> tuple[int, str]:
    status = main([*map(str, argv), "--backend", "numpy"])
    return status, capsys.readouterr().err


def test_python_and_cnnc_run_refuse_integer_images_with_one_message(tmp_path, capsys):
    model = cnnc.compile(PLAIN, backend="numpy")
    with pytest.raises(CnncError) as info:
        model.fit(_pixels(6), np.arange(6) % 2, verbose=0)
    assert info.value.render() == f"input 'input_layer' {INTEGERS}; {PYTHON_HINT}"
    spec = tmp_path / "net.cnn"
    spec.write_text(PLAIN)
    data = _npz(tmp_path / "d.npz", x_train=_pixels(6))
    status, err = _cli(capsys, "run", spec, "--data", data, "--out", tmp_path / "run",
                       "--progress", "off")
    assert status == 2
    assert err == f"cnnc: error: {data}: x_train {INTEGERS}; {FILE_HINT}\n"
    # Python reading the same file (fit(data_dir=)) meets the same refusal.
    with pytest.raises(CnncError) as info:
        model.fit(data_dir=data, verbose=0)
    assert info.value.render() == f"{data}: x_train {INTEGERS}; {FILE_HINT}"


def test_cnnc_run_on_an_npy_folder_refuses_nan_like_python(tmp_path, capsys):
    folder = tmp_path / "arrays"
    folder.mkdir()
    x = np.full((6, 2, 2), 0.5, np.float32)
    x[3, 1, 0] = np.nan
    for name, array in (("x_train", x), ("y_train", np.arange(6) % 2),
                        ("x_test", x[:2]), ("y_test", np.array([0, 1]))):
        np.save(folder / f"{name}.npy", array)
    spec = tmp_path / "net.cnn"
    spec.write_text(PLAIN)
    status, err = _cli(capsys, "run", spec, "--data", folder, "--out", tmp_path / "run",
                       "--progress", "off")
    nan = "contains 1 NaN or infinite value(s), the first at index (3, 1, 0)"
    assert status == 2 and err == f"cnnc: error: {folder}/: x_train {nan}\n"
    with pytest.raises(CnncError, match=r"^input 'input_layer' contains 1 NaN or infinite "
                                        r"value\(s\), the first at index \(3, 1, 0, 0\)$"):
        cnnc.compile(PLAIN, backend="numpy").predict(x[..., None])


def test_cnnc_eval_refuses_unscaled_float_pixels(tmp_path, capsys):
    spec, weights = _saved(tmp_path, PLAIN)
    data = _npz(tmp_path / "d.npz", x_test=_pixels(2).astype(np.float32))
    status, err = _cli(capsys, "eval", spec, "--weights", weights, "--data", data)
    assert status == 2
    assert err == (f"cnnc: error: {data}: x_test ranges over [0, 49]; float images must be in "
                   "[0, 1]; save uint8 pixels (0-255), or divide by 255\n")


@pytest.mark.parametrize("suffix", [".npy", ".npz", "-idx3-ubyte"])
def test_cnnc_predict_refuses_integer_arrays_in_every_format(tmp_path, capsys, suffix):
    spec, weights = _saved(tmp_path, PLAIN)
    path = tmp_path / f"x{suffix}"
    x = _pixels(3, np.int32)  # IDX holds int32 too
    if suffix == ".npy":
        np.save(path, x)
    elif suffix == ".npz":
        np.savez(path, x_test=x)
    else:
        write_idx(path, x)
    status, err = _cli(capsys, "predict", spec, "--weights", weights, path)
    assert status == 2
    assert err == (f"cnnc: error: {path}: input 'input_layer' expects floating-point values, "
                   f"received int32; {FILE_HINT}\n")


def test_cnnc_predict_refuses_a_misshapen_array_like_python(tmp_path, capsys):
    spec, weights = _saved(tmp_path, PLAIN)
    np.save(tmp_path / "x.npy", np.zeros((3, 2, 3), np.float32))
    status, err = _cli(capsys, "predict", spec, "--weights", weights, tmp_path / "x.npy")
    assert status == 2
    assert err == (f"cnnc: error: {tmp_path / 'x.npy'}: input 'input_layer' expects shape "
                   "(N, 2, 2, 1), received (3, 2, 3); give one 2x2 image or a stack N x 2x2\n")
    with pytest.raises(CnncError, match=r"^input 'input_layer' expects shape \(N, 2, 2, 1\), "
                                        r"received \(3, 2, 3\)$"):
        cnnc.compile(PLAIN, backend="numpy").predict(np.zeros((3, 2, 3), np.float32))


def _class0(capsys, spec, weights, *inputs) -> list[float]:
    status = main(["predict", str(spec), "--weights", str(weights), "--backend", "numpy",
                   "--json", *map(str, inputs)])
    out = capsys.readouterr()
    assert status == 0, out.err
    return [next(t["probability"] for t in row["top"] if t["class"] == 0)
            for row in json.loads(out.out)]


def test_a_spec_that_rescales_takes_integer_and_float_pixels_scaled_once(tmp_path, capsys):
    spec, weights = _saved(tmp_path, RESCALED, probe=True)
    np.save(tmp_path / "ints.npy", np.full((1, 2, 2), 255, np.int64))
    np.save(tmp_path / "floats.npy", np.ones((1, 2, 2), np.float32))  # a file's [0, 1] pixels
    got = _class0(capsys, spec, weights, tmp_path / "ints.npy", tmp_path / "floats.npy")
    assert got == pytest.approx([P_CLASS0, P_CLASS0], rel=1e-5)
    np.save(tmp_path / "wide.npy", np.full((1, 2, 2), 256, np.int64))
    status, err = _cli(capsys, "predict", spec, "--weights", weights, tmp_path / "wide.npy")
    assert status == 2
    assert err == (f"cnnc: error: {tmp_path / 'wide.npy'}: input 'input_layer' ranges over "
                   "[256, 256]; integer pixels must be in [0, 255]\n")
    # cnnc run and fit(data_dir=) read a float .npz for it as 0..255 values too.
    from cnnc.data.dataset import load_configured, raw_pixels
    from cnnc.train.fit import input_shape, prepare_data

    model = cnnc.compile(RESCALED, backend="numpy")
    data = _npz(tmp_path / "d.npz", x_train=np.ones((6, 2, 2), np.float32),
                x_test=np.full((2, 2, 2), 255, np.int16))
    dataset = load_configured(model.train_config, data, input_shape(model),
                              raw=raw_pixels(model.graph))
    prepared = prepare_data(model.train_config, dataset, input_shape(model),
                            raw=raw_pixels(model.graph))
    np.testing.assert_array_equal(np.asarray(prepared.train.x), np.full((6, 2, 2, 1), 255.0))
    np.testing.assert_array_equal(np.asarray(prepared.test.x), np.full((2, 2, 2, 1), 255.0))
