"""Run conv2d_forward's 1x1 path (conv2d.cl: POINTWISE_ROWS) on tiny shapes, for
`test_pointwise_rows_oclgrind.py` (under Oclgrind).

A plain 1x1 convolution, one gated per example and one gated per example with a residual join
(test_pointwise_rows.py's graphs), at batch 2 on 5x3 maps: 30 rows, so that a block of 8 rows
holds rows past the end and rows of two examples; with a CPU's register blocks or, with
--native, the device's own (Oclgrind: a GPU's). Every tensor in its own allocation (isolate),
so Oclgrind sees any access past a tensor's end. Prints one line per run and exits 1 on a
mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from oclgrind_cuts import chosen
from test_gated import gated_graph
from test_pointwise_rows import conv_graph
from test_residual import close, run_both

from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.target import Target

BLOCK = {"MR": 8, "VW": 4, "NV": 3}


def main(args: list[str]) -> int:
    device = select_device()
    graphs = {
        "conv2d": conv_graph((5, 3, 13), filters=12, kernel_size=1, activation="relu"),
        "conv2d_gated": gated_graph("conv2d_gated", (5, 3, 9), (1, 1, 9), filters=12,
                                    kernel_size=1),
        "conv2d_bn_add_gated": gated_graph("conv2d_bn_add_gated", (5, 3, 9), (1, 1, 9),
                                           filters=12, kernel_size=1),
    }
    runs = {"native": (None, None)} if "--native" in args else chosen(
        {"cpu": (Target("cpu", 1), BLOCK)})
    failed = 0
    for tiling, (target, variant) in runs.items():
        for name, graph in graphs.items():
            got, ref, _ = run_both(graph, 2, device, variant, target, isolate=True)
            ok, how = close(graph, 2, got, ref, variant)
            failed += not ok
            print(f"{name} {tiling}-tiling: {'ok' if ok else f'MISMATCH ({how})'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
