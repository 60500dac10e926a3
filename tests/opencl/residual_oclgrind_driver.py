"""Run the residual epilogues on tiny shapes, for `test_residual_oclgrind.py` (under Oclgrind).

The inference graph of the op case `residual_joins` (conv2d_add on im2col + matmul,
conv2d_bn_add on the implicit GEMM, dense_add and dense_bn_add, each adding its residual as it
stores), and a conv2d_bn_add by Winograd F(2x2) (in batch chunks), F(4x4) and F(2x2) in one
launch (winograd_fused), on the device CNNC_DEVICE names; tilings: a CPU's and a GPU's, or with
--native only the device's own. Every tensor in its own allocation (isolate), so Oclgrind sees
any access past a tensor's end. Prints one line per run and exits 1 on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from oclgrind_cuts import chosen
from op_cases import CASES
from test_residual import close, residual_graph, run_both

import cnnc
from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.space import describe


def main(args: list[str]) -> int:
    device = select_device()
    if "--native" in args:
        targets = {"native": None}
    else:
        targets = chosen({"cpu": Target("cpu", 1),
                          "gpu": Target("gpu", 1, force_local_tiles=True)})
    case = next(c for c in CASES if c.name == "residual_joins")
    joins = inference_graph(cnnc.load_spec(case.spec()))
    wino = residual_graph("conv2d_bn_add", (3, 5, 6), filters=6, kernel_size=3,
                          padding="same", activation="relu")
    failed = 0
    for tiling, target in targets.items():
        report = cross_check(joins, 2, seed=3, local=False, target=target, isolate=True)
        failed += not report.passed
        print(f"residual_joins {tiling}-tiling: {'ok' if report.passed else 'MISMATCH'}",
              flush=True)
        for variant in ({"algo": "winograd", "wino_m": 2, "wino_chunk": 5},
                        {"algo": "winograd", "wino_m": 4},
                        {"algo": "winograd", "wino_m": 2, "wino_fused": 2}):
            got, ref, exe = run_both(wino, 2, device, variant, target, isolate=True)
            groups = sorted({lau.local_size for b in exe.plan.bindings.values()
                             for lau in b.launches if lau.local_size})
            ok, how = close(wino, 2, got, ref, variant)
            failed += not ok
            status = "ok" if ok else f"MISMATCH ({how})"
            print(f"conv2d_bn_add {describe(variant)} {tiling}-tiling: {status} groups "
                  f"{groups}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
