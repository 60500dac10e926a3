"""Run depthwise_layer_norm.cl (a depthwise convolution and the layer norm over its channels)
on tiny shapes, for `test_depthwise_layer_norm_oclgrind.py` (under Oclgrind).

The blocks of test_depthwise_layer_norm.py shrunk to a few pixels (odd maps, a row's last block
short, channel counts no vector divides and the most the op takes, strides, dilation, with and
without bias, center and scale), with a CPU's blocks (float8 vectors, as AVX2's, and the
most pixels whose accumulators fit) or, with --native, the device's own (Oclgrind: a GPU's, the
driver's work-groups). Every tensor in its own allocation (isolate), so Oclgrind sees any access
past a tensor's end. Batch 3: the grid is rounded up to whole work-groups past the batch. Prints
one line per block and exits 1 on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_depthwise_layer_norm import BLOCKS, block_spec

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes.pipeline import inference_graph


def tiny(block):
    """The block on a map at most 5x5 (the kernel's window still wider than the map)."""
    (h, w, c), k, dw, ln = block
    return (min(h, 5), min(w, 5), c), k, dw, ln


def main(args: list[str]) -> int:
    native = "--native" in args
    target = None if native else Target("cpu", 1, native_vector=8)
    failed = 0
    for i, block in enumerate(BLOCKS):
        graph = inference_graph(cnnc.load_spec(block_spec(*tiny(block))))
        assert graph.node("n").op == "depthwise_layer_norm"
        report = cross_check(graph, 3, seed=3, local=False, target=target, isolate=True)
        failed += not report.passed
        print(f"block{i}: {'ok' if report.passed else 'MISMATCH'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
