"""Run kernels on tiny shapes, for `test_oclgrind.py` (run under the Oclgrind simulator).

Each op case's forward graph and training step runs on the device CNNC_DEVICE names (Oclgrind,
when the test points the ICD loader at it) and is compared with NumPy on its outputs. Tilings:
by default a CPU's (register blocks) and a GPU's (local-memory tiles), both within the device's
limits; with --native only the device's own choice (Oclgrind: a GPU's), which is how the test
checks work-group shapes chosen from GPU-like limits (OCLGRIND_MAX_WGSIZE and friends). Every
tensor gets its own allocation, so an access past a tensor's end is outside any buffer, where
Oclgrind reports it. Prints one line per run; the test reads Oclgrind's reports from stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from oclgrind_cuts import chosen
from op_cases import Case
from test_ops import CASES, forward_graph, train_graph

from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.runtime import target_for
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check

# The smallest network whose forward pass and training step launch every tiled GEMM (im2col with
# matmul, the implicit convolution and its input gradient, dense and its input gradient), for
# runs under several GPU-like limits.
TILED = Case(
    "tiled",
    (5, 5, 2),
    [
        {"conv2d": [8, 3], "padding": "same", "activation": "relu"},
        {"conv2d": [6, 3], "padding": "same"},
        {"maxpool2d": 2},
        "flatten",
        {"dense": 3, "activation": "softmax"},
    ],
)


def main(args: list[str]) -> int:
    native = "--native" in args
    names = [a for a in args if not a.startswith("--")]
    failed = 0
    cases = [c for c in (*CASES, TILED) if c.name in names] if names else CASES
    device = select_device()
    if native:
        targets = {"native": None}
    else:
        targets = chosen(
            {"cpu": Target("cpu", 1), "gpu": Target("gpu", 1, force_local_tiles=True)}
        )
    for case in cases:
        for tiling, target in targets.items():
            for what, graph in (("forward", forward_graph(case)), ("train", train_graph(case))):
                groups = sorted(
                    {
                        lau.local_size
                        for _, lau in make_plan(graph, 2, target_for(device, target)).launches()
                        if lau.local_size
                    }
                )
                report = cross_check(
                    graph, 2, seed=3, step=1, local=False, target=target, isolate=True
                )
                ok = report.passed
                failed += not ok
                status = "ok" if ok else "MISMATCH"
                print(f"{case.name} {what} {tiling}-tiling: {status} groups {groups}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
