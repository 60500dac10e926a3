"""`cnnc doctor`: why cnnc cannot run here, or runs slowly, one line per check with its fix.

Each line is OK, WARN or FAIL, then what was checked and found; WARN and FAIL lines say what to
do. The checks are in cnnc/doctor.py: Python and packages, the OpenCL ICD loader and its vendor
files, every device with its limits and its driver's qualification (cnnc's kernels built and run,
small networks checked against NumPy, in a child process), the device cnnc picks, the kernel cache, the datasets. Exit status 1 when any check FAILs.
"""

from __future__ import annotations

import argparse

from cnnc.commands.options import SELECTORS

HELP = "check this machine for cnnc: packages, OpenCL drivers and devices, caches, datasets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        metavar="SELECTOR",
        help=f"also check that this selector picks a usable device: {SELECTORS}",
    )
    parser.add_argument(
        "--requalify",
        action="store_true",
        help="qualify every device's driver again, whatever is remembered (a minute or more)",
    )


def run(args: argparse.Namespace) -> int:
    from cnnc.doctor import FAIL, WARN, all_checks

    counts = {"OK": 0, "WARN": 0, "FAIL": 0}
    for check in all_checks(args.device, args.requalify):
        for finding in check():
            counts[finding.status] += 1
            print(f"{finding.status:4s}  {finding.topic}: {finding.message}", flush=True)
            if finding.fix and finding.status in (WARN, FAIL):
                print(f"      fix: {finding.fix}", flush=True)
    print(f"doctor: {counts['OK']} OK, {counts['WARN']} WARN, {counts['FAIL']} FAIL")
    return 1 if counts[FAIL] else 0
