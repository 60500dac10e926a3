"""The Model API on the NumPy backend: predict, train_step, weights, training state, options."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.backends.numpy import NumpyBackend
from cnnc.errors import CnncError, InputError, SpecError, WeightsError
from cnnc.frontend.lower import LayerDecl as L
from cnnc.frontend.lower import lower
from cnnc.model import compile_model
from cnnc.testing.nets import chain

NET = [("conv2d", 3, 3, {"padding": "same", "activation": "relu"}), ("batchnorm",),
       ("maxpool2d", 2), ("flatten",), ("dense", 8, {"activation": "relu"}), ("dropout", 0.5),
       ("dense", 3, {"activation": "softmax"})]


def net():
    return chain((6, 6, 1), *NET)


class CountingBackend(NumpyBackend):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.compiled = []

    def compile(self, graph, batch):
        self.compiled.append((graph.name, batch, len(graph.nodes)))
        return super().compile(graph, batch)


def data(rng, n=10):
    return rng.normal(size=(n, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, n)


def test_predict_batches_and_caches_one_executable_per_batch_size(rng):
    """70 rows at batch 32: two chunks and a short last one of 6, which runs padded to 32 in
    the same executable (a batch of its own would be compiled anew, on OpenCL seconds cold)."""
    backend = CountingBackend()
    model = compile_model(net(), backend)
    x, _ = data(rng, 70)
    whole = model.predict(x, batch_size=70)
    parts = model.predict(x, batch_size=32)
    again = model.predict(x, batch_size=32)
    assert whole.shape == (70, 3) and whole.dtype == np.float32
    np.testing.assert_allclose(parts, whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(parts, again)
    np.testing.assert_allclose(whole.sum(axis=1), 1, rtol=1e-5)
    assert sorted(b for _, b, _ in backend.compiled) == [32, 70]


def test_predict_matches_a_hand_written_forward_pass(rng):
    model = cnnc.compile(chain((3,), ("dense", 4, {"activation": "tanh"}), ("dense", 2)),
                         backend="numpy")
    w = model.get_weights()
    x = rng.normal(size=(5, 3)).astype(np.float32)
    want = np.tanh(x @ w["dense/kernel"] + w["dense/bias"]) @ w["dense_1/kernel"]
    np.testing.assert_allclose(model.predict(x), want + w["dense_1/bias"], rtol=1e-5)


def test_model_attributes():
    g = net()
    model = compile_model(g)
    assert model.spec_graph is g
    assert "dropout" not in {n.op for n in model.graph.nodes}
    assert model.train_config.loss == "sparse_categorical_crossentropy"
    assert model.train_config.optimizer.name == "nadam"
    assert model.backend.name == "numpy"
    assert model.input_names == ("input_layer",) and model.output_names == ("dense_1",)
    assert model.training_graph().outputs == ("train/loss", "dense_1")


def test_train_step_counts_steps_and_returns_loss(rng):
    model = compile_model(net(), seed=3)
    x, y = data(rng)
    assert model.step == 0
    loss = model.train_step(x, y)
    assert isinstance(loss, float) and loss > 0
    loss2, pred = model.train_step(x, y, return_predictions=True)
    assert model.step == 2 and pred.shape == (10, 3) and pred.dtype == np.float32
    assert loss2 != loss


def test_learning_rate_override_equals_a_model_compiled_with_that_rate(rng):
    x, y = data(rng)
    a = compile_model(net(), optimizer={"name": "sgd", "learning_rate": 0.5})
    b = compile_model(net(), optimizer={"name": "sgd", "learning_rate": 0.01})
    a.train_step(x, y)
    b.train_step(x, y, learning_rate=0.5)
    for k, v in a.get_weights().items():
        np.testing.assert_array_equal(b.get_weights()[k], v, err_msg=k)
    with pytest.raises(CnncError, match="learning_rate must be a positive number, got -1"):
        b.train_step(x, y, learning_rate=-1)


def test_same_seed_same_training(rng):
    x, y = data(rng)
    losses = []
    for _ in range(2):
        model = compile_model(net(), seed=5)
        losses.append([model.train_step(x, y) for _ in range(3)])
    assert losses[0] == losses[1]


def test_weights_round_trip():
    model = compile_model(net())
    w = model.get_weights()
    assert set(w) == {s.name for s in model.spec_graph.weights}
    assert "batch_normalization/moving_mean" in w
    w2 = {k: v + 1 for k, v in w.items()}
    model.set_weights(w2)
    for k in w:
        np.testing.assert_array_equal(model.get_weights()[k], w2[k])


# A change to a model's own weights (None removes the name), and what set_weights says.
BAD_WEIGHTS = [
    ({"dense/bias": None}, "missing 'dense/bias'"),
    ({"dense/bais": np.zeros(8)}, "unexpected 'dense/bais'"),
    ({"dense/kernel": np.zeros((3, 8))},
     "'dense/kernel' has shape \\(3, 8\\), expected \\(27, 8\\)"),
    ({"dense/bias": np.full(8, np.nan)}, "'dense/bias' contains NaN"),
    ({"dense/bias": np.zeros(8, dtype=np.int64)}, "'dense/bias' holds int64, expected floating"),
]


@pytest.mark.parametrize("change,message", BAD_WEIGHTS)
def test_set_weights_names_what_does_not_fit(change, message):
    model = compile_model(net())
    weights = {**model.get_weights(), **change}
    weights = {k: v for k, v in weights.items() if v is not None}
    with pytest.raises(WeightsError, match=message):
        model.set_weights(weights)


def test_training_state_resumes_exactly(rng):
    x, y = data(rng)
    a = compile_model(net(), seed=1)
    for _ in range(3):
        a.train_step(x, y)
    state = a.get_training_state()
    assert state["step"] == 3 and "slot/dense/kernel/m" in state
    later = [a.train_step(x, y) for _ in range(2)]
    b = compile_model(net(), seed=1)  # dropout masks follow the seed: resume with the same
    b.set_weights({k: v * 0 + 0.5 for k, v in b.get_weights().items()})  # state overrides
    b.set_training_state(state)
    assert b.step == 3
    assert [b.train_step(x, y) for _ in range(2)] == later
    for k, v in a.get_weights().items():
        np.testing.assert_array_equal(b.get_weights()[k], v)
    bad = dict(state)
    del bad["slot/dense/kernel/v"]
    with pytest.raises(WeightsError, match="missing 'slot/dense/kernel/v'"):
        b.set_training_state(bad)
    with pytest.raises(WeightsError, match="'step' holds float64, expected integers"):
        b.set_training_state({**state, "step": np.array(1.5)})


def test_compile_options():
    g = net()
    assert compile_model(g, loss="mse").train_config.loss == "mean_squared_error"
    assert compile_model(g, optimizer="adam").train_config.optimizer.name == "adam"
    assert compile_model(g, seed=4).train_config.seed == 4
    m64 = compile_model(g, dtype="float64")
    assert m64.predict(np.zeros((2, 6, 6, 1))).dtype == np.float64
    with pytest.raises(SpecError, match="unknown loss 'mse2'"):
        compile_model(g, loss="mse2")
    with pytest.raises(SpecError, match="unknown optimizer 'adamx'"):
        compile_model(g, optimizer="adamx")
    with pytest.raises(CnncError, match="dtype must be one of float32, float64, got 'float16'"):
        compile_model(g, dtype="float16")
    with pytest.raises(CnncError, match="the numpy backend runs on the host"):
        compile_model(g, device="gpu")
    with pytest.raises(CnncError, match="unknown backend 'cuda'"):
        compile_model(g, backend="cuda")
    with pytest.raises(CnncError, match="seed must be a non-negative integer"):
        compile_model(g, seed=-1)


def test_the_train_section_of_a_spec_is_used():
    model = cnnc.compile("specs/lenet5.yaml", backend="numpy")
    assert model.train_config.optimizer.name == "sgd"
    assert model.training_graph().node("update/dense/kernel").attrs["momentum"] == 0.9


def test_several_inputs_take_a_dict(rng):
    g = lower("two", [L("input", [(3,)], name="a"), L("input", [(3,)], name="b"),
                      L("add", name="s", inputs=["a", "b"]), L("dense", [2], name="out")])
    model = compile_model(g)
    xa, xb = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    y = model.predict({"a": xa, "b": xb})
    assert y.shape == (4, 2)
    with pytest.raises(CnncError, match="the network has 2 inputs; pass a dict"):
        model.predict(xa)


class OutputsAs(NumpyBackend):
    """Runs return their outputs made by `form` from the interpreter's (a view, another dtype)."""

    def __init__(self, form, **kw):
        super().__init__(**kw)
        self.form = form

    def compile(self, graph, batch):
        exe = super().compile(graph, batch)
        run, form = exe.run, self.form

        def formed(feeds, fetch, **options):
            return {k: form(v) for k, v in run(feeds, fetch, **options).items()}

        exe.run = formed
        return exe


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_gives_an_array_of_its_own_in_the_models_dtype(rng, dtype):
    """predict returns a backend's output array itself only where it owns its memory and has the
    model's dtype: a view (of the input, of a buffer the next run overwrites) is copied, another
    dtype converted."""
    x, _ = data(rng, 4)
    want = compile_model(net(), NumpyBackend(), dtype=dtype, seed=0).predict(x)
    keep: list[np.ndarray] = []

    def view(v):
        keep.append(np.concatenate([v, v]))
        return keep[-1][:len(v)]

    for form in (view, lambda v: v.astype(np.float16), lambda v: v):
        model = compile_model(net(), OutputsAs(form), dtype=dtype, seed=0)
        got = model.predict(x, batch_size=8)
        assert got.dtype == np.dtype(dtype) and got.base is None
        assert not any(np.shares_memory(got, k) for k in keep)
        np.testing.assert_allclose(got, want, rtol=1e-3)


def test_predicts_quick_way_takes_what_the_general_way_takes_and_gives_the_same():
    """Model.predict's quick way (one float array in one batch, on an executable already made)
    against the general way (a batch_size that is not a plain int, a dict of inputs): the same
    values, the same refusals."""
    model = cnnc.compile("input 6x6x2\nconv2d 3 3 relu\nflatten\ndense 4 softmax\n", seed=1)
    x = np.random.default_rng(0).random((3, 6, 6, 2), dtype=np.float32)
    first = model.predict(x)  # the general way: makes the executable at batch 3
    general = model._feeds
    model._feeds = lambda graph, x: pytest.fail("the quick way was not taken")
    quick = model.predict(x)
    model._feeds = general
    np.testing.assert_array_equal(quick, first)
    np.testing.assert_array_equal(model.predict(x, batch_size=np.int64(3)), first)
    np.testing.assert_array_equal(model.predict({model.input_names[0]: x}), first)
    assert quick.dtype == np.float32 and quick.base is None
    bad = x.copy()
    bad[1, 2, 3, 1] = np.nan
    for wrong, error in ((bad, "NaN"), (x[:, :5], "shape"), (x.astype(np.int32), "int32")):
        with pytest.raises(InputError, match=error):
            model.predict(wrong)
    with pytest.raises(InputError, match="batch_size"):
        model.predict(x, batch_size=0)
