"""Run the gated convolutions on tiny shapes, for `test_gated_oclgrind.py` (under Oclgrind).

The inference graph of the op case `se_gated_convs` (every gated op: the gate scaling the
implicit GEMM's loads, per row or shared by a block of one example, and im2col's copies), and a
single conv2d_bn_add_gated with a map-shaped gate, on the device CNNC_DEVICE names; tilings: a
CPU's and a GPU's, or with --native only the device's own. Every tensor in its own allocation
(isolate), so Oclgrind sees any access past a tensor's end. Prints one line per run and exits 1
on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from oclgrind_cuts import chosen
from op_cases import CASES
from test_gated import gated_graph
from test_residual import close, run_both

import cnnc
from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph


def main(args: list[str]) -> int:
    device = select_device()
    if "--native" in args:
        targets = {"native": None}
    else:
        targets = chosen({"cpu": Target("cpu", 1),
                          "gpu": Target("gpu", 1, force_local_tiles=True)})
    case = next(c for c in CASES if c.name == "se_gated_convs")
    graph = inference_graph(cnnc.load_spec(case.spec()))
    single = gated_graph("conv2d_bn_add_gated", (5, 3, 6), (5, 3, 6), filters=6,
                         kernel_size=3, padding="same", activation="relu")
    failed = 0
    for tiling, target in targets.items():
        report = cross_check(graph, 2, seed=3, local=False, target=target, isolate=True)
        failed += not report.passed
        print(f"se_gated_convs {tiling}-tiling: {'ok' if report.passed else 'MISMATCH'}",
              flush=True)
        got, ref, _ = run_both(single, 2, device, None, target, isolate=True)
        ok, how = close(single, 2, got, ref, None)
        failed += not ok
        print(f"conv2d_bn_add_gated {tiling}-tiling: {'ok' if ok else f'MISMATCH ({how})'}",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
