"""Hostile data, weights and images through `cnnc predict`, `eval` and `run`: each refused with a
clean message and exit status 2, within a time limit and a memory budget (bounded.py)."""

from __future__ import annotations

import gzip
import json
import struct
import zlib

import numpy as np
import pytest
from training_spec import TINY_SPEC

import cnnc
from cnnc.data.catalog import FASHION_MNIST
from cnnc.data.synthetic import write_synthetic_dataset

MEMORY_MB = 600
PEAK_MB = 200  # the probes took 2.5 GB (a 12000x12000 PNG) to 3.2 GB (a gzip bomb) and more
SECONDS = 30.0


def _refused(outcome, *needles):
    assert outcome.rc == 2 and not outcome.timed_out, outcome.describe()
    assert "Traceback" not in outcome.stderr, outcome.describe()
    for needle in needles:
        assert needle in outcome.stderr, outcome.describe()
    assert outcome.peak_mb < PEAK_MB, outcome.describe()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny spec (12x12x1 inputs) and a weights file for it."""
    folder = tmp_path_factory.mktemp("trained")
    spec = folder / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    cnnc.compile(TINY_SPEC, backend="numpy").save_weights(folder / "w.safetensors")
    return spec, folder / "w.safetensors"


def _predict(bounded, trained, *inputs, weights=None):
    spec, w = trained
    argv = ["predict", spec, "--weights", weights or w, "--backend", "numpy", *inputs]
    return bounded.run(argv, memory_mb=MEMORY_MB, timeout_s=SECONDS)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels and holds almost none: what a decompression
    bomb looks like to a reader that trusts the header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def gzip_bomb(header_dims: tuple[int, ...], gigabytes: int) -> bytes:
    """A gzip IDX file whose header declares `header_dims` uint8 values and whose stream goes
    on to `gigabytes` GB of zeros (gzip members repeated: a few MB on disk)."""
    head = bytes([0, 0, 0x08, len(header_dims)]) + struct.pack(f">{len(header_dims)}I",
                                                               *header_dims)
    zeros = gzip.compress(b"\0" * 2**20, mtime=0)
    return gzip.compress(head, mtime=0) + zeros * (gigabytes * 1024)


@pytest.mark.parametrize("width, height, needle", [
    (20000, 20000, "megapixels cnnc reads"),  # Pillow's own bomb bound, reported as ours
    (9000, 8000, "72 megapixels), more than the 64 cnnc reads"),
])
def test_huge_images_are_refused_from_their_header(bounded, trained, tmp_path, width, height,
                                                   needle):
    path = tmp_path / "big.png"
    path.write_bytes(png_header_only(width, height))
    _refused(_predict(bounded, trained, path), needle)


def test_a_large_photo_is_reduced_before_the_float_work(bounded, trained, tmp_path):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.new("L", (8000, 7000), 250).save(path)  # 56 megapixels, under the bound
    out = _predict(bounded, trained, path)
    assert out.rc == 0 and "photo.png" in out.stdout, out.describe()
    # 56 MB decoded; the float copies made at full size before took about 500 MB more.
    assert out.peak_mb < PEAK_MB, out.describe()


def test_an_npy_header_claiming_292_gb(bounded, trained, tmp_path):
    path = tmp_path / "huge.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (73_000_000_000,)})
        f.write(b"\0" * 64)
    _refused(_predict(bounded, trained, path), "292 GB", "only 64 bytes follow")


def test_a_gzip_bomb_given_to_predict(bounded, trained, tmp_path):
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(gzip_bomb((3, 12, 12), gigabytes=3))
    _refused(_predict(bounded, trained, path), "unexpected bytes after the 3x12x12 values")


def test_a_gzip_bomb_header_declaring_terabytes(bounded, trained, tmp_path):
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(gzip_bomb((3_000_000, 1000, 1000), gigabytes=1))
    _refused(_predict(bounded, trained, path), "(3 TB), more than the 4.29 GB cnnc reads")


def test_a_gzip_bomb_in_the_dataset(bounded, trained, tmp_path):
    data = write_synthetic_dataset(tmp_path / "data", train=64, test=16, shape=(12, 12))
    images = next(f for f in FASHION_MNIST.files if f.role == "train_images")
    (data / images.gz_name).write_bytes(gzip_bomb((64, 12, 12), gigabytes=3))
    spec, _ = trained
    out = bounded.run(["run", spec, "--backend", "numpy", "--data", data, "--progress", "off",
                       "--out", tmp_path / "run"], memory_mb=MEMORY_MB, timeout_s=SECONDS)
    _refused(out, "unexpected bytes after the 64x12x12 values")


def _retyped(path, old: str, new: str, out):
    """A copy of a safetensors file with one dtype renamed in its header (of the same width,
    so the data and its offsets stay right)."""
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    for name, entry in header.items():
        if name != "__metadata__" and entry["dtype"] == old:
            entry["dtype"] = new
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    out.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + size:])
    return out


def test_bf16_weights(bounded, trained, tmp_path):
    spec, _ = trained
    model = cnnc.compile(TINY_SPEC, backend="numpy")
    from cnnc.weights import save_weights

    save_weights(tmp_path / "f16.safetensors",
                 {k: v.astype(np.float16) for k, v in model.get_weights().items()}, "tiny")
    bf16 = _retyped(tmp_path / "f16.safetensors", "F16", "BF16", tmp_path / "bf16.safetensors")
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((12, 12), np.uint8))
    _refused(_predict(bounded, trained, x, weights=bf16), "is stored as BF16")
    out = bounded.run(["eval", spec, "--weights", bf16, "--backend", "numpy"],
                      memory_mb=MEMORY_MB, timeout_s=SECONDS)
    _refused(out, "is stored as BF16")


def test_a_fifo_as_an_input_image(bounded, trained, tmp_path):
    import os

    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    _refused(_predict(bounded, trained, fifo), "it is a FIFO")


def test_weights_of_3e38_are_refused(bounded, trained, tmp_path):
    from cnnc.weights import save_weights

    model = cnnc.compile(TINY_SPEC, backend="numpy")
    save_weights(tmp_path / "big.safetensors",
                 {k: np.full_like(v, 3e38) for k, v in model.get_weights().items()}, "tiny")
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((12, 12), np.uint8))
    _refused(_predict(bounded, trained, x, weights=tmp_path / "big.safetensors"),
             "more than the 1e+18 a weight may be")


BASE_META = {"format": 1, "epoch": 1, "batch": 0, "step": 8, "partial": {}, "history": [],
             "settings": {}, "elapsed_s": 0.0}


@pytest.mark.parametrize("meta, step", [
    ({**BASE_META, "batch": 3, "partial": {"x": 1}}, 8),  # mid-epoch, no running metrics
    ({**BASE_META, "epoch": -1}, 8),
    ({**BASE_META, "history": [1, 2]}, 8),
    ({**BASE_META, "partial": [1]}, 8),
    ({**BASE_META, "epoch": "one"}, 8),
    (BASE_META, [1, 2]),
    (BASE_META, 1.5),
])
def test_hostile_checkpoints(tmp_path, meta, step):
    from cnnc.train.checkpoint import CheckpointError, load_checkpoint
    from cnnc.weights import save_arrays

    path = tmp_path / "checkpoint.safetensors"
    save_arrays(path, {"step": np.array(step)}, {"cnnc_checkpoint": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="corrupt checkpoint metadata"):
        load_checkpoint(path)


def test_resuming_from_a_bf16_checkpoint(bounded, tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    data = write_synthetic_dataset(tmp_path / "data", train=64, test=16, shape=(12, 12))
    out = tmp_path / "run"
    first = bounded.run(["run", spec, "--data", data, "--backend", "numpy", "--progress", "off",
                         "--epochs", "1", "--out", out], memory_mb=MEMORY_MB, timeout_s=SECONDS)
    assert first.rc == 0, first.describe()
    checkpoint = out / "checkpoint.safetensors"
    from cnnc.train.checkpoint import load_checkpoint
    from cnnc.weights import save_arrays

    saved = load_checkpoint(checkpoint)
    state = {k: v.astype(np.float16) if v.dtype == np.float32 else v
             for k, v in saved.state.items()}
    save_arrays(tmp_path / "f16.safetensors", state,
                {"cnnc_checkpoint": json.dumps(saved.meta())})
    _retyped(tmp_path / "f16.safetensors", "F16", "BF16", checkpoint)
    out2 = bounded.run(["run", "--resume", out, "--epochs", "2", "--progress", "off"],
                       memory_mb=MEMORY_MB, timeout_s=SECONDS)
    _refused(out2, "is stored as BF16")
