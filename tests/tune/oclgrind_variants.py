"""Run non-default kernel variants under Oclgrind, for test_oclgrind_variants.py.

For one node of each tunable op of a tiny network, the first and last non-default variants of
the device's own space (Oclgrind runs the GPU code paths: local tiles within its limits) run on
the real (odd) shape, every tensor in its own allocation, and are checked against the NumPy
reference by the tuner's gate. Prints one line per variant; the test reads Oclgrind's reports
from stderr.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from nodes import op_nodes, tiny_inference_graph, tiny_training_graph

from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.tune.gate import Gate
from cnnc.tune.space import TUNABLE_OPS, describe, variant_space

BATCH = 2


def main() -> int:
    folder = Path(tempfile.mkdtemp())
    graphs = [tiny_training_graph(folder), tiny_inference_graph(folder)]
    backend = OpenCLBackend(isolate=True)
    failed = 0
    for op in TUNABLE_OPS:
        graph, (node, *_) = op_nodes(graphs, op)
        space = variant_space(node, BindContext(graph, BATCH, backend.target))
        gate = Gate(backend, graph, node, BATCH)
        gate.cases = gate.cases[:1]
        for variant in {describe(v): v for v in (space[1], space[-1])}.values():
            verdict = gate.check(variant)
            backend.choose_variants = lambda g, b, v=variant, n=node.name: {n: v}
            plan = backend.plan(gate.cases[0].graph, BATCH)
            backend.choose_variants = lambda g, b: {}
            groups = sorted({lau.local_size for _, lau in plan.launches() if lau.local_size})
            status = "ok" if verdict.admitted else f"FAILED {verdict.reason}"
            print(f"{node.name} {describe(variant)} groups {groups}: {status}", flush=True)
            failed += not verdict.admitted
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
