"""Run the Winograd kernels on tiny shapes, for `test_winograd_oclgrind.py` (under Oclgrind).

Forward (bias, relu) and input gradient, F(2x2), F(4x4) and F(7x7), in four launches and in one
(winograd_fused), and the kernel gradient F(3x3, 2x2) and F(3x3, 4x4), a shape whose tiles overhang the
image and whose channels are not multiples of the vector width, on the device CNNC_DEVICE names;
tilings: a CPU's (register blocks) and a GPU's (local-memory tiles within the device's limits),
or with --native only the device's own. Every tensor in its own allocation (isolate), so Oclgrind
sees any access past a tensor's end. Prints one line per run and exits 1 on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np
from oclgrind_cuts import chosen
from test_winograd import forward_graph, grad_input_graph, run_both, winograd_error_factor
from test_winograd_grad_kernel import grad_kernel_graph

from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.winograd import grad_kernel_error_factor

EPS32 = 2.0**-24


def main(args: list[str]) -> int:
    device = select_device()
    if "--native" in args:
        targets = {"native": None}
    else:
        targets = chosen({"cpu": Target("cpu", 1),
                          "gpu": Target("gpu", 1, force_local_tiles=True)})
    graphs = {
        "forward": forward_graph(3, 5, 3, 6, "same", True, "relu"),
        "grad_input": grad_input_graph(5, 3, 6, 3, "valid"),
    }
    failed = 0
    for tiling, target in targets.items():
        for what, graph in graphs.items():
            for m, fused in ((2, 0), (4, 0), (7, 0), (2, 3), (4, 2), (7, 2)):
                if fused:  # one launch, 3 (2) tiles per work-item: the last one's short
                    variant = {"algo": "winograd", "wino_m": m, "wino_fused": fused}
                else:
                    variant = {"algo": "winograd", "wino_m": m, "wino_chunk": 5 if m == 2 else 0}
                got, ref, k, exe = run_both(graph, 2, device, variant, target, isolate=True)
                groups = sorted(
                    {lau.local_size for b in exe.plan.bindings.values() for lau in b.launches
                     if lau.local_size}
                )
                scale = max(np.abs(ref).max(), 1.0)
                tol = 2 * winograd_error_factor(m) * np.sqrt(k) * EPS32 * scale
                ok = np.abs(got - ref).max() <= tol
                failed += not ok
                status = "ok" if ok else "MISMATCH"
                kind = f"fused x{fused} " if fused else ""
                print(f"{what} F({m}x{m}) {kind}{tiling}-tiling: {status} groups {groups}",
                      flush=True)
        # The kernel gradient, F(3x3, m x m): tiles overhanging dy's grid, odd channels
        graph = grad_kernel_graph(5, 3, 3, 6, "same")
        for m in (2, 4):
            got, ref, _, exe = run_both(graph, 2, device, {"algo": "winograd", "wino_m": m},
                                        target, isolate=True)
            groups = sorted({lau.local_size for b in exe.plan.bindings.values()
                             for lau in b.launches if lau.local_size})
            scale = max(np.abs(ref).max(), 1.0)
            tol = 2 * grad_kernel_error_factor({"wino_m": m}) * np.sqrt(2 * 5 * 3) * EPS32 * scale
            ok = np.abs(got - ref).max() <= tol
            failed += not ok
            print(f"grad_kernel F(3x3, {m}x{m}) {tiling}-tiling: {'ok' if ok else 'MISMATCH'} "
                  f"groups {groups}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
