"""Weights files: safetensors round trips, and clear errors for files that do not fit."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.errors import WeightsError
from cnnc.model import compile_model
from cnnc.testing.nets import chain
from cnnc.weights import load_arrays, save_arrays


def small():
    return compile_model(chain((4, 4, 1), ("conv2d", 2, 3), ("flatten",), ("dense", 3),
                               name="small"), seed=1)


def test_save_and_load_round_trip(tmp_path, rng):
    a, b = small(), compile_model(chain((4, 4, 1), ("conv2d", 2, 3), ("flatten",), ("dense", 3),
                                        name="small"), seed=2)
    path = tmp_path / "w.safetensors"
    a.save_weights(str(path))
    b.load_weights(str(path))
    x = rng.normal(size=(2, 4, 4, 1)).astype(np.float32)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    assert path.read_bytes()[8:9] == b"{"  # a safetensors JSON header, not a pickle
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed away


def test_truncated_and_corrupt_files(tmp_path):
    model = small()
    path = tmp_path / "w.safetensors"
    model.save_weights(str(path))
    data = path.read_bytes()
    for name, content in [("cut.safetensors", data[:-7]), ("head.safetensors", data[:20]),
                          ("junk.safetensors", b"\x80\x04pickle?" * 10),
                          ("empty.safetensors", b"")]:
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(WeightsError, match=f"'{bad}' is not a readable safetensors file"):
            model.load_weights(str(bad))
    with pytest.raises(WeightsError, match="no weights file"):
        model.load_weights(str(tmp_path / "missing.safetensors"))


def test_a_file_for_another_network(tmp_path):
    other = compile_model(chain((4, 4, 1), ("conv2d", 5, 3), ("flatten",), ("dense", 3),
                                ("dense", 2), name="other"))
    path = tmp_path / "other.safetensors"
    other.save_weights(str(path))
    with pytest.raises(WeightsError) as info:
        small().load_weights(str(path))
    msg = info.value.message
    assert f"'{path}' holds weights of network 'other', not 'small', and they do not fit" in msg
    assert "unexpected 'dense_1/bias', 'dense_1/kernel'" in msg
    assert "'conv2d/kernel' has shape (3, 3, 1, 5), expected (3, 3, 1, 2)" in msg


def test_a_safetensors_file_not_written_by_cnnc(tmp_path):
    path = tmp_path / "x.safetensors"
    save_arrays(path, {"weight": np.zeros(3, np.float32)})
    with pytest.raises(WeightsError, match="missing .*unexpected 'weight'.*not written by cnnc"):
        small().load_weights(str(path))


def test_arrays_and_metadata_round_trip(tmp_path):
    path = tmp_path / "state.safetensors"
    save_arrays(path, {"a/b": np.arange(6.0).reshape(2, 3), "step": np.array(4, np.int64)},
                {"epoch": 2})
    arrays, meta = load_arrays(path)
    assert meta == {"epoch": "2"} and int(arrays["step"]) == 4
    np.testing.assert_array_equal(arrays["a/b"], np.arange(6.0).reshape(2, 3))


def test_writing_into_a_missing_folder(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        small().save_weights(str(tmp_path / "nope" / "w.safetensors"))


def test_a_long_list_of_problems_is_cut_short():
    from cnnc.weights import check_arrays

    expected = {f"layer_{i}/kernel": (2, 2) for i in range(20)}
    given = {f"other_{i}/kernel": np.zeros((2, 2)) for i in range(9)}
    given.update({f"layer_{i}/kernel": np.zeros((3, 3)) for i in range(10, 20)})
    with pytest.raises(WeightsError) as info:
        check_arrays(expected, given)
    msg = info.value.message
    assert "missing 'layer_0/kernel', 'layer_1/kernel'" in msg and "and 4 more;" in msg
    assert "unexpected 'other_0/kernel'" in msg and "and 3 more;" in msg
    assert msg.endswith("6 more problems")
    assert msg.count("has shape") == 4
