"""Direct against Winograd F(2x2, 3x3) and F(4x4, 3x3) on the fashion model's 3x3 convolutions.

    .venv/bin/python benchmarks/winograd.py [--device SEL] [--batch 32 256] [--repeat 5]
        [--chunk 0 512]
    .venv/bin/python benchmarks/winograd.py --model [--repeat 3]

Each row is one op (forward with bias and relu, or input gradient) of one layer at one batch
size, bound exactly as `cnnc` binds it with the node's variant set through the backend's
`choose_variants` hook (a one-node graph; data already on the device; best of --repeat runs, as
benchmarks/kernels.py). Effective GFLOP/s = the direct convolution's FLOPs (2 * N*OH*OW * 9*C*F)
/ time, so the columns compare as speeds; ratios are over the direct kernel, measured in the
same process. "4x16": the GEMMs' register tile set to 4 rows x 16 columns instead of
tiling.register_tile's (a variant's MR, VW, NV, as the tuner sets them). --chunk: tiles per batch chunk to try for Winograd (0 = the whole
batch's tiles at once). --fused: tiles per work-item of the one-launch kernel (winograd_fused)
to try too; a layer with too many channels for it (winograd.fused_tiles_per_item) shows "-".
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from cnnc.backends.opencl.device import select_device
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.winograd import fused_tiles_per_item
from kernels import _values, conv_nodes, time_opencl

LAYERS = {
    "conv2 14x14x64->128": (14, 14, 64, 128),
    "conv3 14x14x128->128": (14, 14, 128, 128),
    "conv4 7x7x128->256": (7, 7, 128, 256),
    "conv5 7x7x256->256": (7, 7, 256, 256),
    # specs/resnet_mini.yaml's: few channels, where the transforms cost as much as the GEMMs
    "resnet 28x28x16->16": (28, 28, 16, 16),
    "resnet 14x14x32->32": (14, 14, 32, 32),
}


def whole_model(device_sel: str | None, repeat: int) -> None:
    """specs/fashion.yaml's forward pass (batch 256) and Nadam training step (batch 32), every
    stride-1 3x3 convolution and input gradient on the default kernels, on F(4x4), and on F(4x4)
    with 4 x 16 GEMM tiles; runs interleaved, best of `repeat`."""
    import time

    import cnnc
    from cnnc.backends.opencl.launches import BindContext
    from cnnc.backends.opencl.winograd import winograd_variants
    from cnnc.crosscheck import random_feeds
    from cnnc.initializers import initial_values
    from cnnc.ir.train_config import TrainConfig, parse_optimizer
    from cnnc.passes.pipeline import inference_graph, training_graph

    spec = cnnc.load_spec(Path(__file__).parents[1] / "specs" / "fashion.yaml")
    config = TrainConfig(
        loss="sparse_categorical_crossentropy", optimizer=parse_optimizer("nadam")
    )
    device = select_device(device_sel)
    print(f"device: {device.describe()}; load average {os.getloadavg()[0]:.2f}")
    for name, graph, batch in (
        ("forward", inference_graph(spec), 256),
        ("training step", training_graph(spec, config, seed=7), 32),
    ):
        ctx = BindContext(graph, batch, OpenCLBackend(device).target)
        nodes = [n.name for n in graph.nodes if winograd_variants(n, ctx)]
        f4 = {"algo": "winograd", "wino_m": 4}
        f4_small = {**f4, "wino_tile": {"MR": 4, "VW": 16, "NV": 1}}
        configs = {
            "default": {},
            "F(4x4)": {n: f4 for n in nodes},
            "F(4x4) 4x16": {n: f4_small for n in nodes},
        }
        runs = {}
        for label, variants in configs.items():
            backend = OpenCLBackend(device)
            backend.choose_variants = lambda g, b, v=variants: v
            backend.init_state(graph.state, initial_values(graph.state, 1))
            exe, feeds = backend.compile(graph, batch), random_feeds(graph, batch, 1)
            exe.run(feeds, [], step=1)
            runs[label] = (backend, exe, feeds, [])
        for _ in range(repeat):
            for backend, exe, feeds, times in runs.values():
                start = time.perf_counter()
                exe.run(feeds, [], step=1)
                backend.queue.finish()
                times.append(time.perf_counter() - start)
        base = min(runs["default"][3])
        cells = [f"{k} {batch / min(r[3]):.0f} img/s ({base / min(r[3]):.2f}x)"
                 for k, r in runs.items()]
        print(f"{name}, batch {batch}: " + "; ".join(cells), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device")
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--chunk", type=int, nargs="+", default=[0])
    parser.add_argument("--fused", type=int, nargs="*", default=[4])
    parser.add_argument("--layers", nargs="+", default=list(LAYERS), choices=list(LAYERS))
    parser.add_argument(
        "--model", action="store_true",
        help="instead: the whole fashion model (forward at batch 256, training step at 32)",
    )
    args = parser.parse_args()
    if args.model:
        whole_model(args.device, args.repeat)
        return
    device = select_device(args.device)
    backend = OpenCLBackend(device)
    rng = np.random.default_rng(0)
    print(f"device: {device.describe()}; load average {os.getloadavg()[0]:.2f}")
    small = {"MR": 4, "VW": 16, "NV": 1}
    variants: list[tuple[str, dict | None]] = [("direct", None), ("direct 4x16", small)]
    for m in (2, 4):
        for c in args.chunk:
            name = f"F({m}x{m})" + (f" chunk {c}" if c else "")
            v = {"algo": "winograd", "wino_m": m, "wino_chunk": c}
            variants += [(name, v), (name + " 4x16", {**v, "wino_tile": small})]
        for nt in args.fused:
            variants.append((f"F({m}x{m}) fused x{nt}",
                             {"algo": "winograd", "wino_m": m, "wino_fused": nt}))
    print(f"{'layer':22} {'op':11} {'batch':>5} " + " ".join(f"{n:>17}" for n, _ in variants))
    for layer in args.layers:
        h, w, c, f = LAYERS[layer]
        ops = conv_nodes(h, w, c, f, 3)[:2]  # forward, grad input
        for batch in args.batch:
            flops = 2 * batch * h * w * 9 * c * f
            for op, graph, _ in ops:
                values = _values(graph, batch, rng)
                node = graph.nodes[-1].name
                cells = []
                base = None
                for name, variant in variants:
                    if variant and variant.get("wino_fused") and variant["wino_fused"] not in \
                            fused_tiles_per_item(
                                {"C": c if op == "forward" else f, "F": f if op == "forward"
                                 else c}, variant["wino_m"], backend.target):
                        cells.append("-")
                        continue
                    chosen = {"algo": "direct", **variant} if name == "direct 4x16" else variant
                    backend.choose_variants = lambda g, b, v=chosen, n=node: {n: v} if v else {}
                    t = time_opencl(backend, graph, batch, values, args.repeat)
                    base = base or t
                    cells.append(f"{flops / t / 1e9:7.1f} ({base / t:4.2f}x)")
                print(f"{layer:22} {op:11} {batch:5} " + " ".join(f"{s:>17}" for s in cells),
                      flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
