"""Run conv2d_rows.cl (a convolution of few input channels) on tiny shapes, for
`test_conv_rows_oclgrind.py` (under Oclgrind).

The layers of test_conv_rows.py (1 to 4 channels, strides, dilation, 'same' and 'valid', a
folded batch norm on every other one), a residual added and a gated input, each bound by the row
kernel with its default block and work-groups, with one row block per group, and with a GEMM's
block; with a CPU's register blocks (float8, as AVX2's) or, with --native, the device's own
(Oclgrind: a GPU's, the driver's work-groups). Every tensor in its own allocation (isolate), so
Oclgrind sees any access past a tensor's end. Batch 3: the grid is rounded up to whole
work-groups, and its last groups hold row blocks past the batch. Prints one line per run (the
work-group sizes in brackets) and exits 1 on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_conv_rows import LAYERS, gated_spec, residual_spec, stem_spec

import cnnc
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph

VARIANTS = {
    "rows": {"algo": "conv_rows"},
    "rows-one-block-groups": {"algo": "conv_rows", "rows_group": 1},
    "rows-2x1": {"algo": "conv_rows", "MR": 2, "VW": 1, "NV": 1},
    # pixel vectors (-D PX): 8 pixels a vector, one filter a work-item (every layer's count)
    "rows-pixels": {"algo": "conv_rows", "MR": 8, "VW": 8, "NV": 1, "px": 1},
}


def graphs() -> dict:
    out = {f"layer{i}": stem_spec(shape, layer, "relu", i % 2 == 1)
           for i, (shape, layer) in enumerate(LAYERS)}
    out["residual"] = residual_spec()
    out["gated"] = gated_spec()
    return {name: inference_graph(cnnc.load_spec(spec)) for name, spec in out.items()}


def main(args: list[str]) -> int:
    native = "--native" in args
    target = None if native else Target("cpu", 1, native_vector=8)
    failed = 0
    for name, graph in graphs().items():
        nodes = [n.name for n in graph.nodes if n.op.startswith("conv2d")]
        for label, variant in VARIANTS.items():
            if native and label != "rows":
                continue
            variants = {n: variant for n in nodes}
            report = cross_check(graph, 3, seed=3, local=False, target=target, isolate=True,
                                 variants=variants)
            groups = []
            if target is not None:  # the work-groups a CPU gets (a GPU's are the driver's)
                plan = make_plan(graph, 3, target, variants=variants)
                groups = sorted({str(lau.local_size) for _, lau in plan.launches()
                                 if lau.kernel == "conv2d_rows"})
            failed += not report.passed
            status = "ok" if report.passed else "MISMATCH"
            print(f"{name} {label} [{' '.join(groups)}]: {status}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
