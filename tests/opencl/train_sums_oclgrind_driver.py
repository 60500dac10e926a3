"""Run issue 20's training fusions of session 5 on tiny shapes, for
`test_train_sums_oclgrind.py` (under Oclgrind).

One training step of a small network with layer norm's gamma and beta gradients as rows of one
pass's sums (share_ln_sums.py: layer_norm_grad_sums_partial + col_sum_finish, 8 channels and 3)
and squeeze-and-excitation input gradients in one node (fuse_excite_grad.py: excite_grad, with
a (1, 1, C) gate and an (N, C) one), against NumPy on the device CNNC_DEVICE names; tilings: a
CPU's and a GPU's, or with --native only the device's own; batches 1 and 2. Every tensor in its
own allocation (isolate), so Oclgrind sees any access past a tensor's end. Prints one line per
run and exits 1 on a mismatch.
"""

from __future__ import annotations

import sys

from oclgrind_cuts import chosen

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.ir.train_config import TrainConfig
from cnnc.passes.pipeline import training_graph

SPEC = {
    "network": "train_sums",
    "input": [3, 2, 8],
    "layers": [
        {"layer_norm": None, "name": "ln0"},
        {"conv2d": [8, 3], "padding": "same", "activation": "relu", "name": "x"},
        {"global_avgpool2d": None, "keepdims": True, "name": "sq"},
        {"conv2d": [8, 1], "activation": "sigmoid", "name": "gate"},
        {"multiply": None, "inputs": ["x", "gate"], "name": "se"},
        {"conv2d": [3, 1], "name": "y"},
        {"layer_norm": None, "epsilon": 1e-5, "name": "ln1"},
        {"global_avgpool2d": None, "name": "sq2"},
        {"dense": 3, "activation": "sigmoid", "name": "gate2"},
        {"multiply": None, "inputs": ["ln1", "gate2"], "name": "se2"},
        "flatten",
        {"dense": 2},
    ],
}


def main(args: list[str]) -> int:
    if "--native" in args:
        targets = {"native": None}
    else:
        targets = chosen({"cpu": Target("cpu", 1),
                          "gpu": Target("gpu", 1, force_local_tiles=True)})
    graph = training_graph(cnnc.load_spec(SPEC), TrainConfig(loss="mean_squared_error"))
    ops = [n.op for n in graph.nodes]
    assert ops.count("layer_norm_grad_sums") == 2 and ops.count("excite_grad") == 2, ops
    failed = 0
    for tiling, target in targets.items():
        for batch in (1, 2):
            report = cross_check(graph, batch, seed=3, step=1, local=False, target=target,
                                 isolate=True)
            failed += not report.passed
            bad = [c.node for c in report.checks if not c.passed]
            print(f"train_sums batch {batch} {tiling}-tiling: "
                  f"{'ok' if report.passed else f'MISMATCH {bad}'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
