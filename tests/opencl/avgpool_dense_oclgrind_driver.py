"""Run avgpool_dense's head (gemv.cl's dense_softmax with -D POOL_PIXELS: the pooling in the
head's launch) on tiny shapes, for `test_avgpool_dense_oclgrind.py` (under Oclgrind).

The heads of test_avgpool_dense.py (odd maps, channel and unit counts no vector divides) at
batch 3 and 1 with the default block, and at batch 3 in blocks of 2 rows (the last block's
second row past the batch: it averages row 2 and is not stored); with a
CPU's register blocks (float8, as AVX2's) or, with --native, the device's own (Oclgrind: a
GPU's). Every tensor in its own allocation (isolate), so Oclgrind sees any access past a
tensor's end. Prints one line per run and exits 1 on a mismatch or a head not fused.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_avgpool_dense import HEAD, HEADS, head_spec

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph

# (batch, label, the dense part's variant): the default block (as many rows as the batch), and
# blocks of 2 rows at batch 3, the second block's last row past the batch.
RUNS = [(3, "default", None), (1, "default", None),
        (3, "2-row blocks", {"algo": "dense_softmax", "MR": 2, "VW": 1, "NV": 1})]


def main(args: list[str]) -> int:
    native = "--native" in args
    target = None if native else Target("cpu", 1, native_vector=8)
    failed = 0
    for i, head in enumerate(HEADS):
        graph = inference_graph(cnnc.load_spec(head_spec(*head)))
        for batch, label, variant in RUNS:
            report = cross_check(graph, batch, seed=3, local=False, target=target, isolate=True,
                                 variants={"d": variant} if variant else None)
            fused = all(c.kernels == HEAD for c in report.checks if c.node == "d")
            ok = report.passed and fused
            failed += not ok
            print(f"head{i} batch {batch} {label}: {'ok' if ok else 'MISMATCH'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
