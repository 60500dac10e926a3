"""Run pool.cl's maxpool2d reading a concatenation's parts in place (-D PARTS) on tiny shapes,
for `test_pool_concat_oclgrind.py` (under Oclgrind).

Maps of test_pool_concat.py: the Inception block's three parts (2x2 windows), two parts under
overlapping 'same' windows on an odd map, four parts of 2-5 channels (1-channel vectors, 3x3
stride-2 windows), three parts under windows padded after the map only; with a CPU's vectors
(float8, as AVX2's) or, with --native, the device's own (Oclgrind: a GPU's). Every tensor in
its own allocation (isolate), so Oclgrind sees any access past a part's end. Batch 2. Prints one
line per run and exits 1 on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_pool_concat import MAPS, net_spec

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph

RUNS = len(MAPS)


def main(args: list[str]) -> int:
    native = "--native" in args
    target = None if native else Target("cpu", 1, native_vector=8)
    failed = 0
    for hw, channels, pool in MAPS:
        graph = inference_graph(cnnc.load_spec(net_spec(hw, channels, pool, activation="elu")))
        assert graph.node("m").op == "maxpool2d_concat"
        report = cross_check(graph, 2, seed=3, local=False, target=target, isolate=True)
        failed += not report.passed
        print(f"{channels} {hw}: {'ok' if report.passed else 'MISMATCH'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
