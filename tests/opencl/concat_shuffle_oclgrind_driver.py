"""Run the concat_shuffle gathers and the 1x1 convolutions that read them in place
(conv2d.cl's conv2d_forward built GATHERED) on tiny shapes, for `test_concat_shuffle_oclgrind.py`
(under Oclgrind).

The inference graphs of the op cases `concat_shuffle` (a half of a two-branch shuffle gathered
straight from the branches and kept, the other read in place by a 1x1 convolution, and a
three-branch shuffle read whole) and `conv_gathered` (runs of strides 1 to 6 over up to four
tensors, batch norms folded, one gather kept for a convolution that would read five) on the
CNNC_DEVICE names, cut as a CPU's and a GPU's launches are (whole rows a work-item, or one), or
with --native only the device's own. Every tensor in its own allocation (isolate), so Oclgrind
sees any access past a tensor's end. Prints one line per run and exits 1 on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from oclgrind_cuts import chosen
from op_cases import CASES

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph


def main(args: list[str]) -> int:
    if "--native" in args:
        targets = {"native": None}
    else:
        targets = chosen({"cpu": Target("cpu", 1), "gpu": Target("gpu", 1)})
    graphs = {name: inference_graph(cnnc.load_spec(next(c for c in CASES
                                                        if c.name == name).spec()))
              for name in ("concat_shuffle", "conv_gathered")}
    ops = {name: [n.op for n in g.nodes] for name, g in graphs.items()}
    assert ops["concat_shuffle"].count("concat_shuffle") == 2
    assert ops["concat_shuffle"].count("conv2d_gathered") == 1
    assert ops["conv_gathered"].count("conv2d_bn_gathered") == 2
    failed = 0
    for tiling, target in targets.items():
        for name, graph in graphs.items():
            report = cross_check(graph, 2, seed=3, local=False, target=target, isolate=True)
            failed += not report.passed
            print(f"{name} {tiling}-tiling: {'ok' if report.passed else 'MISMATCH'}",
                  flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
