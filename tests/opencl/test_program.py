"""Building programs: -D options from validated integers only, caches, build failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from cnnc.backends.opencl.program import build_options, kernel_dir, program_cache
from cnnc.errors import DeviceError

KERNEL_FILES = (
    "conv2d.cl",
    "gemm.cl",
    "pool.cl",
    "elementwise.cl",
    "softmax.cl",
    "reduce.cl",
    "batchnorm.cl",
    "losses.cl",
    "updates.cl",
    "random.cl",
    "winograd.cl",
)


def test_kernel_sources_are_found():
    folder = kernel_dir()
    for name in KERNEL_FILES + ("common.h", "expmath.h", "rows.h", "tile.h"):
        assert (folder / name).is_file(), name


def test_build_options_are_sorted_integer_defines():
    opts = build_options({"VW": 16, "ACT": 1, "PT": -1})
    assert opts[0] == "-cl-mad-enable"
    assert opts[1:] == ("-DACT=1", "-DPT=-1", "-DVW=16")


@pytest.mark.parametrize("value", ["3", 3.0, True, None, 2**31, -(2**31) - 1])
def test_build_options_reject_anything_but_int32_integers(value):
    with pytest.raises((TypeError, ValueError)):
        build_options({"N": value})


@pytest.mark.parametrize("name", ["n", "N -DX=1", "1N", "N=2", ""])
def test_build_options_reject_bad_names(name):
    with pytest.raises(ValueError):
        build_options({name: 1})


def test_programs_are_kept_per_process(device):
    cache = program_cache(device)
    a = cache.program("elementwise.cl", "activation", {"ACT": 1})
    b = cache.program("elementwise.cl", "activation", {"ACT": 1})
    assert a is b
    c = cache.program("elementwise.cl", "activation", {"ACT": 2})
    assert c is not a
    # every launch gets its own kernel object, made once, so its arguments stay set
    k1 = cache.kernel("elementwise.cl", "activation", {"ACT": 1})
    k2 = cache.kernel("elementwise.cl", "activation", {"ACT": 1})
    assert k1 is not k2 and k1.function_name == "activation"


def test_a_failed_build_names_the_file_the_options_and_the_log(device):
    cache = program_cache(device)
    # conv2d_forward without its geometry defines cannot compile
    with pytest.raises(DeviceError) as err:
        cache.program("conv2d.cl", "conv2d_forward", {"MR": 8, "VW": 4, "NV": 1})
    text = err.value.render()
    assert "kernels/conv2d.cl" in text
    assert "-DCONV2D_FORWARD=1" in text and "-DMR=8" in text
    assert "undeclared identifier" in text or "error" in text.lower()


def test_an_unknown_kernel_name_is_a_device_error(device):
    with pytest.raises(DeviceError):
        program_cache(device).kernel("elementwise.cl", "no_such_kernel", {})


CHILD = textwrap.dedent("""
    import json, sys, time
    from cnnc.backends.opencl.device import select_device
    from cnnc.backends.opencl.program import program_cache
    cache = program_cache(select_device(sys.argv[1]))
    start = time.perf_counter()
    cache.program("gemm.cl", "matmul", {"K": 37, "N": 24, "MR": 5, "VW": 8, "NV": 3,
                                        "HAS_BIAS": 1, "ACT": 4})
    seconds = time.perf_counter() - start
    print(json.dumps({"from_disk": cache.records[-1].from_disk, "seconds": seconds}))
""")


def test_a_second_process_loads_the_program_from_the_disk_cache(device, tmp_path):
    """Measured here: a cold build of this matmul ~0.3-1 s, a disk-cache hit ~1-10 ms."""
    env = {**os.environ, "CNNC_CACHE_DIR": str(tmp_path)}
    runs = []
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, device.index],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert runs[0]["from_disk"] is False
    assert runs[1]["from_disk"] is True
    assert runs[1]["seconds"] < runs[0]["seconds"]
    assert any((tmp_path / "opencl").iterdir())
