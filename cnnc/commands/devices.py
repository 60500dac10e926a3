"""`cnnc devices`: every OpenCL platform and device, whether it can be used, and the default.

Each device's driver is qualified once (backends/opencl/qualification.py: cnnc's kernels built
and run in a child process), so a driver that lists a device it cannot compile for, or crashes
on real kernels, shows up as unusable, with the reason and what to use instead.
"""

from __future__ import annotations

import argparse

from cnnc.commands.options import SELECTORS

HELP = "list the OpenCL platforms and devices, and which one cnnc uses by default"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        metavar="SELECTOR",
        help=f"also say which device this selector picks: {SELECTORS}",
    )


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.0f} MiB"


def run(args: argparse.Namespace) -> int:
    from cnnc import settings
    from cnnc.backends.opencl.chain import MOST_EXAMPLES
    from cnnc.backends.opencl.device import (
        NO_PLATFORM_HINT,
        companion_of,
        default_device,
        devices,
        select_device,
    )
    from cnnc.errors import DeviceError

    found = devices()
    if not found:
        print("no OpenCL platform or device found")
        print(f"to get one, {NO_PLATFORM_HINT}")
        return 1
    try:
        default = default_device()
    except DeviceError:
        default = None
    platform = None
    for d in found:
        if d.platform_index != platform:
            platform = d.platform_index
            print(f"platform {platform}: {d.platform_name} ({d.platform_release})")
        mark = "*" if d is default else " "
        print(f" {mark} {d.index}  {d.name}")
        print(
            f"       type {d.kind}, {d.compute_units} compute units, "
            f"{_mib(d.global_memory)} memory (largest buffer {_mib(d.max_allocation)}), "
            f"{d.opencl_version}, fp64 {'yes' if d.fp64 else 'no'}"
        )
        limits = d.limits
        local = _mib(limits.local_memory) if limits.local_memory >= 2**20 else (
            f"{limits.local_memory // 1024} KiB")
        print(
            f"       work-groups of up to {limits.max_group} work-items, local memory {local}"
            f"{' (in global memory)' if limits.local_is_global else ''}"
        )
        if not d.usable:
            print(f"       unusable: {d.reason}")
            print(f"       fix: {d.fix}")
        elif d.verdict is not None and not d.verdict.binaries:
            print(f"       usable, programs built from source (no binary cache: "
                  f"{d.verdict.binaries_reason})")
        else:
            print("       usable")
        if d.usable and d.kind == "cpu" and d.compute_units > 1:
            print(f"       forward passes of at most {MOST_EXAMPLES} examples run as one launch "
                  f"(chains: {'on' if settings.chains() else 'off'}, CNNC_CHAINS)")
        companion = companion_of(d) if d.usable else None
        if companion is not None:
            print(f"       with {companion.index} {companion.name}: its one-thread companion, "
                  "which runs small forward passes without waking worker threads "
                  f"(latency path: {'on' if settings.latency_device() else 'off'}, "
                  "CNNC_LATENCY_DEVICE)")
    if default is None:
        print("no device can run cnnc's kernels; " + NO_PLATFORM_HINT)
        return 1
    print(
        f"* default device: {default.index} {default.name} (override with --device or CNNC_DEVICE)"
    )
    if args.device:
        picked = select_device(args.device)
        print(f"--device {args.device} selects {picked.index} {picked.name}")
    return 0
