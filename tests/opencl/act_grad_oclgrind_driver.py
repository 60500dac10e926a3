"""Run the fused activation gradients on tiny shapes, for `test_act_grad_oclgrind.py` (under
Oclgrind).

One training step of a small network whose activations' gradients fuse into their dy's producers
(bind_act_grad.py: a 1x1 and a 3x3 conv2d input gradient and a depthwise one with the derivative
in their epilogue, a two-input add of gradients as add_act_grad, a dense input gradient, a
strided input gradient through the scratch buffer), against NumPy on the device CNNC_DEVICE
names; tilings: a CPU's and a GPU's, or with --native only the device's own; batches 1 and 2.
Every tensor in its own allocation (isolate), so Oclgrind sees any access past a tensor's end.
Prints one line per run and exits 1 on a mismatch.
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
    "network": "act_grads",
    "input": [4, 3, 3],
    "layers": [
        {"conv2d": [5, 3], "padding": "same", "activation": "silu", "name": "c1"},
        {"conv2d": [6, 1], "activation": "gelu", "name": "c2"},
        {"depthwise_conv2d": 3, "padding": "same", "activation": "hard_swish", "name": "dw"},
        {"conv2d": [3, 1], "name": "p", "inputs": ["dw"]},
        {"conv2d": [3, 3], "padding": "same", "name": "q", "inputs": ["dw"]},
        {"add": None, "inputs": ["p", "q"], "name": "s"},
        {"activation": "softplus", "name": "sp"},
        {"conv2d": [5, 3], "strides": 2, "padding": "same", "activation": "mish", "name": "c3"},
        {"conv2d": [4, 1], "activation": "relu", "name": "c4"},
        "flatten",
        {"dense": 3, "activation": "gelu_tanh", "name": "d1"},
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
    assert sum(n.op.endswith("_act_grad") for n in graph.nodes) >= 6
    failed = 0
    for tiling, target in targets.items():
        for batch in (1, 2):
            report = cross_check(graph, batch, seed=3, step=1, local=False, target=target,
                                 isolate=True)
            failed += not report.passed
            bad = [c.node for c in report.checks if not c.passed]
            print(f"act_grads batch {batch} {tiling}-tiling: "
                  f"{'ok' if report.passed else f'MISMATCH {bad}'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
