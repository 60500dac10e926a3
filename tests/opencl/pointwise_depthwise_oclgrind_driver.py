"""Run pointwise_depthwise.cl (a 1x1 expansion and the depthwise convolution reading it) on tiny
shapes, for `test_pointwise_depthwise_oclgrind.py` (under Oclgrind).

The blocks of test_pointwise_depthwise.py shrunk to a few pixels and at most 24 expanded
channels (odd maps, a row block or column block short, channel counts no vector divides,
kernels 1, 3 and 5, strides, 'valid' padding, dilation, batch norms folded, with and without
biases and activations), with a CPU's blocks (float8 vectors, as AVX2's: the whole image's rows
a work-item, one work-item a group) or, with --native, the device's own (Oclgrind: a GPU's, one
row a work-item, the driver's work-groups). Every tensor in its own allocation (isolate), so
Oclgrind sees any access past a tensor's end. Batch 3. Prints one line per block and exits 1 on
a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_pointwise_depthwise import BLOCKS, block_spec

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.passes import fuse_pointwise_depthwise
from cnnc.passes.pipeline import inference_graph


def tiny(block):
    """The block on a map at most 5x5 (a 5x5 window still as wide as the map), 24 channels."""
    (h, w, c), filters, pw, k, dw, bn = block
    return (min(h, 5), min(w, 5), c), min(filters, 24), pw, k, dw, bn


def main(args: list[str]) -> int:
    native = "--native" in args
    target = None if native else Target("cpu", 1, native_vector=8)
    fuse_pointwise_depthwise.pays = lambda attrs: True  # the stride-1 blocks fused too
    failed = 0
    for i, block in enumerate(BLOCKS):
        graph = inference_graph(cnnc.load_spec(block_spec(*tiny(block))))
        assert graph.node(graph.outputs[0]).op == "pointwise_depthwise"
        report = cross_check(graph, 3, seed=3, local=False, target=target, isolate=True)
        failed += not report.passed
        print(f"block{i}: {'ok' if report.passed else 'MISMATCH'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
