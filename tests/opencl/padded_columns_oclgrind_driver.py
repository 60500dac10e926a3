"""Run convolutions with padded kernel columns (conv2d.cl -D FP) on tiny odd shapes, for
`test_padded_columns_oclgrind.py` (under Oclgrind): of test_padded_columns.py's graph at batch 2,
the 1x1 expansion to 72 filters (a folded batch norm), the gated projection to 24 (a residual
too), the 3x3 'same' one of 100 filters and the 'valid' one of 3, and with a CPU's tiling the
fused depthwise + 1x1 node of 24 filters (its row kernel's -D KP), through the tuner's gate (the
node's shape and one edge shape against the NumPy reference, canaries around every buffer).
With a CPU's tiling (AVX-512's float16 blocks: the first padded variant offered, else a forced
one), or with --native the device's own (Oclgrind: a GPU's, where none is offered: a padded
float4 block forced, which drops the local tiles). Prints one line per variant and exits 1 on a
refusal.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_padded_columns import FORCED, SPEC

from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Target
from cnnc.frontend.spec import load_spec
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.gate import Gate
from cnnc.tune.space import describe, variant_space

BATCH = 2
NODES = ("a", "j", "wide", "three")
ROWS = "dp"  # depthwise_pointwise's row kernel, a CPU's (-D KP): with a CPU's tiling only


def main(args: list[str]) -> int:
    native = "--native" in args
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tiny_padded.yaml"
        path.write_text(SPEC)
        graph = inference_graph(load_spec(str(path)))
    target = None if native else Target("cpu", 1, native_vector=16)
    backend = OpenCLBackend(select_device(), target=target)
    ctx = BindContext(graph, BATCH, backend.target)
    failed = 0
    for name in NODES if native else (*NODES, ROWS):
        node = graph.node(name)
        gate = Gate(backend, graph, node, BATCH)
        gate.cases = gate.cases[:2]  # the node's shape and one edge shape: Oclgrind is slow
        offered = [v for v in variant_space(node, ctx) if v.get("pad")]
        variant = offered[0] if offered else FORCED[1 if native else 0]
        verdict = gate.check(variant)
        failed += not verdict.admitted
        status = "ok" if verdict.admitted else f"REFUSED {verdict.reason}"
        print(f"{name} {describe(variant)}: {status}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
