"""Run the depthwise convolution's forward algorithms on tiny shapes, for
`test_depthwise_oclgrind.py` (under Oclgrind).

The forward graphs of the depthwise op cases (strides, dilation, multipliers 2, 3 and 4, 'valid',
7 channels, batch 1, a folded batch norm) with every depthwise node bound by one forward
algorithm at a time: the row kernel (depthwise.cl: depthwise_rows) with its default work-groups
and with one row block per group, and the direct kernel over flat pixels (depthwise_forward),
each with a CPU's register blocks (float8, as AVX2's) or, with --native, the device's own. Every
tensor in its own allocation (isolate), so Oclgrind sees any access past a tensor's end. Batch 3:
the row kernel's grid is rounded up to whole work-groups, and its last groups hold row blocks
past the batch. Prints one line per run and exits 1 on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_ops import CASES, forward_graph

from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph

FORWARD_OPS = ("depthwise_conv2d", "depthwise_conv2d_bn")
VARIANTS = {
    "rows": {"algo": "rows"},
    "rows-one-block-groups": {"algo": "rows", "rows_group": 1},
    "direct": {"algo": "depthwise"},
}


def case_names() -> list[str]:
    return [c.name for c in CASES if c.name.startswith("depthwise") or c.name == "batchnorm_folded"]


def main(args: list[str]) -> int:
    target = None if "--native" in args else Target("cpu", 1, native_vector=8)
    failed = 0
    for case in (c for c in CASES if c.name in case_names()):
        graph = inference_graph(forward_graph(case))
        nodes = [n.name for n in graph.nodes if n.op in FORWARD_OPS]
        if not nodes:  # fused into depthwise_pointwise (its own driver)
            continue
        for label, variant in VARIANTS.items():
            report = cross_check(graph, 3, seed=3, local=False, target=target, isolate=True,
                                 variants={n: variant for n in nodes})
            failed += not report.passed
            status = "ok" if report.passed else "MISMATCH"
            print(f"{case.name} {label} ({len(nodes)} nodes): {status}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
