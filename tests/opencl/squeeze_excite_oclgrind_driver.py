"""Run the squeeze_excite launches on tiny shapes, for `test_squeeze_excite_oclgrind.py` (under
Oclgrind).

The inference graphs of se_cases.py's blocks (odd and one-position maps, channel vectors of 16,
4, 2 and 1, dense and 1x1 layers, with and without biases) on the device CNNC_DEVICE names, with
a CPU's group shape (one work-item an example) and a GPU's (up to 128 work-items, positions in
stripes summed in local memory), or with --native only the device's own. Every tensor in its
own allocation (isolate), so Oclgrind sees any access past a tensor's end; its race checks see
the local memory shared across the barriers. Batch 3. Prints one line per run and exits 1 on a
mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from oclgrind_cuts import chosen
from se_cases import CASES

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph


def main(args: list[str]) -> int:
    if "--native" in args:
        targets = {"native": None}
    else:
        targets = chosen({"cpu": Target("cpu", 1, native_vector=16), "gpu": Target("gpu", 1)})
    failed = 0
    for tiling, target in targets.items():
        passed = True
        for name, spec in CASES.items():
            graph = inference_graph(cnnc.load_spec(spec))
            assert sum(n.op == "squeeze_excite" for n in graph.nodes) == 1, name
            report = cross_check(graph, 3, seed=3, local=False, target=target, isolate=True)
            if not report.passed:
                print(f"squeeze_excite {name} {tiling}: MISMATCH", flush=True)
                passed = False
        failed += not passed
        print(f"squeeze_excite {tiling}-tiling: {'ok' if passed else 'MISMATCH'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
