"""Run dense_pair's fused launch (kernels/dense_pair.cl) on tiny shapes, for
`test_dense_pair_oclgrind.py` (under Oclgrind).

The pairs of test_dense_pair.py (unit counts no vector divides) at batch 3 and 1, with a CPU's
vectors (float8, as AVX2's: one work-item a group) or, with --native, the device's own group
(Oclgrind: a GPU's, up to GPU_GROUP work-items over the units). Every tensor in its own
allocation (isolate), so Oclgrind sees any access past a tensor's end. Prints one line per run
and exits 1 on a mismatch or a pair not fused.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_dense_pair import PAIR, PAIRS, pair_spec

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph

BATCHES = (3, 1)


def main(args: list[str]) -> int:
    native = "--native" in args
    target = None if native else Target("cpu", 1, native_vector=8)
    failed = 0
    for i, pair in enumerate(PAIRS):
        graph = inference_graph(cnnc.load_spec(pair_spec(*pair)))
        for batch in BATCHES:
            report = cross_check(graph, batch, seed=3, local=False, target=target, isolate=True)
            fused = all(c.kernels == PAIR for c in report.checks if c.node == "d")
            ok = report.passed and fused
            failed += not ok
            print(f"pair{i} batch {batch}: {'ok' if ok else 'MISMATCH'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
