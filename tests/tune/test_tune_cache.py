"""The tuning cache (cnnc/tune/cache.py): valid entries kept, corrupt files and tampered or
foreign entries discarded with a warning, concurrent writers merged, export/import."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from cnnc.tune import cache as tc

DEVICE = {"device": "test device", "driver": "1.0", "platform": "OpenCL 3.0 test"}


def _entry(i: int, variant=None) -> dict:
    key = tc.make_key(DEVICE, "conv2d", [[2, 5, 5, 3], [2, 5, 5, 8]], {"filters": 8}, 2 + i)
    return tc.make_entry(key, variant or {"algo": "direct", "MR": 4, "VW": 8, "NV": 1},
                         0.001, 0.002)


def _write(path, entries: dict) -> None:
    path.write_text(json.dumps({"format": tc.FORMAT, "entries": entries}))


@pytest.fixture
def cache(tmp_path):
    return tc.TuningCache(tmp_path / "tuning.json")


def test_entries_round_trip(cache):
    e = _entry(0)
    cache.put(e)
    again = tc.TuningCache(cache.path)
    assert again.get(e["key"]) == e
    assert again.get(_entry(1)["key"]) is None


def test_a_cut_searchs_mark_round_trips_and_is_checked(cache, capsys):
    """A search its budget cut short is kept with a "cut" mark, the variants it timed (the next
    `cnnc tune` resumes it); the mark is covered by the checksum and checked."""
    key = _entry(0)["key"]
    cut = tc.make_entry(key, {"algo": "direct", "MR": 4, "VW": 8, "NV": 1}, 0.001, 0.002,
                        cut=[2, 0, 1])
    assert cut["cut"] == [0, 1, 2] and "cut" not in _entry(0)
    cache.put(cut)
    assert tc.TuningCache(cache.path).get(key) == cut
    for bad in (True, [], ["0"], [-1], [True]):
        forged = dict(cut, cut=bad)
        forged["checksum"] = tc.checksum(forged)
        _write(cache.path, {tc.entry_id(key): forged})
        assert tc.TuningCache(cache.path).get(key) is None, bad
        assert "'cut' mark is not a list" in capsys.readouterr().err
    unmarked = {k: v for k, v in cut.items() if k != "cut"}  # the mark removed by hand
    _write(cache.path, {tc.entry_id(key): unmarked})
    assert tc.TuningCache(cache.path).get(key) is None
    assert "checksum" in capsys.readouterr().err


def test_a_corrupt_file_is_discarded_with_a_warning(cache, capsys):
    cache.path.write_text('{"format": "cnnc-tuning 1", "entries": {')
    assert cache.entries == {}
    assert "not valid JSON" in capsys.readouterr().err
    cache.put(_entry(0))  # and a later write replaces it with a valid file
    assert len(tc.TuningCache(cache.path).entries) == 1


def test_another_programs_file_is_discarded(cache, capsys):
    cache.path.write_text(json.dumps({"format": "something else", "entries": {}}))
    assert cache.entries == {}
    assert "not a cnnc tuning file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "tamper,why",
    [
        (lambda e: e["variant"].update(MR=2), "checksum"),
        (lambda e: e["variant"].update(MR=99), "MR=99"),
        (lambda e: e["variant"].update(MR="4"), "MR='4'"),
        (lambda e: e["variant"].update(evil=1), "unknown variant key"),
        (lambda e: e["variant"].update(algo="fast"), "unknown algorithm"),
        (lambda e: e["key"].update(batch=99), "id does not match"),
        (lambda e: e.update(seconds=-1.0), "times"),
        (lambda e: e.pop("checksum"), "fields"),
        (lambda e: e.update(cut=[0, 1]), "checksum"),  # a complete search's entry marked cut
        (lambda e: e.update(extra=1), "fields"),
    ],
)
def test_a_tampered_or_foreign_entry_is_discarded(cache, capsys, tamper, why):
    good, bad = _entry(0), _entry(1)
    bad_id = tc.entry_id(bad["key"])
    tamper(bad)
    _write(cache.path, {tc.entry_id(good["key"]): good, bad_id: bad})
    assert list(cache.entries) == [tc.entry_id(good["key"])]
    err = capsys.readouterr().err
    assert f"entry {bad_id[:12]} discarded" in err and why in err


def test_an_entry_under_another_entrys_id_is_discarded(cache, capsys):
    a, b = _entry(0), _entry(1)
    _write(cache.path, {tc.entry_id(a["key"]): b})
    assert cache.entries == {}
    assert "id does not match" in capsys.readouterr().err


def _other_version_entry(variant: dict) -> dict:
    """An intact entry another cnnc wrote for its own kernel sources, whose variant this one
    may not know."""
    key = {**_entry(7)["key"], "kernels": "0" * 64}
    entry = {"key": key, "variant": variant, "seconds": 0.001, "default_seconds": 0.002}
    return {**entry, "checksum": tc.checksum({**entry, "checksum": ""})}


def test_another_versions_entries_survive_a_write_unlooked_and_unwarned(cache, capsys):
    # A newer cnnc's algorithm (unknown here) and a known one, both for other kernel sources:
    # never used by this version, and still in the file after it writes its own.
    newer = _other_version_entry({"algo": "from_the_future", "MR": 4})
    older = _other_version_entry({"algo": "direct", "MR": 2, "VW": 8, "NV": 1})
    older["key"]["batch"] = 3
    older["checksum"] = tc.checksum(older)
    ids = {tc.entry_id(e["key"]): e for e in (newer, older)}
    _write(cache.path, ids)
    assert tc.entry_id(older["key"]) in cache.entries  # valid here, never looked up
    assert tc.entry_id(newer["key"]) not in cache.entries
    cache.put(_entry(0))
    assert capsys.readouterr().err == ""
    on_disk = json.loads(cache.path.read_text())["entries"]
    assert on_disk[tc.entry_id(newer["key"])] == newer
    assert on_disk[tc.entry_id(older["key"])] == older
    assert len(on_disk) == 3
    assert tc.TuningCache(cache.path).get(_entry(0)["key"]) == _entry(0)


def test_another_versions_tampered_entry_is_still_discarded(cache, capsys):
    bad = _other_version_entry({"algo": "from_the_future"})
    bad_id = tc.entry_id(bad["key"])
    bad["variant"]["algo"] = "direct"  # checksum no longer matches
    _write(cache.path, {bad_id: bad})
    cache.put(_entry(0))
    assert f"entry {bad_id[:12]} discarded" in capsys.readouterr().err
    assert bad_id not in json.loads(cache.path.read_text())["entries"]


def _store_many(path: str, first: int, count: int) -> None:
    c = tc.TuningCache(path)
    for i in range(first, first + count):
        c.put(_entry(i))


def test_concurrent_writers_leave_a_valid_cache_with_every_entry(tmp_path):
    path = str(tmp_path / "tuning.json")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_store_many, args=(path, 100 * p, 15)) for p in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    entries = tc.parse((tmp_path / "tuning.json").read_text(), path)
    assert len(entries) == 45


def test_export_import_round_trip(cache, tmp_path, capsys):
    for i in range(3):
        cache.put(_entry(i))
    out = tmp_path / "moved.json"
    assert tc.export_entries(cache, out) == 3
    other = tc.TuningCache(tmp_path / "other" / "tuning.json")
    assert tc.import_entries(other, out) == 3
    assert tc.TuningCache(other.path).entries == cache.entries


def test_import_validates(cache, tmp_path, capsys):
    good, bad, old = _entry(0), _entry(1), _entry(2)
    bad["variant"]["NV"] = 3
    old["key"]["kernels"] = "0" * 64  # tuned for other kernel sources
    old["checksum"] = tc.checksum(old)
    entries = {tc.entry_id(e["key"]): e for e in (good, bad, old)}
    f = tmp_path / "in.json"
    _write(f, entries)
    assert tc.import_entries(cache, f) == 1
    assert list(tc.TuningCache(cache.path).entries) == [tc.entry_id(good["key"])]
    err = capsys.readouterr().err
    assert "checksum" in err and "other kernel sources" in err


def test_import_of_a_missing_file_is_a_clear_error(cache, tmp_path):
    with pytest.raises(tc.TuningCacheError, match="cannot read"):
        tc.import_entries(cache, tmp_path / "nope.json")


# Variants of every algorithm as the tuner wrote them before the algorithms were registered in
# the OpenCL backend (cnnc/backends/opencl/algorithms.py): the format stayed "cnnc-tuning 1",
# so they must still read as valid (a change to the keys an algorithm registers must bump
# tc.FORMAT, which discards older files with a message instead).
WRITTEN_BEFORE = [
    {"algo": "direct", "MR": 4, "VW": 8, "NV": 2},
    {"algo": "direct", "MR": 8, "VW": 4, "NV": 1, "split": 3, "row_groups": 0},
    {"algo": "direct", "MR": 4, "VW": 4, "NV": 1, "local": 0},
    {"algo": "direct", "MR": 8, "VW": 8, "NV": 1, "im2col": 0, "split": 2},
    {"algo": "phases", "MR": 4, "VW": 8, "NV": 2},
    {"algo": "winograd", "wino_m": 4},
    {"algo": "winograd", "wino_m": 2, "wino_fused": 8},
    {"algo": "winograd", "wino_m": 4, "wino_tile": {"MR": 4, "VW": 16, "NV": 1},
     "wino_chunk": 64},
]


@pytest.mark.parametrize("variant", WRITTEN_BEFORE, ids=lambda v: "-".join(map(str, v.values())))
def test_variants_written_before_the_registry_still_read(variant):
    assert tc.FORMAT == "cnnc-tuning 1"
    assert tc.variant_problem(variant) is None
