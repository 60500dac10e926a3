"""Whole-network speed of cnnc beside other systems on the same machine, in one run, as ratios.

    .venv/bin/python benchmarks/frameworks.py [SPEC ...] [--forward-batch 256] [--train-batch 32]
                                              [--runs 5] [--device SEL]

For each spec (default: the seed model, specs/fashion.yaml) it times, through each system's
public API with inputs coming from host NumPy arrays:
- forward: predictions for one batch (inference mode),
- training step: forward, loss, backward and the spec's optimizer update on one batch,
for cnnc's OpenCL backend, cnnc's NumPy reference backend (a vectorised NumPy interpreter: what a
hand-written NumPy implementation of the same network does), PyTorch when it is installed
(CPU build; `pip install torch==2.13.0`), with the same layers built from the cnnc graph and
torch.set_num_threads(os.cpu_count()), and onnxruntime when it is installed (forward only), on
the model cnnc's own export writes (`cnnc export`, NCHW). Each figure is the median of --runs timed runs after one
warm-up run (kernel builds and first-run costs are not counted). Ratios are cnnc OpenCL's
images/s over the other system's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

import cnnc
from cnnc.ir.graph import Graph


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up: kernel builds, allocations, first-touch
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cnnc_timings(graph: Graph, backend: str, device: str | None, fb: int, tb: int,
                 runs: int) -> dict[str, float | None]:
    model = cnnc.compile(graph, backend=backend, device=device, seed=0)
    shape = graph.shape_of(graph.inputs[0])[1:]
    rng = np.random.default_rng(0)
    x_f = rng.random((fb, *shape), dtype=np.float32)
    x_t = rng.random((tb, *shape), dtype=np.float32)
    classes = graph.shape_of(graph.outputs[0])[-1]
    y_t = rng.integers(0, classes, tb).astype(np.int32)
    return {
        "forward": median_seconds(lambda: model.predict(x_f, batch_size=fb), runs),
        "train": median_seconds(lambda: model.train_step(x_t, y_t), runs),
    }


# ---------------------------------------------------------------- PyTorch replica


def torch_model(graph: Graph):
    """The chain network as torch modules (NCHW), or None when the graph is not a chain."""
    import torch
    from torch import nn

    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "elu": nn.ELU,
            "softmax": lambda: nn.Softmax(dim=1), "leaky_relu": lambda: nn.LeakyReLU(0.2)}
    layers: list = []
    prev = None
    for node in graph.nodes:
        if node.op != "input" and node.inputs != (prev,):
            return None
        prev = node.name
        a = node.attrs
        if node.op == "input":
            continue
        in_shape = graph.shape_of(node.inputs[0])
        if node.op == "conv2d":
            kh, kw = a["kernel_size"]
            if a["padding"] == "same" and max(a["strides"]) > 1:
                return None  # TF-style asymmetric padding has no direct torch equivalent
            layers.append(nn.Conv2d(in_shape[-1], a["filters"], (kh, kw), a["strides"],
                                    padding=a["padding"], dilation=a["dilation_rate"],
                                    groups=a["groups"], bias=a["use_bias"]))
        elif node.op in ("maxpool2d", "avgpool2d"):
            if a["padding"] != "valid":
                return None
            cls = nn.MaxPool2d if node.op == "maxpool2d" else nn.AvgPool2d
            layers.append(cls(a["pool_size"], a["strides"] or a["pool_size"]))
        elif node.op == "flatten":
            layers.append(nn.Flatten())
        elif node.op == "dense":
            layers.append(nn.Linear(in_shape[-1], a["units"], bias=a["use_bias"]))
        elif node.op == "dropout":
            layers.append(nn.Dropout(a["rate"]))
        elif node.op == "batchnorm":
            c = in_shape[-1]
            bn = nn.BatchNorm2d if len(in_shape) == 4 else nn.BatchNorm1d
            layers.append(bn(c, eps=a["epsilon"], momentum=1 - a["momentum"]))
        elif node.op == "global_avgpool2d":
            layers.extend([nn.AdaptiveAvgPool2d(1), nn.Flatten()])
        elif node.op != "activation":
            return None
        act = a.get("activation", "linear")
        if act != "linear" and act != "softmax":
            layers.append(acts[act]())
    return torch.nn.Sequential(*layers)  # softmax folded into the loss, as cnnc does


def torch_timings(graph: Graph, fb: int, tb: int, runs: int) -> dict[str, float] | None:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    net = torch_model(graph)
    if net is None:
        return None
    shape = graph.shape_of(graph.inputs[0])[1:]
    classes = graph.shape_of(graph.outputs[0])[-1]
    rng = np.random.default_rng(0)
    x_f = rng.random((fb, *shape), dtype=np.float32)
    x_t = rng.random((tb, *shape), dtype=np.float32)
    y_t = rng.integers(0, classes, tb)
    opt_name = graph.train.optimizer.name if graph.train else "nadam"
    opt_cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "nadam": torch.optim.NAdam}
    opt = opt_cls[opt_name](net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def forward() -> np.ndarray:
        net.eval()
        with torch.no_grad():
            x = torch.from_numpy(x_f).permute(0, 3, 1, 2).contiguous()
            return torch.softmax(net(x), dim=1).numpy()

    def train() -> float:
        net.train()
        x = torch.from_numpy(x_t).permute(0, 3, 1, 2).contiguous()
        opt.zero_grad()
        loss = loss_fn(net(x), torch.from_numpy(y_t))
        loss.backward()
        opt.step()
        return loss.item()

    return {"forward": median_seconds(forward, runs), "train": median_seconds(train, runs)}


# ---------------------------------------------------------------- onnxruntime


def onnxruntime_timings(graph: Graph, fb: int, runs: int) -> dict[str, float | None]:
    """Forward time in onnxruntime (CPU) of the network as cnnc exports it."""
    import onnxruntime as ort

    from cnnc.export.onnx_export import build_model

    weights = cnnc.compile(graph, backend="numpy", seed=0).get_weights()
    proto = build_model(graph, weights)
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    shape = graph.shape_of(graph.inputs[0])[1:]
    x = np.random.default_rng(0).random((fb, *shape), dtype=np.float32)
    if x.ndim == 4:
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # the export's NCHW input
    feeds = {graph.inputs[0]: x}
    return {"forward": median_seconds(lambda: session.run(None, feeds), runs), "train": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=["specs/fashion.yaml"])
    parser.add_argument("--forward-batch", type=int, default=256)
    parser.add_argument("--train-batch", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default=None)
    parser.add_argument("--no-numpy", action="store_true", help="skip the NumPy backend")
    args = parser.parse_args()
    fb, tb = args.forward_batch, args.train_batch
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; forward batch {fb}, "
          f"training batch {tb}; median of {args.runs} runs")
    for spec in args.specs:
        graph = cnnc.load_spec(spec)
        rows: dict[str, dict[str, float | None] | None] = {}
        rows["cnnc opencl"] = cnnc_timings(graph, "opencl", args.device, fb, tb, args.runs)
        if not args.no_numpy:
            rows["cnnc numpy"] = cnnc_timings(graph, "numpy", None, fb, tb, args.runs)
        try:
            import torch

            rows[f"pytorch {torch.__version__}"] = torch_timings(graph, fb, tb, args.runs)
        except ImportError:
            print("(PyTorch is not installed: pip install torch==2.13.0 to compare with it)")
        try:
            import onnxruntime

            rows[f"onnxruntime {onnxruntime.__version__} (cnnc export)"] = onnxruntime_timings(
                graph, fb, args.runs)
        except ImportError:
            print("(onnxruntime is not installed: pip install 'cnnc[dev]' to compare with it)")
        ref = rows["cnnc opencl"]
        print(f"\n{graph.name} ({spec})")
        print("| system | forward img/s | training img/s | cnnc opencl is x faster "
              "(fwd / train) |")
        print("|---|---:|---:|---:|")
        for name, t in rows.items():
            if t is None:
                print(f"| {name} | (network not expressible) | | |")
                continue
            f, rf = fb / t["forward"], t["forward"] / ref["forward"]
            if t["train"] is None:  # inference only (onnxruntime)
                print(f"| {name} | {f:,.0f} | — | {rf:.2f} / — |")
                continue
            tr, rt = tb / t["train"], t["train"] / ref["train"]
            print(f"| {name} | {f:,.0f} | {tr:,.0f} | {rf:.2f} / {rt:.2f} |")


if __name__ == "__main__":
    main()
