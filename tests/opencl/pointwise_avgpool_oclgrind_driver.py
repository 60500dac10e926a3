"""Run pointwise_avgpool.cl (a 1x1 convolution and the global average pooling reading it) on
tiny shapes, for `test_pointwise_avgpool_oclgrind.py` (under Oclgrind).

The heads of test_pointwise_avgpool.py (odd maps, a partial pixel block, channel and filter
counts no vector divides, a batch norm folded in on every other one), each with its default
block and work-groups, with one image per group, and with a 2-row block; with a CPU's register
blocks (float8, as AVX2's) or, with --native, the device's own (Oclgrind: a GPU's, the driver's
work-groups). Every tensor in its own allocation (isolate), so Oclgrind sees any access past a
tensor's end. Batch 3: the grid is rounded up to whole work-groups past the batch. The same for
test_pointwise_avgpool.py's gathered heads (pointwise_avgpool_gathered.cl: the convolution
reads a shuffle's parts in place, each part its own allocation). Prints one line per run and
exits 1 on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_pointwise_avgpool import GATHERED_HEADS, HEADS, gathered_head_spec, head_spec

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph

VARIANTS = {
    "default": {"algo": "pooled"},
    "one-image-groups": {"algo": "pooled", "rows_group": 1},
    "2x1": {"algo": "pooled", "MR": 2, "VW": 1, "NV": 1},
}


def main(args: list[str]) -> int:
    native = "--native" in args
    target = None if native else Target("cpu", 1, native_vector=8)
    failed = 0
    specs = [(f"head{i}", head_spec(*head, "hard_swish", i % 2 == 0))
             for i, head in enumerate(HEADS)]
    specs += [(f"gathered{i}", gathered_head_spec(*head, "relu", i % 2 == 0))
              for i, head in enumerate(GATHERED_HEADS)]
    for name, spec in specs:
        graph = inference_graph(cnnc.load_spec(spec))
        for label, variant in VARIANTS.items():
            if native and label != "default":
                continue
            report = cross_check(graph, 3, seed=3, local=False, target=target, isolate=True,
                                 variants={"pool": variant})
            failed += not report.passed
            print(f"{name} {label}: {'ok' if report.passed else 'MISMATCH'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
