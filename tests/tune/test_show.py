"""`cnnc tune --show` (issue 23): device names in full, rows that tell launches apart, whole
variant names, and the tunings the current kernels can no longer use counted, not listed."""

from __future__ import annotations

from cnnc.cli import main
from cnnc.tune import cache as tc

DEVICE = {"device": "pthread-skylake-avx512-AMD EPYC 9R14 96-Core Processor", "driver": "3.1",
          "platform": "OpenCL 3.0 PoCL"}


def _entry(attrs: dict, variant: dict, kernels: str | None = None) -> dict:
    key = tc.make_key(DEVICE, "conv2d", [[128, 14, 14, 128], [3, 3, 128, 128],
                                         [128, 14, 14, 128]], attrs, 128)
    if kernels:
        key["kernels"] = kernels
    return tc.make_entry(key, variant, 0.001, 0.002)


def test_show_names_devices_and_variants_whole_and_tells_layers_apart(cache_dir, capsys):
    from cnnc.tune.space import describe

    variant = {"algo": "direct", "MR": 4, "VW": 8, "NV": 2}
    relu = _entry({"kernel_size": [3, 3], "padding": "same", "activation": "relu"}, variant)
    linear = _entry({"kernel_size": [3, 3], "padding": "same", "activation": "linear"}, variant)
    stale = _entry({"kernel_size": [3, 3], "padding": "valid"}, variant, kernels="0" * 64)
    tc.TuningCache.default().store({tc.entry_id(e["key"]): e for e in (relu, linear, stale)})
    assert main(["tune", "--show"]) == 0
    out = capsys.readouterr().out
    assert repr(DEVICE["device"]) in out
    rows = [line for line in out.splitlines() if line.startswith("conv2d")]
    assert len(rows) == 2 and rows[0] != rows[1]
    assert {"activation=relu", "activation=linear"} <= {w for r in rows for w in r.split()}
    assert all(describe(variant) in r for r in rows)
    assert "1 of them for earlier versions of the kernel sources" in out



def test_one_entry_is_counted_in_the_singular(cache_dir, capsys):
    from cnnc import doctor

    one = _entry({"kernel_size": [3, 3], "padding": "same"},
                 {"algo": "direct", "MR": 4, "VW": 8, "NV": 2})
    tc.TuningCache.default().store({tc.entry_id(one["key"]): one})
    assert main(["tune", "--show"]) == 0
    out = capsys.readouterr().out
    assert ": 1 entry\n" in out and "1 entries" not in out
    found = next(doctor.check_tuning_cache()).message
    assert f"1 tuned launch for {DEVICE['device']!r}" in found


def test_show_says_which_device_runs_a_small_pass(cache_dir, capsys):
    for companion in (0, 1):
        key = tc.make_key(DEVICE, tc.DEVICE_OP, [[1, 28, 28, companion + 1]],
                          {"graph": "ab" * 32}, 1)
        tc.TuningCache.default().put(tc.make_entry(key, {"companion": companion}, 0.001, 0.002))
    assert main(["tune", "--show"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith(tc.DEVICE_OP)]
    assert len(rows) == 2
    assert sum("on the one-thread companion" in r for r in rows) == 1
    assert sum("on the device " in r + " " for r in rows) == 1
