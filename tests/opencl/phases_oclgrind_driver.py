"""Run the phases input gradient on tiny shapes, for `test_phases_oclgrind.py` (under Oclgrind).

Strides 2 and 3, kernels 1, 3 and 5, same and valid padding, sizes the stride does not divide,
channels not multiples of the vector width, groups; on the device CNNC_DEVICE names, with a
CPU's tiling (register blocks, and a 3-row block that ends inside a phase) and a GPU's (local
tiles within the device's limits), or with --native only the device's own. Every tensor in its
own allocation (isolate), so Oclgrind sees any access past a tensor's end. Prints one line per
run and exits 1 on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np
from test_strided_grad_input import grad_input_graph, run_both

from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.target import Target

# (batch, h, w, c, f, kernel, strides, padding, groups)
CASES = [
    (2, 5, 4, 3, 5, 3, 2, "same", 1),
    (2, 4, 5, 3, 2, 1, 2, "valid", 1),
    (1, 5, 7, 2, 3, (5, 3), (3, 2), "valid", 1),
    (2, 5, 3, 4, 6, 3, 2, "same", 2),
]


def main(args: list[str]) -> int:
    device = select_device()
    if "--native" in args:
        runs = {"native": (None, None)}
    else:
        runs = {
            "cpu": (Target("cpu", 1), None),
            "cpu-3-rows": (Target("cpu", 1), {"algo": "phases", "MR": 3, "VW": 1, "NV": 1}),
            "gpu": (Target("gpu", 1, force_local_tiles=True), None),
        }
    failed = 0
    for tiling, (target, variant) in runs.items():
        for batch, h, w, c, f, k, s, padding, groups in CASES:
            graph = grad_input_graph(h, w, c, f, k, s, padding, groups)
            got, ref, launches, tol = run_both(graph, batch, device, variant, target,
                                               isolate=True)
            assert any(x.kernel == "conv2d_grad_input_phases" for x in launches)
            plan_groups = sorted({x.local_size for x in launches if x.local_size})
            err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)
            ok = err <= tol
            failed += not ok
            status = "ok" if ok else f"MISMATCH {err:.2e}"
            print(f"{k}x{s} {padding} groups={groups} {tiling}-tiling: {status} groups "
                  f"{plan_groups}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
