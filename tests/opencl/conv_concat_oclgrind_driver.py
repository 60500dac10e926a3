"""Run the kernels reading a concatenation's parts in place (winograd.cl's input transforms and
conv2d.cl's implicit GEMM with -D CONCAT=1) on tiny shapes, for `test_conv_concat_oclgrind.py` (under Oclgrind).

Maps of test_conv_concat.py: an odd map with no upsampling, the U-Net's upsampled first part, an
upsampled second part whose split is not a multiple of the vector width, both parts upsampled by
factors differing by axis; Winograd m=4, m=2 and the one-launch kernel, the implicit GEMM; with a CPU's vectors
(float8, as AVX2's) or, with --native, the device's own (Oclgrind: a GPU's). Every tensor in its
own allocation (isolate), so Oclgrind sees any access past a part's end. Batch 3. Prints one
line per run and exits 1 on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_conv_concat import MAPS, VARIANTS, net_spec

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph

RUNS = [
    (MAPS[0], "m4"), (MAPS[1], "m2"), (MAPS[1], "m4-fused"), (MAPS[2], "m2-fused"),
    (MAPS[3], "m2"), (MAPS[3], "m4-fused"), (MAPS[1], "direct"), (MAPS[4], "direct"),
]


def main(args: list[str]) -> int:
    native = "--native" in args
    target = None if native else Target("cpu", 1, native_vector=8)
    failed = 0
    for maps, label in RUNS:
        graph = inference_graph(cnnc.load_spec(net_spec(*maps, activation="elu")))
        report = cross_check(graph, 3, seed=3, local=False, target=target, isolate=True,
                             variants={"c": VARIANTS[label]})
        failed += not report.passed
        print(f"{label} {maps[0]}: {'ok' if report.passed else 'MISMATCH'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
