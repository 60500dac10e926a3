"""The NumPy interpreter: the op table, dtypes, freeing, fetches, feeds, located failures."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.backends.numpy import IMPLS, ExecutionError, NumpyBackend
from cnnc.backends.numpy.activations import BACKWARD, FORWARD
from cnnc.errors import CnncError, InputError, InternalError
from cnnc.initializers import initial_values
from cnnc.ir.args import ACTIVATIONS
from cnnc.ir.ops import node_op_names
from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.pipeline import training_graph
from cnnc.passes.schedule import schedule
from cnnc.testing.nets import chain, run

NET = [("conv2d", 3, 3, {"padding": "same", "activation": "relu"}), ("batchnorm",),
       ("maxpool2d", 2), ("dropout", 0.5), ("flatten",), ("dense", 4, {"activation": "softmax"})]


def test_the_implementation_table_covers_every_op():
    assert set(IMPLS) == set(node_op_names())


def test_activation_tables_cover_every_activation():
    assert set(FORWARD) == set(ACTIVATIONS) == set(BACKWARD)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_value_of_a_training_step_stays_in_the_compute_dtype(dtype, rng):
    g = training_graph(chain((6, 6, 2), *NET))
    backend = NumpyBackend(dtype)
    backend.init_state(g.state, initial_values(g.state, 0, dtype))
    fetch = [n.name for n in g.nodes if n.shape is not None and n.name != names.TARGET]
    feeds = {"input_layer": rng.normal(size=(3, 6, 6, 2)).astype(dtype),
             names.TARGET: np.array([0, 1, 3], dtype=np.int32)}
    out = backend.compile(g, 3).run(feeds, fetch, step=2)
    wrong = {k: v.dtype for k, v in out.items() if v.dtype != np.dtype(dtype)}
    assert not wrong
    assert all(a.dtype == np.dtype(dtype) for a in backend.state_arrays().values())


def test_values_are_freed_after_their_last_reader():
    g = chain((4,), ("dense", 3), ("dense", 2), ("dense", 1))
    frees = schedule(g).frees  # the schedule both backends walk
    assert frees == ((), ("input_layer",), ("dense",), ("dense_1", "dense_2"))


def test_fetching_an_intermediate_value_keeps_it(rng):
    g = chain((4,), ("dense", 3, {"activation": "tanh"}), ("dense", 2))
    state = initial_values(g.state, 0, "float64")
    x = rng.normal(size=(2, 4))
    out = run(g, {"input_layer": x}, state, ["dense", "dense_1", "dense/kernel"])
    np.testing.assert_allclose(out["dense"], np.tanh(x @ state["dense/kernel"]))
    np.testing.assert_array_equal(out["dense/kernel"], state["dense/kernel"])


def test_fetch_errors_name_the_value():
    g = chain((4,), ("dense", 3))
    with pytest.raises(CnncError, match="'dens' is not a value of graph 'net'; did you mean"):
        run(g, {"input_layer": np.zeros((1, 4))}, initial_values(g.state, 0), ["dens"])
    t = training_graph(g, TrainConfig(loss="mean_squared_error"))
    b = NumpyBackend()
    b.init_state(t.state, initial_values(t.state, 0))
    with pytest.raises(CnncError, match="is an update and produces no value"):
        b.compile(t, 1).run({}, ["update/dense/kernel"])


def test_feed_errors_are_input_errors():
    g = chain((4,), ("dense", 3))
    exe = NumpyBackend().compile(g, 2)
    NumpyBackend().init_state(g.state, initial_values(g.state, 0))
    with pytest.raises(InputError, match="input 'input_layer' expects shape \\(2, 4\\), "
                                         "received \\(3, 4\\)"):
        exe.run({"input_layer": np.zeros((3, 4))}, ["dense"])
    with pytest.raises(InputError, match="expects floating-point values, received int64"):
        exe.run({"input_layer": np.zeros((2, 4), dtype=np.int64)}, ["dense"])
    with pytest.raises(InputError, match="no value fed for input 'input_layer'"):
        exe.run({}, ["dense"])
    with pytest.raises(InputError, match="'x' is not an input"):
        exe.run({"x": np.zeros((2, 4))}, ["dense"])
    with pytest.raises(InputError, match="batch size must be a positive integer, got 0"):
        NumpyBackend().compile(g, 0)


def test_a_failing_node_is_named_with_its_place_in_the_spec(monkeypatch):
    model = cnnc.compile("network tiny\ninput 4\nfirst: dense 3\nsecond: dense 2\n",
                         backend="numpy")

    def broken(call, *operands):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setitem(IMPLS, "dense", broken)
    with pytest.raises(ExecutionError) as info:
        model.predict(np.zeros((1, 4), dtype=np.float32))
    err = info.value
    assert err.message.startswith("first: dense failed: ValueError: operands could not")
    assert (err.span.line, err.span.column) == (3, 8)  # where 'first' is written
    assert "<string>:3:8: first: dense failed" in err.render()
    assert isinstance(err.__cause__, ValueError)


def test_an_implementation_returning_the_wrong_shape_is_caught(monkeypatch):
    g = chain((4,), ("dense", 3))
    monkeypatch.setitem(IMPLS, "dense", lambda call, x, k, b: x)
    with pytest.raises(ExecutionError, match="dense: dense produced \\(1, 4\\), the graph says "
                                             "\\(1, 3\\)"):
        run(g, {"input_layer": np.zeros((1, 4))}, initial_values(g.state, 0))


def test_float64_is_a_backend_option():
    with pytest.raises(CnncError, match="computes in float32 or float64, not 'float16'"):
        NumpyBackend("float16")
    assert NumpyBackend("float64").dtype == np.float64


def test_a_feed_must_be_of_its_inputs_kind(rng):
    """The checks every backend shares (cnnc.backends.base): integer labels, float images."""
    g = training_graph(chain((4,), ("dense", 3, {"activation": "softmax"})))
    backend = NumpyBackend()
    backend.init_state(g.state, initial_values(g.state, 0))
    exe = backend.compile(g, 2)
    x = rng.normal(size=(2, 4))  # float64 images are computed in the backend's float32
    labels = np.array([0, 2], dtype=np.int64)
    out = exe.run({"input_layer": x, names.TARGET: labels}, [names.LOSS])
    assert out[names.LOSS].dtype == np.float32
    with pytest.raises(InputError, match=f"input '{names.TARGET}' expects integers, "
                                         "received float64"):
        exe.run({"input_layer": x, names.TARGET: labels.astype(np.float64)}, [names.LOSS])
    with pytest.raises(InputError, match="expects floating-point values, received uint8"):
        exe.run({"input_layer": x.astype(np.uint8), names.TARGET: labels}, [names.LOSS])
    with pytest.raises(InputError, match="outside the int32 range"):
        exe.run({"input_layer": x, names.TARGET: labels + 2**40}, [names.LOSS])


def test_a_wrong_fetch_is_an_internal_error():
    """cnnc's own code chooses what to fetch, so a wrong name is a bug in cnnc."""
    g = chain((4,), ("dense", 3))
    backend = NumpyBackend()
    backend.init_state(g.state, initial_values(g.state, 0))
    exe = backend.compile(g, 1)
    feeds = {"input_layer": np.zeros((1, 4), dtype=np.float32)}
    with pytest.raises(InternalError, match="'dens' is not a value of graph 'net'"):
        exe.run(feeds, ["dens"])
    with pytest.raises(InternalError, match="a sequence of names, not one string"):
        exe.run(feeds, "dense")
