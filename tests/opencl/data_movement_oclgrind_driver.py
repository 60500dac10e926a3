"""Run the data-movement networks of test_data_movement.py (forward and a training step) on
tiny shapes, for `test_data_movement_oclgrind.py` (under Oclgrind), on the device CNNC_DEVICE
names: cut as a CPU's (with chunks of a few floats, so rows split and several rows share a
work-item) and as a GPU's, or with --native only the device's own. Every tensor in its own
allocation (isolate), so Oclgrind sees any access past a tensor's end. Prints one line per run
and exits 1 on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from oclgrind_cuts import chosen
from test_data_movement import NETWORKS, _graph

from cnnc.backends.opencl import tiling
from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check


def main(args: list[str]) -> int:
    device = select_device()
    if "--native" in args:
        cuts = {"native": None}
    else:
        cuts = chosen({"cpu": Target("cpu", 1), "gpu": Target("gpu", 1)})
    tiling.CPU_RUN_FLOATS = 12
    failed = 0
    for cut, target in cuts.items():
        for net in NETWORKS:
            for train in (False, True):
                report = cross_check(_graph(*net, train), 1 + train, device=device, seed=3,
                                     step=1, local=False, target=target, isolate=True)
                failed += not report.passed
                status = "ok" if report.passed else "MISMATCH"
                print(f"{net[0]} {'training' if train else 'forward'} {cut}: {status}",
                      flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
