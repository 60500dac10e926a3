"""The device's measured FMA peak (cnnc/backends/opencl/peak.py): measured by a kernel that
does nothing but multiply-adds, kept per device, a damaged cache file measured again."""

from __future__ import annotations

import json

import pytest

from cnnc.backends.opencl import peak


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNC_CACHE_DIR", str(tmp_path))
    return tmp_path / peak.FILE_NAME


def test_the_peak_is_measured_once_and_kept(device, cache, monkeypatch):
    monkeypatch.setattr(peak, "TARGET_SECONDS", 0.005)
    measured = peak.measured_peak(device)
    assert measured > 0.1  # GFLOP/s: any device cnnc runs on does more
    (entry,) = json.loads(cache.read_text()).values()
    assert entry["gflops"] == measured and entry["width"] in peak.WIDTHS

    def fail(*_):
        raise AssertionError("measured again although cached")

    monkeypatch.setattr(peak, "_rate", fail)
    assert peak.measured_peak(device) == measured


@pytest.mark.parametrize("text", ["{", "[1, 2]", '{"KEY": {"gflops": -3}}',
                                  '{"KEY": {"gflops": "fast"}}'])
def test_a_damaged_cache_is_measured_again(device, cache, monkeypatch, text):
    cache.write_text(text.replace("KEY", peak._key(device)))
    monkeypatch.setattr(peak, "_rate", lambda device, width: float(width))
    assert peak.measured_peak(device) == max(peak.WIDTHS)
    assert json.loads(cache.read_text())[peak._key(device)]["gflops"] == max(peak.WIDTHS)


def test_the_probe_counts_its_flops(device, monkeypatch):
    """The rate is 2 x FMAs / time: with the clock stopped at a known interval, the figure is
    exactly what the work-items, iterations, chains and vector width give."""
    ticks = iter([0.0, 1.0] * 1000)
    monkeypatch.setattr(peak.time, "perf_counter", lambda: next(ticks))
    rate = peak._rate(device, 4)
    # every launch "takes" 1 s, so the first timed one is long enough: 64 iterations
    from cnnc.backends.opencl.program import kernel_group_size, program_cache

    kernel = program_cache(device).kernel("peak.cl", "fma_peak", {"VW": 4})
    local = max(1, min(256, kernel_group_size(kernel, device)))
    items = local * max(1, device.cl_device.max_compute_units) * 4
    assert rate == pytest.approx(2 * items * 64 * peak.CHAINS * 4 / 1.0 / 1e9)


def test_a_new_probe_keeps_the_best_rate(device, cache, monkeypatch):
    """A probe on a loaded machine reads low: `refresh` measures again and the cache keeps the
    higher of the two, so one loaded reading cannot become the device's peak for good."""
    readings = iter([40.0, 40.0, 40.0, 90.0, 90.0, 90.0, 10.0, 10.0, 10.0])
    monkeypatch.setattr(peak, "_rate", lambda device, width: next(readings))
    assert peak.measured_peak(device) == 40.0  # nothing cached: measured
    assert peak.measured_peak(device, refresh=True) == 90.0  # higher: kept
    assert peak.measured_peak(device, refresh=True) == 90.0  # a loaded probe (10): the best stands
    assert json.loads(cache.read_text())[peak._key(device)]["gflops"] == 90.0
    assert peak.measured_peak(device) == 90.0  # without refresh: the cache, no probe
