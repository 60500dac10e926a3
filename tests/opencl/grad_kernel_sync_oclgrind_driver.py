"""Run the kernel gradients' synchronised parts (conv2d.cl -D SYNC_STEPS: a strided one's
default) and the strided convolutions' copied windows ("im2col": 1; a 1x1 one's default forward)
on tiny odd shapes, for
`test_grad_kernel_sync_oclgrind.py` (under Oclgrind): every variant of those forms the tuner
offers for tests/tune/test_strided_im2col.py's graph (strides 1 and 2, 'same' and 'valid', 1x1
and 3x3, row blocks that end inside a tap), through the tuner's gate (the node's shape and its
edge shapes against the NumPy reference, canaries around every buffer), with a CPU's tiling.
Prints one line per variant and exits 1 on a refusal.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tune"))

from test_strided_im2col import SPEC

from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Target
from cnnc.frontend.spec import load_spec
from cnnc.passes.pipeline import training_graph
from cnnc.tune.gate import Gate
from cnnc.tune.space import describe, tunable, variant_space

BATCH = 2


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tiny_strided.yaml"
        path.write_text(SPEC)
        graph = training_graph(load_spec(str(path)))
    backend = OpenCLBackend(select_device(), target=Target("cpu", 1))
    ctx = BindContext(graph, BATCH, backend.target)
    failed = 0
    for node in graph.nodes:
        if not tunable(node) or node.op not in ("conv2d", "conv2d_grad_kernel"):
            continue
        gate = Gate(backend, graph, node, BATCH)
        gate.cases = gate.cases[:2]  # the node's shape and one edge shape: Oclgrind is slow
        space = variant_space(node, ctx)
        for variant in space:
            if not ("sync" in variant or "im2col" in variant or variant is space[0]):
                continue  # the forms, and the defaults (strided: synchronised or copied)
            verdict = gate.check(variant)
            failed += not verdict.admitted
            status = "ok" if verdict.admitted else f"REFUSED {verdict.reason}"
            print(f"{node.name} {describe(variant)}: {status}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
