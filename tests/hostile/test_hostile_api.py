"""The Python API given what it cannot use: each a CnncError naming the problem, never a raw
AttributeError, TypeError, IndexError or silently wrong numbers."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from training_spec import TINY_SPEC

import cnnc
from cnnc.errors import DeviceError, InputError, TrainingDiverged, WeightsError

X = np.random.default_rng(0).random((4, 12, 12, 1)).astype(np.float32)
Y = np.array([0, 1, 2, 3])


def _opencl_reason() -> str | None:
    try:
        cnnc.compile(TINY_SPEC, backend="opencl")
    except DeviceError as err:
        return err.message
    return None


@pytest.fixture(params=["numpy", "opencl"])
def backend(request):
    if request.param == "opencl":
        reason = _opencl_reason()
        if reason:
            pytest.skip(f"no usable OpenCL device: {reason}")
    return request.param


@pytest.fixture
def model():
    return cnnc.compile(TINY_SPEC, backend="numpy")


def test_very_long_text_is_text_not_a_file_name():
    with pytest.raises(cnnc.CnncError):
        cnnc.load_spec("x" * 100_000)
    with pytest.raises(cnnc.CnncError, match="more than the 4.19 MB"):
        cnnc.load_spec("input 4\n" + "#" * 5_000_000)


def test_dicts_from_python_with_bad_or_self_referencing_values():
    loop: dict = {}
    loop["x"] = loop
    nested: list = []
    nested.append(nested)
    for train in ({"optimizer": "bogus"}, {"optimizer": loop}, {"epochs": nested}):
        with pytest.raises(cnnc.CnncError, match="train"):  # once an endless loop
            cnnc.load_spec({"input": [8, 8, 1], "layers": ["flatten"], "train": train})
    with pytest.raises(cnnc.CnncError, match="nest more than 32 deep"):
        cnnc.load_spec({"input": [8, 8, 1], "layers": [{"dense": nested}]})


@pytest.mark.parametrize("kwargs, message", [
    ({"backend": 3.5}, "backend must be one of 'numpy', 'opencl', got 3.5"),
    ({"backend": 42}, "got 42"),
    ({"backend": "cuda"}, "unknown backend 'cuda'"),
    ({"backend": "opencl", "device": 42}, "device must be a device selector string"),
    ({"sead": 1}, "unknown keyword argument 'sead'; did you mean 'seed'?"),
    ({"seed": -1}, "seed must be a non-negative integer"),
])
def test_compile_arguments(kwargs, message):
    with pytest.raises(cnnc.CnncError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("?", r"\?")):
        cnnc.compile(TINY_SPEC, **kwargs)


def test_save_weights_where_no_file_can_be(model, tmp_path):
    with pytest.raises(WeightsError, match="named by a path, got None"):
        model.save_weights(None)
    with pytest.raises(WeightsError, match="it is a directory"):
        model.save_weights(tmp_path)
    with pytest.raises(WeightsError, match="does not exist"):
        model.save_weights(tmp_path / "missing" / "w.safetensors")


@pytest.mark.parametrize("label", [10, -1, 99])
def test_labels_outside_the_classes(model, label):
    y = np.array([0, 1, 2, label])
    with pytest.raises(InputError, match=f"label {label} at index 3 is not a class index"):
        model.fit(X, y, epochs=1, verbose=0)
    with pytest.raises(InputError, match=f"label {label} at index 3"):
        model.evaluate(X, y, verbose=0)
    with pytest.raises(InputError, match=f"label {label} at index"):
        model.train_step(X, y)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflow warnings, expected
def test_a_learning_rate_that_overflows_is_an_error(backend):
    model = cnnc.compile(TINY_SPEC, backend=backend)
    with pytest.raises(TrainingDiverged, match="learning rate 1e\\+30"):
        for _ in range(3):  # the first update makes the weights overflow; its loss was finite
            model.train_step(X, Y, learning_rate=1e30)
    with pytest.raises(cnnc.CnncError, match="the weights hold NaN or infinite values"):
        model.predict(X)


def test_weights_of_3e38_are_refused(model):
    huge = {k: np.full_like(v, 3e38) for k, v in model.get_weights().items()}
    with pytest.raises(WeightsError, match="more than the 1e\\+18 a weight may be"):
        model.set_weights(huge)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_outputs_that_overflow_are_an_error(backend):
    model = cnnc.compile("input 12x12x1\nflatten\ndense 10 relu\ndense 10 relu\n"
                         "dense 10 softmax\n", backend=backend)
    weights = {k: np.full_like(v, 1e17 if "kernel" in k else 1.0)
               for k, v in model.get_weights().items()}
    x = np.ones((2, 12, 12, 1), np.float32)
    model.predict(x)  # finite: the executable at batch 2 is made, later calls take the quick way
    model.set_weights(weights)  # allowed, but three layers of 1e17 overflow float32
    for _ in range(2):
        with pytest.raises(cnnc.CnncError, match="overflows float32"):
            model.predict(x)


def test_a_checkpoint_at_step_2_40_trains_in_bounded_time(backend):
    model = cnnc.compile(TINY_SPEC, backend=backend, optimizer="nadam")
    state = model.get_training_state()
    state["step"] = np.array(2**40, np.int64)
    model.set_training_state(state)
    start = time.perf_counter()
    assert math.isfinite(model.train_step(X, Y))
    assert time.perf_counter() - start < 30
    assert model.step == 2**40 + 1


def test_the_nadam_table_is_bounded_and_exact():
    from cnnc.ir.updates import _NadamMomentumCache

    for beta_1 in (0.9, 0.999, 1.0):
        cache = _NadamMomentumCache()
        reference = [1.0]
        for i in range(1, 20_001):  # Keras' product, step by step
            reference.append(reference[-1] * beta_1 * (1.0 - 0.5 * 0.96 ** i))
        assert all(cache.product(beta_1, t) == reference[t] for t in range(0, 20_001, 7))
        far = cache.product(beta_1, 2**40)
        assert math.isfinite(far) and 0.0 <= far <= reference[-1]
        assert len(cache._tables[beta_1]) <= cache.TABLE_STEPS + 1


def test_a_network_too_large_for_memory(bounded, tmp_path):
    """8 GB of weights under a 1 GB cap: the allocation fails, and says so in figures."""
    spec = tmp_path / "big.cnn"
    spec.write_text("input 1000x1000x2\nflatten\ndense 1000 softmax\n")
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"\0" * 16)
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1000, 1000, 2), np.uint8))
    out = bounded.run(["predict", spec, "--weights", weights, "--backend", "numpy", x],
                      memory_mb=1000, timeout_s=60)
    assert out.rc == 2 and "Traceback" not in out.stderr, out.describe()
    assert "out of memory allocating the network's 2,000,001,000 weights" in out.stderr
