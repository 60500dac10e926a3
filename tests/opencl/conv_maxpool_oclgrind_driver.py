"""Run the convolutions that pool as they store (winograd.cl's output transforms, conv2d_rows.cl
with -D POOL=1, taking maxima or with POOL_AVG=1 means) on tiny shapes, for `test_conv_maxpool_oclgrind.py` (under Oclgrind).

Maps of test_conv_maxpool.py: floor pooling of an odd map (a Winograd tile half outside), 'same'
pooling of an odd map (half windows), a strided stem whose row blocks end past the pooled row;
Winograd m=4, m=2 and the one-launch kernel, the row kernel with its default block, one row
block per group and 2-pixel blocks; with a CPU's register blocks (float8, as AVX2's) or, with
--native, the device's own (Oclgrind: a GPU's). Every tensor in its own allocation (isolate), so
Oclgrind sees any access past a tensor's end. Batch 3. Prints one line per run and exits 1 on a
mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_conv_avgpool import MAPS as AVG_MAPS
from test_conv_avgpool import ROW_MAPS as AVG_ROW_MAPS
from test_conv_avgpool import net_spec as avg_spec
from test_conv_maxpool import MAPS, ROW_MAPS, WINOGRAD, net_spec

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph

RUNS = [
    (MAPS[0], "m4", WINOGRAD["m4"]),
    (MAPS[1], "m2", WINOGRAD["m2"]),
    (MAPS[0], "m4-fused", WINOGRAD["m4-fused"]),
    (MAPS[1], "m2-fused", WINOGRAD["m2-fused"]),
    (ROW_MAPS[1], "rows", {"algo": "conv_rows"}),
    (ROW_MAPS[3], "rows-one-block-groups", {"algo": "conv_rows", "rows_group": 1}),
    (ROW_MAPS[1], "rows-2x8", {"algo": "conv_rows", "MR": 2, "VW": 8, "NV": 1}),
    (ROW_MAPS[5], "rows-8-channels", {"algo": "conv_rows"}),  # the pooled rule's channels
    # pixel vectors (-D PX), at stride 2 under 'same' pooling: a window cut short
    (ROW_MAPS[3], "rows-pixels", {"algo": "conv_rows", "MR": 8, "VW": 8, "NV": 1, "px": 4}),
]
# the means of whole windows (-D POOL_AVG=1, test_conv_avgpool.py's maps)
AVG_RUNS = [
    (AVG_MAPS[0], "avg-m4", WINOGRAD["m4"]),
    (AVG_MAPS[2], "avg-m2-fused", WINOGRAD["m2-fused"]),
    (AVG_ROW_MAPS[1], "avg-rows", {"algo": "conv_rows"}),
    (AVG_ROW_MAPS[3], "avg-rows-one-block-groups", {"algo": "conv_rows", "rows_group": 1}),
    (AVG_ROW_MAPS[4], "avg-rows-6-channels", {"algo": "conv_rows"}),  # LeNet-5's second
    (AVG_ROW_MAPS[0], "avg-rows-pixels",  # LeNet-5's stem in pixel vectors
     {"algo": "conv_rows", "MR": 8, "VW": 8, "NV": 1, "px": 3}),
]


def main(args: list[str]) -> int:
    native = "--native" in args
    target = None if native else Target("cpu", 1, native_vector=8)
    failed = 0
    runs = [(net_spec(*maps, activation="elu"), label, variant) for maps, label, variant in RUNS]
    runs += [(avg_spec(*maps, activation="elu"), label, variant)
             for maps, label, variant in AVG_RUNS]
    for spec, label, variant in runs:
        graph = inference_graph(cnnc.load_spec(spec))
        report = cross_check(graph, 3, seed=3, local=False, target=target, isolate=True,
                             variants={"p": variant})
        failed += not report.passed
        shape = spec["input"]["shape"]
        print(f"{label} {tuple(shape)}: {'ok' if report.passed else 'MISMATCH'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
