"""Run conv2d_grad_rows.cl (the kernel gradient of a convolution of few input channels) on tiny
shapes, for `test_grad_rows_oclgrind.py` (under Oclgrind).

Three of test_grad_rows.py's layers (the 7x7 stem, a strided one of 2 channels, a dilated one of
3) at batch 2, through the tuner's gate (the node's shape and one edge shape against the NumPy
reference, canaries around every buffer it writes), each with its default block, a kernel row
cut into tap blocks with parts whose work-groups take their rows together, and where they apply
the taps in vectors; with a CPU's tiling (float8 vectors, one part's work-items per group) or,
with --native, the device's own (Oclgrind: a GPU's, the driver's work-groups; the default
block only). Prints one line per variant and exits 1 on a refusal.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_grad_rows import LAYERS, _grad_kernel, _graph, _unit_steps

from cnnc.backends.opencl.bind_grad_rows import NAME
from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Target
from cnnc.tune.gate import Gate

BATCH = 2
PICKED = (0, 1, 3)  # indices into LAYERS


def variants(layer: dict, filters: int, native: bool) -> dict[str, dict]:
    out = {"default": {"algo": NAME}}
    if native:
        return out
    out["taps-3-sync"] = {"algo": NAME, "MR": 3, "VW": 2, "NV": 1, "split": 3, "sync_rows": 2}
    if _unit_steps(layer):
        out["tap-vectors"] = {"algo": NAME, "tap_vector": 1, "MR": filters, "VW": 8, "NV": 1,
                              "split": 2}
    return out


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
        for name, variant in variants(layer, node.attrs["filters"], native).items():
            verdict = gate.check(variant)
            failed += not verdict.admitted
            status = "ok" if verdict.admitted else f"REFUSED {verdict.reason}"
            print(f"{label} {name}: {status}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
