"""Run a chain's gemv (gemv.cl's gemv_parts then gemv_sum: a plan made for chains,
BindContext.serial) on tiny dense layers, for `test_gemv_parts_oclgrind.py` (under Oclgrind).

test_chains.py's dense network (odd widths: 24, 100 and 40 units, no vector divides them all)
at batch 1, 3 and 8: one or two parts, one or two row blocks (the last block's rows past the
batch read row M - 1 and are not stored). Each launch runs on its own, as the plan lists them
(Oclgrind checks each; the chain that would join them is test_chains.py's, on the CPU device),
every tensor in its own allocation (isolate), bound for a 2-core AVX-512 CPU. Prints one line
per run and exits 1 on a mismatch or a plan without gemv_parts.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_chains import DENSE

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph

BATCHES = (1, 3, 8)


def main() -> int:
    graph = inference_graph(cnnc.load_spec(DENSE))
    gemv = {n.name: {"algo": "gemv"} for n in graph.nodes if n.op.startswith("dense")}
    failed = 0
    for batch in BATCHES:
        report = cross_check(graph, batch, seed=3, local=False, isolate=True, variants=gemv,
                             target=Target("cpu", 2, native_vector=16), serial=True)
        parts = sum(c.kernels.count("gemv_parts") for c in report.checks)
        ok = report.passed and parts >= 2
        failed += not ok
        print(f"dense chain batch {batch}: {'ok' if ok else f'MISMATCH ({parts} parts)'}",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
