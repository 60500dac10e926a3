"""Run pooling with ONNX's options on tiny shapes, for `test_pool_oclgrind.py` (under Oclgrind).

One training step of the op cases `pool_onnx_pads_ceil` and `pool_onnx_dilated` (explicit
asymmetric pads, ceil_mode windows reaching past the pads, count_include_pad, dilations; the
max gradient's scatter and gather kernels), against NumPy on the device CNNC_DEVICE names;
tilings: a CPU's and a GPU's, or with --native only the device's own. Every tensor in its own
allocation (isolate), so Oclgrind sees any access past a tensor's end. Prints one line per run
and exits 1 on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from op_cases import CASES

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.ir.train_config import TrainConfig
from cnnc.passes.pipeline import training_graph

NAMES = ("pool_onnx_pads_ceil", "pool_onnx_dilated")


def main(args: list[str]) -> int:
    if "--native" in args:
        targets = {"native": None}
    else:
        targets = {"cpu": Target("cpu", 1), "gpu": Target("gpu", 1, force_local_tiles=True)}
    failed = 0
    for case in (c for c in CASES if c.name in NAMES):
        graph = training_graph(cnnc.load_spec(case.spec()),
                               TrainConfig(loss="mean_squared_error"))
        for tiling, target in targets.items():
            report = cross_check(graph, 2, seed=3, step=1, local=False, target=target,
                                 isolate=True)
            failed += not report.passed
            bad = [c.node for c in report.checks if not c.passed]
            print(f"{case.name} {tiling}-tiling: {'ok' if report.passed else f'MISMATCH {bad}'}",
                  flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
