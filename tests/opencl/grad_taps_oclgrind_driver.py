"""Run conv2d_grad_rows.cl's TAP_DIRECT kernel (bind_grad_taps.py) on tiny shapes, for
`test_grad_taps_oclgrind.py` (under Oclgrind).

Three of test_grad_taps.py's layers (3x3 'same' on 16 channels, 5x5 'same' on a map narrower
than the kernel, 3x3 stride 2) at batch 2, through the tuner's gate (the node's shape and one
edge shape of odd channels against the NumPy reference, canaries around every buffer it
writes), each with the first block the tuner lists for float8 vectors and single-vector blocks
whose parts' work-groups take their rows together; with --native, the device's own limits
(Oclgrind: a GPU's) and vectors of 4. Prints one line per variant and exits 1 on a refusal.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_grad_taps import LAYERS, _grad_kernel, _graph

from cnnc.backends.opencl.bind_grad_taps import NAME, grad_taps_variants
from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Target
from cnnc.tune.gate import Gate

BATCH = 2
PICKED = (0, 2, 5)  # indices into LAYERS


def variants(graph, node, target: Target, native: bool) -> dict[str, dict]:
    if native:
        return {"vectors-4": {"algo": NAME, "MR": 1, "VW": 4, "NV": 1, "TVB": 2, "split": 2}}
    listed = grad_taps_variants(node, BindContext(graph, BATCH, target))
    return {"listed": listed[0],
            "single-sync": {"algo": NAME, "MR": 1, "VW": 8, "NV": 1, "TVB": 1, "split": 2,
                            "sync_rows": 2}}


def main(args: list[str]) -> int:
    native = "--native" in args
    target = None if native else Target("cpu", 1, native_vector=8)
    backend = OpenCLBackend(select_device(), target=target)
    failed = 0
    for index in PICKED:
        label, shape, layer, _ = LAYERS[index]
        graph = _graph(shape, layer)
        node = _grad_kernel(graph)
        gate = Gate(backend, graph, node, BATCH)
        gate.cases = gate.cases[:2]  # the node's shape and one edge shape: Oclgrind is slow
        for name, variant in variants(graph, node, backend.target, native).items():
            verdict = gate.check(variant)
            failed += not verdict.admitted
            status = "ok" if verdict.admitted else f"REFUSED {verdict.reason}"
            print(f"{label} {name}: {status}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
