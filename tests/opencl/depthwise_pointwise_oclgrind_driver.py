"""Run the depthwise_pointwise launches on tiny shapes, for
`test_depthwise_pointwise_oclgrind.py` (under Oclgrind).

The inference graph of the op case `depthwise_pointwise` (three fused blocks: batch norms
folded into both parts, a strided biased part, a dilated 2x3 window; filters of 6, 7 and 4) on
the device CNNC_DEVICE names, with a CPU's and a GPU's register blocks (a CPU's: the staged
row kernel, its default, the staged kernel over flat pixel blocks and the one-phase kernel), or with --native only the device's own. Every tensor in its own allocation (isolate), so Oclgrind sees any access
past a tensor's end. Batch 3: the last pixel block is partial. Prints one line per run and exits
1 on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from oclgrind_cuts import chosen
from op_cases import CASES

import cnnc
from cnnc.backends.opencl.bind_depthwise_pointwise import NAME, STAGED
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph


def main(args: list[str]) -> int:
    if "--native" in args:
        targets = {"native": None}
    else:
        targets = chosen({"cpu": Target("cpu", 1, native_vector=16), "gpu": Target("gpu", 1)})
    case = next(c for c in CASES if c.name == "depthwise_pointwise")
    graph = inference_graph(cnnc.load_spec(case.spec()))
    assert sum(n.op == "depthwise_pointwise" for n in graph.nodes) == 3
    nodes = [n.name for n in graph.nodes if n.op == "depthwise_pointwise"]
    one_phase = {name: {"algo": NAME} for name in nodes}
    staged = {name: {"algo": STAGED} for name in nodes}
    runs = []
    for tiling, target in targets.items():
        runs.append((tiling, target, None))
        if tiling == "cpu":
            runs.append(("cpu staged", target, staged))
            runs.append(("cpu one-phase", target, one_phase))
    failed = 0
    for tiling, target, variants in runs:
        report = cross_check(graph, 3, seed=3, local=False, target=target, isolate=True,
                             variants=variants)
        failed += not report.passed
        print(f"depthwise_pointwise {tiling}-tiling: {'ok' if report.passed else 'MISMATCH'}",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
