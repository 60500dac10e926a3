"""The kernel cache after kills: a lock or a temporary file a killed process left never holds up
the next run, concurrent cold starts all succeed, and a damaged entry is rebuilt.

Before cnnc kept its own cache (cnnc/backends/opencl/binary_cache.py), pyopencl's lock file,
left by a process killed while holding it, made every later run wait 60 s and then fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from cnnc.errors import DeviceError

try:
    from cnnc.backends.opencl.device import select_device

    DEVICE = select_device(None)
    NO_DEVICE = None
except DeviceError as err:
    DEVICE, NO_DEVICE = None, err.message

pytestmark = [pytest.mark.opencl,
              pytest.mark.skipif(DEVICE is None, reason=f"no OpenCL device: {NO_DEVICE}")]

CHILD = textwrap.dedent("""
    import json, sys, time
    start = time.perf_counter()
    from cnnc.backends.opencl.device import select_device
    from cnnc.backends.opencl.program import program_cache
    cache = program_cache(select_device(sys.argv[1]))
    cache.program("elementwise.cl", "zero", {"TAG": int(sys.argv[2])})  # the smallest kernel
    print(json.dumps({"from_disk": [r.from_disk for r in cache.records],
                      "seconds": time.perf_counter() - start}))
""")
WAIT_S = 45  # less than pyopencl's 60 s wait on a lock: a stale lock would fail the test


def _child(cache_dir, xdg, tag=0):
    env = {**os.environ, "CNNC_CACHE_DIR": str(cache_dir), "XDG_CACHE_HOME": str(xdg)}
    return subprocess.Popen([sys.executable, "-c", CHILD, DEVICE.index, str(tag)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc):
    out, err = proc.communicate(timeout=WAIT_S * 4)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _stale_locks(cache_dir, xdg):
    """Where pyopencl would have put its lock files: cnnc's cache folder and pyopencl's own."""
    version = ".".join(str(i) for i in sys.version_info)
    places = [cache_dir / "opencl",
              xdg / "pyopencl" / f"pyopencl-compiler-cache-v2-py{version}"]
    for folder in places:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "lock").write_text("")
    # ... and a temporary entry a process killed mid-write left behind.
    dead = 2**22 + 1  # above Linux's largest process id: no live process has it
    (cache_dir / "opencl" / f".0123abcd.bin.{dead}.xyz.tmp").write_bytes(b"half an entry")


def test_stale_locks_and_concurrent_cold_starts(tmp_path):
    """Two processes build the same program into an empty cache at once, with stale locks
    where pyopencl keeps them (it takes one to store a binary) and a temporary entry a killed
    writer left: both finish well within pyopencl's 60 s wait, and the one entry is whole."""
    from cnnc.backends.opencl.binary_cache import entries, read_entry

    cache, xdg = tmp_path / "cache", tmp_path / "xdg"
    _stale_locks(cache, xdg)
    start = time.perf_counter()
    results = [_result(p) for p in [_child(cache, xdg), _child(cache, xdg)]]
    assert time.perf_counter() - start < WAIT_S
    assert all(len(r["from_disk"]) == 1 for r in results)
    found = entries(cache / "opencl")
    assert len(found) == 1 and read_entry(found[0]) is not None
    assert not [p for p in (cache / "opencl").iterdir() if p.name.endswith(".tmp")]


def test_a_damaged_or_rejected_entry_is_rebuilt(tmp_path):
    from cnnc.backends.opencl.binary_cache import (
        build_cached,
        entries,
        entry_bytes,
        read_entry,
    )

    folder = tmp_path / "opencl"
    source = "__kernel void k(__global float *y) { y[get_global_id(0)] = 1.0f; }\n"

    def build():
        return build_cached(DEVICE.context, DEVICE.cl_device, source, "", {}, folder)[1]

    assert build() is False and build() is True
    (path,) = entries(folder)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the binary: the checksum no longer matches
    path.write_bytes(bytes(data))
    assert read_entry(path) is None
    assert build() is False and read_entry(path) is not None
    path.write_bytes(entry_bytes(b"not a program binary"))  # checks out, but the driver says no
    assert build() is False and build() is True


def test_two_checkouts_share_entries_and_a_changed_header_does_not(tmp_path):
    """The include folder is not part of an entry's name, the headers' texts are: a fresh clone
    (or a second install) at another path reuses the programs a first one built, and an edited
    header is rebuilt, not served stale."""
    from cnnc.backends.opencl.binary_cache import build_cached, entries, header_texts

    cache = tmp_path / "opencl"
    source = ('#include "scale.h"\n'
              "__kernel void k(__global float *y) { y[get_global_id(0)] = SCALE; }\n")

    def checkout(name, scale):
        folder = tmp_path / name / "kernels"
        folder.mkdir(parents=True)
        (folder / "scale.h").write_text(f"#define SCALE {scale}\n")
        return folder

    def build(folder):
        return build_cached(DEVICE.context, DEVICE.cl_device, source, "-DTAG=1",
                            header_texts(folder), cache, include=str(folder))[1]

    first, second, edited = checkout("a", "2.0f"), checkout("b c", "2.0f"), checkout("d", "3.0f")
    assert build(first) is False
    assert build(second) is True  # another path (with a space) and the same texts: shared
    assert build(edited) is False  # the same path shape, another header text: its own entry
    assert len(entries(cache)) == 2


def test_a_key_covers_the_headers_a_source_includes_and_no_others():
    """Editing a header rebuilds the programs that include it, directly or through another
    header, and no others (a new header in kernels/ once rebuilt every program: 17 minutes of a
    fresh CI run). Key arithmetic only: nothing is built."""
    from cnnc.backends.opencl.binary_cache import cache_key, header_texts, included_headers
    from cnnc.backends.opencl.kernel_files import kernel_dir

    headers = {"a.h": '#include "b.h"\n#define A 1\n', "b.h": "#define B 2\n",
               "c.h": "#define C 3\n"}
    source = '  #  include "a.h"\n__kernel void k(void) {}\n'
    assert set(included_headers(source, headers)) == {"a.h", "b.h"}

    def key(**edits):
        return cache_key(source, {**headers, **edits}, "-DX=1", "device")

    assert key(**{"c.h": "#define C 4\n"}) == key()  # not included: not in the key
    assert key(**{"d.h": "#define D 1\n"}) == key()  # a new header elsewhere
    assert key(**{"b.h": "#define B 3\n"}) != key()  # included through a.h
    assert key(**{"a.h": '#include "b.h"\n#define A 2\n'}) != key()
    # cnnc's own kernels: conv2d.cl reads common.h through tile.h, pool.cl does not read tile.h
    real = header_texts(kernel_dir())
    conv = (kernel_dir() / "conv2d.cl").read_text()
    pool = (kernel_dir() / "pool.cl").read_text()
    assert {"tile.h", "common.h"} <= set(included_headers(conv, real))
    assert "tile.h" not in included_headers(pool, real)
