"""Run local response normalisation's kernels (kernels/lrn.cl) on tiny shapes, for
`test_lrn_oclgrind.py` (under Oclgrind).

One training step of a small network with lrn layers (windows of 3, 5 wider than half the
channels, and 7 wider than all 5, clipped at both ends; an lrn of a dense layer's rows), against
NumPy on the device CNNC_DEVICE names; tilings: a CPU's (8 values per work-item) and a GPU's
(one), or with --native only the device's own; batches 1 and 2. Every tensor in its own
allocation (isolate), so Oclgrind sees any access past a tensor's end. Prints one line per run
and exits 1 on a mismatch.
"""

from __future__ import annotations

import sys

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.ir.train_config import TrainConfig
from cnnc.passes.pipeline import training_graph

SPEC = {
    "network": "lrns",
    "input": [3, 2, 5],
    "layers": [
        {"conv2d": [5, 1], "activation": "relu"},
        {"lrn": 3, "alpha": 1.0, "name": "n1"},
        {"lrn": 5, "alpha": 2.0, "beta": 1.5, "bias": 2.0, "name": "n2"},
        {"lrn": 7, "alpha": 0.5, "beta": 0.5, "name": "n3"},
        "flatten",
        {"dense": 3},
        {"lrn": 3, "alpha": 1.0, "name": "n4"},
        {"dense": 2},
    ],
}


def main(args: list[str]) -> int:
    if "--native" in args:
        targets = {"native": None}
    else:
        targets = {"cpu": Target("cpu", 1), "gpu": Target("gpu", 1)}
    graph = training_graph(cnnc.load_spec(SPEC), TrainConfig(loss="mean_squared_error"))
    assert sum(n.op == "lrn_grad" for n in graph.nodes) == 4
    failed = 0
    for tiling, target in targets.items():
        for batch in (1, 2):
            report = cross_check(graph, batch, seed=3, step=1, local=False, target=target,
                                 isolate=True)
            failed += not report.passed
            bad = [c.node for c in report.checks if not c.passed]
            print(f"lrns batch {batch} {tiling}-tiling: "
                  f"{'ok' if report.passed else f'MISMATCH {bad}'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
