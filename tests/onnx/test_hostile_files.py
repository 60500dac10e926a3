"""Hostile or broken .onnx files: each a clean, located CnncError (exit status 2 from the CLI),
in bounded memory, and never a read of a file outside the model's folder."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx_helpers import make_model, randn, save

import cnnc
from cnnc.cli import main
from cnnc.errors import CnncError

N = "N"


def small_model():
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    return make_model(nodes, {"x": (N, 2, 6, 6)}, ["y"],
                      {"W": randn(3, 2, 3, 3), "B": randn(3, seed=1)})


def refused(path, *needles):
    with pytest.raises(CnncError) as info:
        cnnc.load_spec(path)
    text = info.value.render()
    assert str(path) in text, text
    for needle in needles:
        assert needle in text, text
    return text


def test_truncated_protobuf_at_any_length_is_a_clean_error(tmp_path):
    data = small_model().SerializeToString()
    cuts = sorted({1, 2, 7, 16, len(data) // 3, len(data) // 2, len(data) - 40, len(data) - 1})
    for cut in cuts:
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(data[:cut])
        with pytest.raises(CnncError):  # whichever check catches it, never anything else
            cnnc.load_spec(path)


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(os.urandom(64) + b"\xff" * 64)
    refused(path, "not an ONNX model")
    path.write_text("network x\ninput 28x28x1\n")
    refused(path, "not an ONNX model")


@pytest.mark.parametrize("field", ["raw", "typed"])
def test_initialiser_whose_size_disagrees_with_its_shape(field, tmp_path):
    model = small_model()
    w = next(t for t in model.graph.initializer if t.name == "W")
    values = np.zeros(10, np.float32)
    w.ClearField("raw_data")
    w.ClearField("float_data")
    if field == "raw":
        w.raw_data = values.tobytes()
    else:
        w.float_data.extend(values.tolist())
    refused(save(model, tmp_path / "m.onnx"), "initialiser 'W' declares shape (3, 2, 3, 3)",
            "54")


def test_cycle_is_named_with_its_path(tmp_path):
    nodes = [helper.make_node("Relu", ["x", "c"], ["a"], name="first"),
             helper.make_node("Relu", ["a"], ["b"], name="second"),
             helper.make_node("Relu", ["b"], ["c"], name="third"),
             helper.make_node("Relu", ["b"], ["y"], name="out")]
    # A 2-input Relu is no valid ONNX either: the cycle must be found before any op is read.
    model = make_model(nodes, {"x": (N, 4)}, ["y"])
    refused(save(model, tmp_path / "m.onnx"), "cycle",
            "'first' -> 'second' -> 'third' -> 'first'")


def test_undefined_and_doubly_defined_values(tmp_path):
    nodes = [helper.make_node("Relu", ["nowhere"], ["y"], name="r")]
    refused(save(make_model(nodes, {"x": (N, 4)}, ["y"]), tmp_path / "a.onnx"),
            "node 'r' reads 'nowhere', which nothing defines")
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r1"),
             helper.make_node("Relu", ["x"], ["y"], name="r2")]
    refused(save(make_model(nodes, {"x": (N, 4)}, ["y"]), tmp_path / "b.onnx"),
            "value 'y' is defined twice")


def _huge_initialiser_model():
    model = small_model()
    big = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[10**6, 10**6])
    big.raw_data = b"\0" * 16
    w = next(t for t in model.graph.initializer if t.name == "W")
    w.CopyFrom(big)
    return model


def _huge_input_model():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    return make_model(nodes, {"x": (N, 1, 10**6, 10**6)}, ["y"])


@pytest.mark.parametrize("build, needle", [
    (_huge_initialiser_model, "1,000,000,000,000 elements"),
    (_huge_input_model, "1,000,000,000,000 elements"),
])
def test_a_declared_shape_of_a_trillion_elements_in_bounded_memory(build, needle, tmp_path):
    path = save(build(), tmp_path / "huge.onnx")
    # A child process with 2 GiB of address space: allocating the tensor (4 TB) would fail
    # there with MemoryError; the import must refuse it before trying.
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        from cnnc.cli import main
        sys.exit(main(["summary", {str(path)!r}]))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr and "Traceback" not in done.stderr and "MemoryError" not in \
        done.stderr


# ---------------------------------------------------------------- external data

OPENED: list[str] = []
_WATCH: list[bool] = []


def _audit(event: str, args: tuple) -> None:
    if _WATCH and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed: this one records only while watched


def _external_model(location: str, offset: int = 0):
    model = small_model()
    w = next(t for t in model.graph.initializer if t.name == "W")
    w.ClearField("raw_data")
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)),
                       ("length", str(54 * 4))):
        w.external_data.add(key=key, value=value)
    return model


@pytest.fixture
def secret(tmp_path):
    """A file outside the model's folder, big enough to hold W."""
    path = tmp_path / "secret.bin"
    path.write_bytes(np.arange(54, dtype=np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    return path, folder


@pytest.mark.parametrize("how", ["relative", "absolute", "symlink"])
def test_external_data_outside_the_model_folder_is_never_read(how, secret):
    path, folder = secret
    if how == "relative":
        location = "../secret.bin"
    elif how == "absolute":
        location = str(path)
    else:
        (folder / "data.bin").symlink_to(path)
        location = "data.bin"
    model_path = save(_external_model(location), folder / "m.onnx")
    OPENED.clear()
    _WATCH.append(True)
    try:
        text = refused(model_path)
    finally:
        _WATCH.clear()
    assert "outside the model's folder" in text or "absolute path" in text, text
    assert not [p for p in OPENED if os.path.realpath(p) == str(path.resolve())]


def test_external_data_inside_the_folder_is_read(tmp_path):
    from onnx_helpers import check_against_ort

    w = randn(3, 2, 3, 3)
    (tmp_path / "weights.bin").write_bytes(b"\0" * 12 + w.tobytes())
    model = _external_model("weights.bin", offset=12)
    path = save(model, tmp_path / "m.onnx")
    x = np.random.default_rng(0).random((2, 2, 6, 6), dtype=np.float32)
    graph = check_against_ort(path, x)
    np.testing.assert_array_equal(graph.given_weights["conv/kernel"], w.transpose(2, 3, 1, 0))


def test_external_data_file_too_short(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"\0" * 8)
    refused(save(_external_model("w.bin"), tmp_path / "m.onnx"), "too short")


def test_cli_exit_status_2_without_traceback(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    path.write_bytes(small_model().SerializeToString()[:50])
    assert main(["summary", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err
