"""A forward pass at a large batch run in chunks where the tuner measured that faster
(cnnc/tune/chunking.py): the decision is measured and kept per graph and batch, predict runs
it and returns the same outputs, and anything else runs one pass."""

from __future__ import annotations

import numpy as np
import pytest
from nodes import SPEC

import cnnc
from cnnc.cli import main
from cnnc.tune import cache as tc
from cnnc.tune import chunking

BATCH = 32  # chunks of 16 (the smallest chunk timed): 32 // 2


def _fake_times(monkeypatch, by_size: dict[int, float]) -> list[list[int]]:
    """Replace the timing by `by_size` seconds (by chunk size); returns the sizes it was
    asked to time, and checks that the run it was given computes each chunk."""
    asked: list[list[int]] = []

    def fake(run, batch, sizes, rounds=chunking.ROUNDS):
        asked.append(list(sizes))
        for s in sizes:
            for start in range(0, batch, s):
                assert all(len(v) == s for v in run(start, s).values())
        return {s: by_size.get(s, 1.0) for s in sizes}

    monkeypatch.setattr(chunking, "time_chunks", fake)
    return asked


def _inputs(n: int) -> np.ndarray:
    return np.random.default_rng(0).random((n, 7, 5, 9), dtype=np.float32)


def test_candidates_halve_quarter_and_eighth_down_to_the_smallest_chunk():
    assert chunking.candidates(256) == [128, 64, 32]
    assert chunking.candidates(32) == [16]
    assert chunking.candidates(24) == []  # 12 is under MIN_CHUNK
    assert chunking.candidates(100) == [50, 25]  # 100 / 8 is not whole
    assert chunking.candidates(1) == []


def test_a_tuning_keeps_seconds_for_chunks_only_where_a_chunk_size_applies():
    assert chunking.seconds_kept(256) == chunking.SECONDS
    assert chunking.seconds_kept(2 * chunking.MIN_CHUNK) == chunking.SECONDS
    assert chunking.seconds_kept(1) == 0.0  # batch 1: the whole budget tunes launches
    assert chunking.seconds_kept(2 * chunking.MIN_CHUNK - 1) == 0.0


def test_model_tune_keeps_the_faster_chunk_and_predict_runs_it(device, cache_dir, monkeypatch):
    asked = _fake_times(monkeypatch, {BATCH: 0.010, 16: 0.008})
    model = cnnc.compile(SPEC, backend="opencl", device=device.index, tune="never")
    x = _inputs(BATCH)
    whole = model.predict(x, batch_size=BATCH)
    model.tune(batch=BATCH, budget=30)
    assert asked == [[BATCH, 16]]
    cache = tc.TuningCache.default()
    assert chunking.chunk_of(cache, device, model.graph, BATCH) == 16
    fresh = cnnc.compile(SPEC, backend="opencl", device=device.index)  # reads the cache
    fresh.set_weights(model.get_weights())
    chunked = fresh.predict(x, batch_size=BATCH)
    assert ("predict", 16) in fresh._executables and ("predict", BATCH) not in fresh._executables
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)
    # another batch size, and a model that does not read the cache, run one pass
    fresh.predict(x[:24], batch_size=24)
    assert ("predict", 24) in fresh._executables
    never = cnnc.compile(SPEC, backend="opencl", device=device.index, tune="never")
    never.predict(x, batch_size=BATCH)
    assert ("predict", BATCH) in never._executables and ("predict", 16) not in never._executables


def test_a_chunk_barely_faster_than_one_pass_is_not_kept(device, cache_dir, monkeypatch):
    """Within MIN_GAIN: one pass is kept, and stored, so that an earlier tuning's faster chunk
    is not used any more."""
    _fake_times(monkeypatch, {BATCH: 0.010, 16: 0.005})
    model = cnnc.compile(SPEC, backend="opencl", device=device.index, tune="never")
    model.tune(batch=BATCH, budget=30)
    cache = tc.TuningCache.default()
    assert chunking.chunk_of(cache, device, model.graph, BATCH) == 16
    _fake_times(monkeypatch, {BATCH: 0.010, 16: 0.010 * (1 - chunking.MIN_GAIN / 2)})
    model.tune(batch=BATCH, budget=30)
    assert chunking.chunk_of(tc.TuningCache.default(), device, model.graph, BATCH) == BATCH
    assert model._chunk(BATCH) == BATCH


def test_the_decision_belongs_to_its_graph_and_batch(device, tmp_path):
    a = cnnc.load_spec(SPEC)
    other = SPEC.replace("{dense: 12, activation: relu}", "{dense: 13, activation: relu}")
    assert other != SPEC
    b = cnnc.load_spec(other)
    graph_a = cnnc.compile(a, backend="numpy").graph
    assert tc.graph_digest(graph_a) == tc.graph_digest(
        cnnc.compile(cnnc.load_spec(SPEC), backend="numpy").graph)
    assert tc.graph_digest(graph_a) != tc.graph_digest(
        cnnc.compile(b, backend="numpy").graph)
    cache = tc.TuningCache(tmp_path / "t.json")
    key = chunking.chunk_key(device, graph_a, 64)
    cache.put(tc.make_entry(key, {"chunk": 16}, 0.001, 0.002))
    again = tc.TuningCache(tmp_path / "t.json")  # read back from the file, validated
    assert chunking.chunk_of(again, device, graph_a, 64) == 16
    assert chunking.chunk_of(again, device, graph_a, 128) == 128
    assert chunking.chunk_of(again, device, cnnc.compile(b, backend="numpy").graph, 64) == 64


def test_a_chunk_that_does_not_divide_the_batch_is_not_used(device, tmp_path):
    graph = cnnc.compile(cnnc.load_spec(SPEC), backend="numpy").graph
    cache = tc.TuningCache(tmp_path / "t.json")
    cache.put(tc.make_entry(chunking.chunk_key(device, graph, 64), {"chunk": 24}, 0.001, 0.002))
    assert chunking.chunk_of(cache, device, graph, 64) == 64


@pytest.mark.parametrize("chunk", [0, -4, 2**21, 16.0, "16"])
def test_a_malformed_chunk_entry_is_discarded(chunk):
    key = tc.make_key({"device": "d", "driver": "1", "platform": "p"}, chunking.OP,
                      [[64, 7, 5, 9]], {"graph": "0" * 64}, 64)
    entry = tc.make_entry(key, {"chunk": 16}, 0.001, 0.002)
    entry["variant"] = {"chunk": chunk}
    entry["checksum"] = tc.checksum(entry)  # well formed but for the chunk
    assert f"chunk={chunk!r} is not an integer in 1..{2**20}" in tc.entry_problem(
        tc.entry_id(key), entry)


def test_show_names_the_chunks(cache_dir, capsys):
    key = tc.make_key({"device": "some cpu", "driver": "3.1", "platform": "OpenCL 3.0 PoCL"},
                      chunking.OP, [[256, 28, 28, 1]], {"graph": "ab" * 32}, 256)
    tc.TuningCache.default().put(tc.make_entry(key, {"chunk": 64}, 0.008, 0.010))
    assert main(["tune", "--show"]) == 0
    out = capsys.readouterr().out
    assert "forward_chunks" in out and "chunks of 64" in out and "graph abababababab" in out
