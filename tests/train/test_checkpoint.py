"""Checkpoints: a round trip, atomic replacement, and clear errors for bad files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cnnc.atomic import atomic_write
from cnnc.errors import OutputError
from cnnc.train.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)


def _ckpt(step=7):
    state = {"conv/kernel": np.arange(6, dtype=np.float32).reshape(2, 3),
             "conv/kernel/m": np.ones(3, np.float32), "step": np.array(step, np.int64)}
    return Checkpoint(state, epoch=2, batch=5, partial={"loss_sum": 1.5, "correct": 3, "count": 4},
                      history=[{"epoch": 1, "loss": 0.5}], settings={"seed": 3}, elapsed_s=12.5)


def test_round_trip(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", _ckpt())
    back = load_checkpoint(path)
    assert (back.epoch, back.batch, back.step, back.elapsed_s) == (2, 5, 7, 12.5)
    assert back.partial == {"loss_sum": 1.5, "correct": 3, "count": 4}
    assert back.history == [{"epoch": 1, "loss": 0.5}] and back.settings == {"seed": 3}
    np.testing.assert_array_equal(back.state["conv/kernel"], _ckpt().state["conv/kernel"])


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c.safetensors", _ckpt(step=1))
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OutputError, match="disk full"):
        save_checkpoint(path, _ckpt(step=2))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors"]  # no temp left
    assert load_checkpoint(path).step == 1


def test_atomic_write_replaces_whole_content(tmp_path):
    p = atomic_write(tmp_path / "f.txt", "one")
    atomic_write(p, "two")
    assert p.read_text() == "two"


@pytest.mark.parametrize("data, message", [
    (b"", "file too short"),
    (b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}", "corrupt checkpoint"),
])
def test_bad_files(tmp_path, data, message):
    path = tmp_path / "c.safetensors"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_truncated_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", _ckpt())
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="corrupt checkpoint"):
        load_checkpoint(path)


def test_plain_weights_file_is_not_a_checkpoint(tmp_path):
    from safetensors.numpy import save_file

    save_file({"a": np.zeros(2, np.float32)}, str(tmp_path / "w.safetensors"))
    with pytest.raises(CheckpointError, match="not a cnnc checkpoint"):
        load_checkpoint(tmp_path / "w.safetensors")


def test_missing(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint there"):
        load_checkpoint(tmp_path / "none.safetensors")
