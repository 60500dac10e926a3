"""Run the forward pass's reduction parts (conv2d.cl -D SPLIT and conv2d_parts_finish) on tiny
odd shapes, for `test_forward_split_oclgrind.py` (under Oclgrind): the split variant the tuner
offers (else the default's 4) and 3 parts, for each convolution of test_forward_split.py's graph at batch 1 (a
residual join, a folded batch norm,
grouped channels, a softmax head, 'valid' windows, channel counts no part count divides),
through the tuner's gate (the node's shape and its edge shapes against the NumPy reference,
canaries around every buffer), with a CPU's tiling or, with --native, the device's own (Oclgrind:
a GPU's, the parts without local tiles). Prints one line per variant and exits 1 on a refusal.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_forward_split import SPEC

from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Target
from cnnc.frontend.spec import load_spec
from cnnc.passes.pipeline import inference_graph
from cnnc.tune.gate import Gate
from cnnc.tune.space import as_layer, describe, tunable, variant_space

BATCH = 1


def main(args: list[str]) -> int:
    native = "--native" in args
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tiny_split.yaml"
        path.write_text(SPEC)
        graph = inference_graph(load_spec(str(path)))
    backend = OpenCLBackend(select_device(), target=None if native else Target("cpu", 1))
    ctx = BindContext(graph, BATCH, backend.target)
    failed = 0
    no_local = {"local": 0} if backend.target.local_tiling else {}  # parts: never local tiles
    for node in graph.nodes:
        if not tunable(node) or as_layer(node).op != "conv2d":
            continue
        gate = Gate(backend, graph, node, BATCH)
        gate.cases = gate.cases[:2]  # the node's shape and one edge shape: Oclgrind is slow
        space = variant_space(node, ctx)
        # the parts offered (a GPU's without local tiles), else the default (4 parts)
        first = next((v for v in space if v.get("split", 1) > 1), space[0])
        for parts in (4, 3):  # and parts no channel count divides
            variant = {**first, "split": parts, **no_local}
            verdict = gate.check(variant)
            failed += not verdict.admitted
            status = "ok" if verdict.admitted else f"REFUSED {verdict.reason}"
            print(f"{node.name} {describe(variant)}: {status}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
