"""Run convolutions through conv2d_forward's runs of taps (kernels/conv2d.cl, TAP_RUNS) on tiny
odd shapes, for `test_tap_runs_oclgrind.py` (under Oclgrind): test_tap_runs.py's layers but the
28x28 one, at batch 2, through the tuner's gate (the node's shape and one edge shape against
the NumPy reference, canaries around every buffer). With a CPU's tiling: blocks of 8 and 3 rows
(AVX-512's vectors); with --native the device's own (Oclgrind: a GPU's) with its local tiles
off ("local": 0), so that the register-blocked path with the runs is what runs, 2-row blocks
of float4 or float2. Prints one line per variant and exits 1 on a refusal.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_tap_runs import LAYERS, graph_of, variant_of

from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Target
from cnnc.tune.gate import Gate
from cnnc.tune.space import describe

BATCH = 2


def main(args: list[str]) -> int:
    native = "--native" in args
    target = None if native else Target("cpu", 1, native_vector=16)
    backend = OpenCLBackend(select_device(), target=target)
    failed = 0
    for index, (shape, layer, vw) in enumerate(LAYERS[:-1]):
        graph = graph_of(shape, layer)
        gate = Gate(backend, graph, graph.node("conv"), BATCH)
        gate.cases = gate.cases[:2]  # the node's shape and one edge shape: Oclgrind is slow
        if native:
            variants = [{**variant_of(2, min(vw, 4)), "local": 0}]
        else:
            variants = [variant_of(rows, vw) for rows in (8, 3)]
        for variant in variants:
            verdict = gate.check(variant)
            failed += not verdict.admitted
            status = "ok" if verdict.admitted else f"REFUSED {verdict.reason}"
            print(f"layer {index} {describe(variant)}: {status}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
