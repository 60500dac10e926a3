"""Run pointwise_mlp.cl (a 1x1 convolution and the 1x1 convolution reading it) on tiny shapes,
for `test_pointwise_mlp_oclgrind.py` (under Oclgrind).

The blocks of test_pointwise_mlp.py (odd pixel counts, a partial pixel block, hidden and output
widths no vector divides, a residual on every other one, a batch norm folded into both parts on
every other one), each with its default block, with 4 work-items a group, with a 2-pixel
scalar block and with the driver's work-groups; with a CPU's register blocks (float8, as AVX2's) or, with --native, the device's
own (Oclgrind: a GPU's, the hidden arrays in local memory, a work-group within its limits).
Every tensor in its own allocation (isolate), so Oclgrind sees any access past a tensor's end.
Batch 3: the grid is rounded up to whole work-groups past the last pixel. Prints one line per
run and exits 1 on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_pointwise_mlp import BLOCKS, block_spec

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph

VARIANTS = {
    "default": {"algo": "mlp"},
    "groups-of-4": {"algo": "mlp", "mlp_group": 4},
    "2x1": {"algo": "mlp", "MR": 2, "VW": 1, "NV": 1},
    "driver-groups": {"algo": "mlp", "row_groups": 0},
}


def main(args: list[str]) -> int:
    native = "--native" in args
    target = None if native else Target("cpu", 1, native_vector=8)
    failed = 0
    for i, block in enumerate(BLOCKS):
        spec = block_spec(*block, "gelu", i % 2 == 0)
        graph = inference_graph(cnnc.load_spec(spec))
        name = next(n.name for n in graph.nodes if n.op == "pointwise_mlp")
        for label, variant in VARIANTS.items():
            if native and label != "default":
                continue
            report = cross_check(graph, 3, seed=3, local=False, target=target, isolate=True,
                                 variants={name: variant})
            failed += not report.passed
            print(f"block{i} {label}: {'ok' if report.passed else 'MISMATCH'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
