"""CIFAR's python pickles are read by a restricted unpickler: plain data and uint8 arrays only,
and a pickle carrying code is refused without running it."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from cnnc.data.safe_pickle import load_data_pickle
from cnnc.errors import DataError


class _RunsCode:
    """Unpickling this calls os.system: what a hostile 'CIFAR batch' would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Evals:
    def __reduce__(self):
        return (eval, ("1 + 1",))


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_a_pickle_carrying_code_is_refused_without_running_it(tmp_path, protocol):
    marker = tmp_path / "ran"
    data = pickle.dumps({b"data": _RunsCode(marker), b"labels": [1]}, protocol=protocol)
    # Proof that this pickle does run code under pickle.loads (in a scratch folder):
    pickle.loads(pickle.dumps(_RunsCode(tmp_path / "proof"), protocol=protocol))
    assert (tmp_path / "proof").exists()
    with pytest.raises(DataError, match=r"batch_1: refused as a CIFAR python batch: .*"
                                        r"(posix|os)\.system"):
        load_data_pickle(data, "data_batch_1")
    assert not marker.exists()


@pytest.mark.parametrize("payload, refers", [
    (_Evals(), r"__builtin__\.eval"),  # protocol 2 names builtins as Python 2 did
    (np.zeros(3, np.float64), "only uint8"),  # an array, but not of uint8
    (np.asfortranarray(np.zeros((2, 3), np.uint8)), "Fortran"),
])
def test_other_globals_and_arrays_are_refused(payload, refers):
    with pytest.raises(DataError, match=refers):
        load_data_pickle(pickle.dumps({b"x": payload}, protocol=2), "batch")


def test_ndarray_may_not_be_built_directly():
    # GLOBAL numpy ndarray, then (2,) REDUCE: calling ndarray itself is refused.
    data = b"\x80\x02cnumpy\nndarray\nK\x02\x85R."
    with pytest.raises(DataError, match="numpy.ndarray may only appear"):
        load_data_pickle(data, "batch")


def test_plain_data_and_uint8_arrays_load():
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    value = {b"data": array, b"labels": [0, 1, 2], "names": ["a", b"b"], b"n": 3, b"f": 0.5,
             b"t": (1, None)}
    for protocol in (0, 2, 3, 4):
        out = load_data_pickle(pickle.dumps(value, protocol=protocol), "batch")
        np.testing.assert_array_equal(out[b"data"], array)
        assert out[b"data"].dtype == np.uint8
        assert {k: v for k, v in out.items() if k != b"data"} == \
            {k: v for k, v in value.items() if k != b"data"}


def test_python_2_pickles_as_cifar_was_written():
    # A Python 2 cPickle of {'data': uint8 array (1, 2), 'labels': [7]}: str keys are bytes
    # (encoding='bytes'), the array's raw data a SHORT_BINSTRING, its dtype 'u1'.
    data = (b"\x80\x02}q\x01(U\x04dataq\x02cnumpy.core.multiarray\n_reconstruct\nq\x03"
            b"cnumpy\nndarray\nq\x04K\x00\x85U\x01b\x87Rq\x05(K\x01K\x01K\x02\x86cnumpy\ndtype"
            b"\nq\x06U\x02u1K\x00K\x01\x87Rq\x07(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff"
            b"\xffK\x00tb\x89U\x02\x05\x06tbU\x06labelsq\x08]q\tK\x07au.")
    out = load_data_pickle(data, "batch")
    np.testing.assert_array_equal(out[b"data"], np.array([[5, 6]], np.uint8))
    assert out[b"labels"] == [7]


def test_truncated_pickle_is_a_located_error():
    data = pickle.dumps({b"labels": [1, 2, 3]}, protocol=2)[:-5]
    with pytest.raises(DataError, match="test_batch: refused"):
        load_data_pickle(data, "test_batch")
