"""Whole-network speed of cnnc beside other systems on the same machine, in one run, as ratios.

    .venv/bin/python benchmarks/frameworks.py [SPEC ...] [--forward-batch 256] [--train-batch 32 128]
                                              [--runs 5] [--device SEL]

For each spec (default: the seed model, specs/fashion.yaml) it times, through each system's
public API with inputs coming from host NumPy arrays:
- forward: predictions for one batch (inference mode),
- training step: forward, loss, backward and the spec's optimizer update on one batch, read
  back (the step has finished when the clock stops),
for cnnc's OpenCL backend, cnnc's NumPy reference backend (a vectorised NumPy interpreter: what a
hand-written NumPy implementation of the same network does), PyTorch when it is installed (CPU
build; `pip install torch==2.13.0`: a module that walks the cnnc graph with torch's layers,
torch.set_num_threads(os.cpu_count())), and onnxruntime when it is installed (forward only, on
the model cnnc's own export writes: same network, same weights, NCHW, ORT_ENABLE_ALL).
PyTorch is given its best (issue 25): channels_last memory, torch.compile where it compiles on
the machine (else eager, the reason printed; --torch-compile off), 'same' padding as its
convolutions' and poolings' own padding= wherever Keras pads both sides alike (an F.pad copy
only where Keras' odd pixel goes after), and cnnc's weights; its network is checked against
cnnc's forward on those weights before it is timed, and not timed if it differs. Every input is
laid out for its system outside the clock. Under each table a list says what each system was
given. Each figure is the median
of --runs timed runs after one warm-up run each (kernel builds and first-run costs are not
counted), the systems taking turns run by run so that a change of load touches all alike, each
timed call after a pause that lets the previous system's threads go idle and --warm-calls (10)
untimed calls: steady throughput, as a training loop or a batch job sees it (--warm-calls 1:
the second call after idle time, as an occasional caller sees it). cnnc first tunes its kernels for the device (`cnnc tune`: --tune-budget seconds per graph and
batch size, for what the tuning cache lacks) and runs with the tuned variants, as `cnnc run` does.
Ratios are cnnc OpenCL's images/s over the other system's. The CPU's name is printed first.

Reproduce the README's table:

    .venv/bin/python benchmarks/frameworks.py specs/fashion.yaml specs/fashion-plus.yaml \
        specs/resnet_mini.yaml --no-numpy

and its table of issue 20's families (an autoencoder, `train target input`, trains with MSE on
its input in both systems; tests/numpy/test_framework_twins.py checks every twin against cnnc's
forward and training loss with the same weights):

    .venv/bin/python benchmarks/frameworks.py specs/mobilenetv3_mini.yaml \
        specs/efficientnet_mini.yaml specs/convnext_mini.yaml specs/shufflenet_mini.yaml \
        specs/unet_mini.yaml --no-numpy --train-batch 128
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

import cnnc
from cnnc.ir.activations import parameters
from cnnc.ir.graph import Graph

SETTLE_SECONDS = 0.5
Tasks = dict[str, Callable[[], object]]  # "forward" / "train 32" ... -> one timed run


def batches(shape: tuple[int, ...], classes: int, fb: int, tbs: list[int]):
    rng = np.random.default_rng(0)
    x_f = rng.random((fb, *shape), dtype=np.float32)
    train = {tb: (rng.random((tb, *shape), dtype=np.float32),
                  rng.integers(0, classes, tb).astype(np.int32)) for tb in tbs}
    return x_f, train


def tune(graph: Graph, device: str | None, fb: int, tbs: list[int], budget: float) -> None:
    """Tune the forward graph at batch fb and the training graph at each of tbs, `budget`
    seconds each at most, as `cnnc tune` does (launches already in the cache are kept)."""
    from cnnc.backends.opencl.device import select_device
    from cnnc.passes.pipeline import inference_graph, training_graph
    from cnnc.tune.cache import TuningCache
    from cnnc.tune.tuner import Tuner

    dev = select_device(device)
    for g, batch in [(inference_graph(graph), fb), *((training_graph(graph), tb) for tb in tbs)]:
        start = time.perf_counter()
        with open(os.devnull, "w") as quiet:
            Tuner(dev, TuningCache.default(), budget, progress=False, out=quiet).tune_graph(
                g, batch)
        print(f"  tuned {g.name} at batch {batch} in {time.perf_counter() - start:.1f} s")


def chunk_text(graph: Graph, device: str | None, fb: int) -> str:
    """How Model.predict runs the forward batch: in chunks where `cnnc tune` measured that
    faster (cnnc/tune/chunking.py), said with the figures."""
    from cnnc.backends.opencl.device import select_device
    from cnnc.passes.pipeline import inference_graph
    from cnnc.tune import chunking
    from cnnc.tune.cache import TuningCache
    from cnnc.tune.tuner import tuning_enabled

    if not tuning_enabled():
        return ""
    chunk = chunking.chunk_of(TuningCache.default(), select_device(device),
                              inference_graph(graph), fb)
    return (f"; predict runs batch {fb} in {fb // chunk} chunks of {chunk} (the tuning "
            f"cache's measured choice)" if chunk != fb else "")


def cnnc_tasks(graph: Graph, backend: str, device: str | None, fb: int, tbs: list[int]) -> Tasks:
    model = cnnc.compile(graph, backend=backend, device=device, seed=0)
    if backend == "opencl":
        from cnnc.tune.tuner import install

        install(model.backend)  # the tuning cache's variants, as `cnnc run` uses them
    classes = graph.shape_of(graph.outputs[0])[-1]
    x_f, train = batches(graph.shape_of(graph.inputs[0])[1:], classes, fb, tbs)
    tasks: Tasks = {"forward": lambda: model.predict(x_f, batch_size=fb)}
    reconstruction = graph.train is not None and graph.train.reconstruction
    for tb, (x, y) in train.items():
        y = x if reconstruction else y  # an autoencoder's target is its input
        # float(): the step's loss read back, so the step has finished when the clock stops.
        tasks[f"train {tb}"] = lambda x=x, y=y: float(model.train_step(x, y))
    return tasks


# ---------------------------------------------------------------- PyTorch replica


def _same_pads(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """Keras/TF 'same' padding (before, after): the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def same_padding(graph: Graph, node, kernel, strides, dilation=(1, 1)):
    """How the twin pads a layer: ("none", None) for 'valid'; ("symmetric", (ph, pw)) where
    Keras' 'same' pads both sides alike, given to torch's own padding= (no copy); ("asymmetric",
    (left, right, top, bottom)) where the odd pixel goes after (an F.pad copy, as Keras needs)."""
    if node.attrs["padding"] != "same":
        return "none", None
    h, w = graph.shape_of(node.inputs[0])[1:3]
    top, bottom = _same_pads(h, kernel[0], strides[0], dilation[0])
    left, right = _same_pads(w, kernel[1], strides[1], dilation[1])
    if top == bottom and left == right:
        return "symmetric", (top, left)
    return "asymmetric", (left, right, top, bottom)


# ---------------------------------------------------------------- the 2020s layers in PyTorch
# (issue 20: MobileNetV3, EfficientNet, ConvNeXt, ShuffleNet, U-Net). Keras' definitions: its
# hard_sigmoid is relu6(x + 3) / 6, which is torch's hardsigmoid; hard_swish x * that.


def _torch_activations() -> dict[str, Callable | None]:
    try:
        from torch.nn import functional as fn
    except ImportError:
        return {}
    return {"silu": fn.silu, "swish": fn.silu, "hard_sigmoid": fn.hardsigmoid,
            "hard_swish": fn.hardswish, "hard_silu": fn.hardswish, "gelu": fn.gelu,
            "gelu_tanh": lambda t: fn.gelu(t, approximate="tanh"), "softplus": fn.softplus,
            "mish": fn.mish}


NEW_ACTIVATIONS = _torch_activations()
NEW_OPS = {"multiply", "subtract", "maximum", "minimum", "average", "global_maxpool2d",
           "layer_norm", "channel_shuffle", "conv2d_transpose", "upsampling2d",
           "separable_conv2d", "cropping2d", "channel_slice"}


def new_op_module(layers, key: str, node, c: int, graph: Graph) -> None:
    """The torch modules holding a new layer's parameters (NCHW), under `key`."""
    from torch import nn

    a = node.attrs
    if node.op == "layer_norm":
        layers[key] = nn.LayerNorm(c, eps=a["epsilon"],
                                   elementwise_affine=a["scale"] or a["center"], bias=a["center"])
    elif node.op == "conv2d_transpose":
        # No padding here: Keras' 'same'/'valid' output is cropped from the full one in forward.
        layers[key] = nn.ConvTranspose2d(c, a["filters"], a["kernel_size"], a["strides"],
                                         dilation=a["dilation_rate"], bias=a["use_bias"])
    elif node.op == "separable_conv2d":
        m = a["depth_multiplier"]
        kind, pads = same_padding(graph, node, a["kernel_size"], a["strides"],
                                  a["dilation_rate"])
        layers[key + "_dw"] = nn.Conv2d(c, c * m, a["kernel_size"], a["strides"],
                                        padding=pads if kind == "symmetric" else 0,
                                        dilation=a["dilation_rate"], groups=c, bias=False)
        layers[key + "_pw"] = nn.Conv2d(c * m, a["filters"], 1, bias=a["use_bias"])


def _transpose_crop(t, size: int, padding: str, dim: int):
    """Keras' Conv2DTranspose output of length `size` from torch's full one (no padding): for
    'same' TF crops half the excess from the start (the rest from the end), for 'valid' none;
    zeros are added at the end when the full output is shorter (output_padding)."""
    from torch.nn import functional as fn

    full = t.shape[dim]
    before = max(full - size, 0) // 2 if padding == "same" else 0
    t = t.narrow(dim, before, min(size, full - before))
    short = size - t.shape[dim]
    if short > 0:
        pads = [0, 0, 0, 0]
        pads[1 if dim == 3 else 3] = short
        t = fn.pad(t, pads)
    return t


def new_op_forward(layers, key: str, node, ins: list, graph: Graph):
    """A new layer's output (NCHW) from its inputs (NCHW), as Keras computes it."""
    import torch
    from torch.nn import functional as fn

    a, t = node.attrs, ins[0]
    op = node.op
    if op == "multiply":
        out = ins[0]
        for other in ins[1:]:
            out = out * other
        return out
    if op == "subtract":
        return ins[0] - ins[1]
    if op in ("maximum", "minimum"):
        pick = torch.maximum if op == "maximum" else torch.minimum
        out = ins[0]
        for other in ins[1:]:
            out = pick(out, other)
        return out
    if op == "average":
        return sum(ins[1:], ins[0]) / len(ins)
    if op == "global_maxpool2d":
        return t.amax((2, 3), keepdim=bool(a["keepdims"]))
    if op == "layer_norm":
        ln = layers[key]
        return fn.layer_norm(t.permute(0, 2, 3, 1), ln.normalized_shape, ln.weight, ln.bias,
                             ln.eps).permute(0, 3, 1, 2)
    if op == "channel_shuffle":
        n, c, h, w = t.shape
        g = a["groups"]
        return t.reshape(n, g, c // g, h, w).transpose(1, 2).reshape(n, c, h, w)
    if op == "channel_slice":
        return t[:, a["start"]:a["stop"]]
    if op == "conv2d_transpose":
        t = layers[key](t)
        _, oh, ow, _ = graph.shape_of(node.name)
        return _transpose_crop(_transpose_crop(t, oh, a["padding"], 2), ow, a["padding"], 3)
    if op == "upsampling2d":
        mode = a["interpolation"]
        return fn.interpolate(t, scale_factor=tuple(a["size"]), mode=mode,
                              **({"align_corners": False} if mode == "bilinear" else {}))
    if op == "separable_conv2d":
        kind, pads = same_padding(graph, node, a["kernel_size"], a["strides"],
                                  a["dilation_rate"])
        if kind == "asymmetric":
            t = fn.pad(t, pads)
        return layers[key + "_pw"](layers[key + "_dw"](t))
    if op == "cropping2d":
        (top, bottom), (left, right) = a["cropping"]
        return t[:, :, top:t.shape[2] - bottom, left:t.shape[3] - right]
    raise NotImplementedError(op)


def load_cnnc_weights(net, graph: Graph, weights: dict[str, np.ndarray]) -> None:
    """Copy cnnc's weights (Keras layouts: HWIO kernels) into the torch twin (OIHW)."""
    import torch

    def put(param, value: np.ndarray) -> None:
        with torch.no_grad():
            param.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))

    for node in graph.nodes:
        key = node.name.replace("/", "_").replace(".", "_")
        w = {param.rsplit("/", 1)[-1]: weights[param] for param in node.params}
        if not w:
            continue
        if node.op == "separable_conv2d":
            dw, pw = net.layers[key + "_dw"], net.layers[key + "_pw"]
            k = w["depthwise_kernel"]  # (kh, kw, C, M): output channel c * M + m
            put(dw.weight, k.transpose(2, 3, 0, 1).reshape(-1, 1, *k.shape[:2]))
            put(pw.weight, w["pointwise_kernel"].transpose(3, 2, 0, 1))
            if "bias" in w:
                put(pw.bias, w["bias"])
            continue
        mod = net.layers[key]
        if node.op == "conv2d":
            put(mod.weight, w["kernel"].transpose(3, 2, 0, 1))
        elif node.op == "depthwise_conv2d":
            k = w["kernel"]
            put(mod.weight, k.transpose(2, 3, 0, 1).reshape(-1, 1, *k.shape[:2]))
        elif node.op == "conv2d_transpose":
            # Keras (kh, kw, filters, in) -> torch (in, filters, kh, kw)
            put(mod.weight, w["kernel"].transpose(3, 2, 0, 1))
        elif node.op == "dense":
            put(mod.weight, w["kernel"].T)
        elif node.op == "batchnorm":
            if "gamma" in w:
                put(mod.weight, w["gamma"])
            if "beta" in w:
                put(mod.bias, w["beta"])
            put(mod.running_mean, w["moving_mean"])
            put(mod.running_var, w["moving_variance"])
            continue
        elif node.op == "layer_norm":
            if "gamma" in w:
                put(mod.weight, w["gamma"])
            if "beta" in w:
                put(mod.bias, w["beta"])
            continue
        else:
            raise NotImplementedError(f"weights of {node.op}")
        if "bias" in w:
            put(mod.bias, w["bias"])


def torch_model(graph: Graph):
    """The network as a torch module (NCHW) that walks cnnc's graph: chains, residual adds,
    concatenations. Softmax is left to the loss (as cnnc folds it into its loss); flatten
    keeps NHWC order so every layer has the shape it has in cnnc. None for an op it lacks."""
    import torch
    from torch import nn
    from torch.nn import functional as fn

    acts = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "elu": fn.elu,
            "relu6": fn.relu6, "linear": None, "softmax": None,
            "leaky_relu": lambda t: fn.leaky_relu(t, 0.2), **NEW_ACTIVATIONS}
    supported = {"input", "conv2d", "depthwise_conv2d", "maxpool2d", "avgpool2d", "flatten",
                 "dense", "dropout", "batchnorm", "global_avgpool2d", "add", "concatenate",
                 "activation", "zero_padding2d", *NEW_OPS}
    if any(n.op not in supported or n.attrs.get("activation", "linear") not in acts
           for n in graph.nodes):
        return None

    class GraphModule(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleDict()
            for node in graph.nodes:
                a, key = node.attrs, node.name.replace("/", "_").replace(".", "_")
                if node.op == "input":
                    continue
                c = graph.shape_of(node.inputs[0])[-1]
                if node.op in ("conv2d", "depthwise_conv2d"):
                    depthwise = node.op == "depthwise_conv2d"
                    out = c * a["depth_multiplier"] if depthwise else a["filters"]
                    groups = c if depthwise else a["groups"]
                    kind, pads = same_padding(graph, node, a["kernel_size"], a["strides"],
                                              a["dilation_rate"])
                    self.layers[key] = nn.Conv2d(c, out, a["kernel_size"], a["strides"],
                                                 padding=pads if kind == "symmetric" else 0,
                                                 dilation=a["dilation_rate"], groups=groups,
                                                 bias=a["use_bias"])
                elif node.op == "dense":
                    self.layers[key] = nn.Linear(c, a["units"], bias=a["use_bias"])
                elif node.op == "batchnorm":
                    rank4 = len(graph.shape_of(node.inputs[0])) == 4
                    bn = nn.BatchNorm2d if rank4 else nn.BatchNorm1d
                    self.layers[key] = bn(c, eps=a["epsilon"], momentum=1 - a["momentum"])
                elif node.op in NEW_OPS:
                    new_op_module(self.layers, key, node, c, graph)

        def forward(self, x):
            values = {graph.inputs[0]: x}
            for node in graph.nodes:
                if node.op == "input":
                    continue
                a, key = node.attrs, node.name.replace("/", "_").replace(".", "_")
                ins = [values[i] for i in node.inputs]
                t = ins[0]
                if node.op in ("conv2d", "depthwise_conv2d"):
                    kind, pads = same_padding(graph, node, a["kernel_size"], a["strides"],
                                              a["dilation_rate"])
                    if kind == "asymmetric":  # symmetric 'same' is the module's padding=
                        t = fn.pad(t, pads)
                    t = self.layers[key](t)
                elif node.op in ("maxpool2d", "avgpool2d"):
                    pool, stride = a["pool_size"], a["strides"] or a["pool_size"]
                    kind, pads = same_padding(graph, node, pool, stride)
                    pool_fn = fn.max_pool2d if node.op == "maxpool2d" else fn.avg_pool2d
                    if kind == "symmetric":
                        # torch pads max pooling with -inf; count_include_pad=False: Keras
                        # averages over the pixels inside the image only.
                        extra = {} if node.op == "maxpool2d" else {"count_include_pad": False}
                        t = pool_fn(t, pool, stride, padding=pads, **extra)
                    elif kind == "asymmetric":
                        fill = float("-inf") if node.op == "maxpool2d" else 0.0
                        t = fn.pad(t, pads, value=fill)
                        if node.op == "avgpool2d":
                            ones = fn.pad(torch.ones_like(ins[0][:, :1]), pads)
                            t = pool_fn(t, pool, stride) / pool_fn(ones, pool, stride)
                        else:
                            t = pool_fn(t, pool, stride)
                    else:
                        t = pool_fn(t, pool, stride)
                elif node.op == "flatten":
                    t = t.permute(0, 2, 3, 1).flatten(1) if t.dim() == 4 else t.flatten(1)
                elif node.op in ("dense", "batchnorm"):
                    t = self.layers[key](t)
                elif node.op == "dropout":
                    t = fn.dropout(t, a["rate"], self.training)
                elif node.op == "global_avgpool2d":
                    t = t.mean((2, 3), keepdim=bool(a.get("keepdims", False)))
                elif node.op == "add":
                    t = sum(ins[1:], ins[0])
                elif node.op == "concatenate":
                    t = torch.cat(ins, dim=1 if t.dim() == 4 else -1)
                elif node.op == "activation" and parameters(a):
                    # Keras ReLU: threshold, negative slope, cap
                    thr = a["threshold"]
                    t = torch.where(t >= thr, t, a["negative_slope"] * (t - thr))
                    if a["max_value"] is not None:
                        t = torch.clamp(t, max=a["max_value"])
                    values[node.name] = t
                    continue
                elif node.op == "zero_padding2d":
                    (top, bottom), (left, right) = a["padding"]
                    t = fn.pad(t, (left, right, top, bottom))
                elif node.op in NEW_OPS:
                    t = new_op_forward(self.layers, key, node, ins, graph)
                act = acts[a.get("activation", "linear")]
                values[node.name] = act(t) if act else t
            return values[graph.outputs[0]]

    return GraphModule()


def padding_counts(graph: Graph) -> tuple[int, int]:
    """(layers padded by torch's own padding=, layers given an F.pad copy) in the twin."""
    kinds = []
    for node in graph.nodes:
        a = node.attrs
        if node.op in ("conv2d", "depthwise_conv2d", "separable_conv2d"):
            kinds.append(same_padding(graph, node, a["kernel_size"], a["strides"],
                                      a["dilation_rate"])[0])
        elif node.op in ("maxpool2d", "avgpool2d"):
            kinds.append(same_padding(graph, node, a["pool_size"],
                                      a["strides"] or a["pool_size"])[0])
    return kinds.count("symmetric"), kinds.count("asymmetric")


class TwinMismatch(Exception):
    """The PyTorch network does not compute what cnnc computes: its times would mean nothing."""


def check_twin(graph: Graph, net, weights: dict[str, np.ndarray], x: np.ndarray | None = None,
               rtol: float = 2e-4, atol: float = 2e-5) -> float:
    """Run the twin as it will be timed (eval mode, NHWC input viewed as channels-last NCHW)
    and cnnc's NumPy reference on the same weights and input `x` (default: 2 random
    examples); the largest difference, or TwinMismatch naming the spec and the difference."""
    import torch

    model = cnnc.compile(graph, backend="numpy", seed=0)
    model.set_weights(weights)
    if x is None:
        shape = graph.shape_of(graph.inputs[0])[1:]
        x = np.random.default_rng(2).random((2, *shape), dtype=np.float32)
    reconstruction = graph.train is not None and graph.train.reconstruction
    net.eval()
    with torch.no_grad():
        out = net(torch_input(x))
        out = out if reconstruction else torch.softmax(out, dim=1)
        if out.dim() == 4:
            out = out.permute(0, 2, 3, 1)
        theirs = out.numpy()
    ours = model.predict(x)
    if theirs.shape != ours.shape or not np.allclose(theirs, ours, rtol=rtol, atol=atol):
        diff = (float(np.abs(theirs - ours).max()) if theirs.shape == ours.shape
                else f"shape {theirs.shape} vs {ours.shape}")
        raise TwinMismatch(f"{graph.name}: the PyTorch twin's forward differs from cnnc's on "
                           f"the same weights (max |difference| {diff}); not timed")
    return float(np.abs(theirs - ours).max())


def torch_input(x: np.ndarray):
    """NHWC host data as the NCHW tensor torch's layers take, in channels_last memory: a view
    of the same bytes (no copy), the layout PyTorch's CPU convolutions are fastest in."""
    import torch

    t = torch.from_numpy(x)
    return t.permute(0, 3, 1, 2) if t.dim() == 4 else t


def compile_twin(net, compile_mode: str, probe: Callable[[object], None]):
    """(module to time, what it is): torch.compile's (inductor needs a C++ compiler) where
    `compile_mode` is "auto" and compiling and running `probe` on it works, else eager with
    the reason."""
    if compile_mode == "off":
        return net, "eager (--torch-compile off)"
    import torch

    try:
        # dynamic=False: each batch size compiled for its own shape, as a user timing one
        # batch size would have it (automatic dynamic shapes recompile for any size, slower)
        compiled = torch.compile(net, dynamic=False)
        probe(compiled)
        return compiled, "torch.compile (inductor)"
    except Exception as err:  # noqa: BLE001 (any failure of the compiler: say it, run eager)
        reason = f"{type(err).__name__}: {str(err).strip().splitlines()[0][:160]}"
        print(f"  torch.compile failed, timing PyTorch eager instead: {reason}")
        return net, f"eager (torch.compile failed: {reason})"


def torch_tasks(graph: Graph, fb: int, tbs: list[int],
                compile_mode: str = "auto") -> tuple[Tasks | None, str]:
    """PyTorch's forward and training steps, and a line saying what it was given. The twin
    starts from cnnc's weights (seed 0) and is checked against cnnc's forward before it is
    timed (TwinMismatch: not timed). Input layout and dtype conversions are made here, outside
    the clock, as onnxruntime's transposed input is."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    net = torch_model(graph)
    if net is None:
        return None, "network not expressible"
    weights = cnnc.compile(graph, backend="numpy", seed=0).get_weights()
    load_cnnc_weights(net, graph, weights)
    net = net.to(memory_format=torch.channels_last)
    classes = graph.shape_of(graph.outputs[0])[-1]
    x_f, train = batches(graph.shape_of(graph.inputs[0])[1:], classes, fb, tbs)
    # An autoencoder (train target input) learns its input with MSE; softmax is not in the net.
    reconstruction = graph.train is not None and graph.train.reconstruction
    loss_fn = torch.nn.MSELoss() if reconstruction else torch.nn.CrossEntropyLoss()
    x_fwd = torch_input(x_f)
    steps = {}
    for tb, (x, y) in train.items():
        x_t = torch_input(x)
        steps[tb] = (x_t, x_t if reconstruction else torch.from_numpy(y.astype(np.int64)))

    def probe(module) -> None:
        """Compile both modes at every batch size now, not inside a timed run; the weights and
        batch statistics are put back afterwards."""
        state = {k: v.clone() for k, v in net.state_dict().items()}
        module.eval()
        with torch.no_grad():
            module(x_fwd)
        module.train()
        for x, target in steps.values():
            loss_fn(module(x), target).backward()
        module.zero_grad()
        net.load_state_dict(state)

    timed, how = compile_twin(net, compile_mode, probe)
    error = check_twin(graph, timed, weights, x_f)  # the timed batch: no other compile
    opt_name = graph.train.optimizer.name if graph.train else "nadam"
    opt_cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "nadam": torch.optim.NAdam}
    opt = opt_cls[opt_name](net.parameters(), lr=1e-3)

    def forward() -> np.ndarray:
        timed.eval()
        with torch.no_grad():
            out = timed(x_fwd)
            return (out if reconstruction else torch.softmax(out, dim=1)).numpy()

    def step(x, target) -> float:
        timed.train()
        opt.zero_grad()
        loss = loss_fn(timed(x), target)
        loss.backward()
        opt.step()
        return loss.item()

    tasks: Tasks = {"forward": forward}
    for tb, (x, target) in steps.items():
        tasks[f"train {tb}"] = lambda x=x, target=target: step(x, target)
    by_padding, by_copy = padding_counts(graph)
    given = (f"{how}, channels_last, cnnc's weights (forward checked against cnnc: max "
             f"|difference| {error:.1e}), {torch.get_num_threads()} threads; 'same' padding: "
             f"torch's padding= on {by_padding} layers, an F.pad copy on {by_copy} (Keras' "
             f"odd pixel after); NHWC input viewed as channels_last NCHW outside the clock")
    return tasks, given


# ---------------------------------------------------------------- onnxruntime


def onnxruntime_tasks(graph: Graph, fb: int) -> Tasks:
    """Forward in onnxruntime (CPU) of the network as cnnc exports it (same weights)."""
    import onnxruntime as ort

    from cnnc.export.onnx_export import build_model

    weights = cnnc.compile(graph, backend="numpy", seed=0).get_weights()
    proto = build_model(graph, weights)
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    shape = graph.shape_of(graph.inputs[0])[1:]
    x = np.random.default_rng(0).random((fb, *shape), dtype=np.float32)
    if x.ndim == 4:
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # the export's NCHW input
    feeds = {graph.inputs[0]: x}
    return {"forward": lambda: session.run(None, feeds)}


ORT_GIVEN = ("cnnc's ONNX export (same weights), ORT_ENABLE_ALL graph optimisations, "
             "{threads} intra-op threads; NCHW input transposed outside the clock")


def interleaved_medians(systems: dict[str, Tasks | None], runs: int,
                        warm_calls: int = 10) -> dict[str, dict]:
    """Median seconds per system and task, the systems taking turns run by run (a change in
    the machine's load then touches every system alike). One warm-up run each first: kernel
    builds, allocations, first touch. After each system's pause, `warm_calls` untimed calls of
    a task come before its timed one: the first call after an idle pause pays for waking the
    system's threads and refilling its caches (shufflenet_mini's forward at batch 256 took about
    1.5x a back-to-back call's time in cnnc and in onnxruntime alike on a 2-core Zen 3), which a
    training loop or a batch job, running call after call, does not pay. How many calls that
    lasts differs: on that Zen 3 VM onnxruntime was back to its pace at the second call, cnnc
    (whose worker threads sleep and wake between its kernel launches) after ~5-10 calls
    (benchmarks/launch_overhead.py prints the call-by-call recovery). So the default, 10, times
    each system's steady pace (the tables of 2026-12-06 01:17 UTC used 1: the pace of an
    occasional caller's second call, which differs from it most for cnnc's small networks)."""
    live = {name: tasks for name, tasks in systems.items() if tasks}
    for tasks in live.values():
        for fn in tasks.values():
            fn()
    times: dict[str, dict[str, list[float]]] = {n: {t: [] for t in ts} for n, ts in live.items()}
    for _ in range(runs):
        for name, tasks in live.items():
            # PyTorch's OpenMP threads and onnxruntime's pool spin-wait for a while after a
            # call: let them go idle, so that they do not take the cores from the next system.
            time.sleep(SETTLE_SECONDS)
            for task, fn in tasks.items():
                for _ in range(warm_calls):
                    fn()
                start = time.perf_counter()
                fn()
                times[name][task].append(time.perf_counter() - start)
    return {n: {t: statistics.median(v) for t, v in ts.items()} for n, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=["specs/fashion.yaml"])
    parser.add_argument("--forward-batch", type=int, default=256)
    parser.add_argument("--train-batch", type=int, nargs="*", default=[32, 128],
                        help="training batch sizes (none given: the forward pass only)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default=None)
    parser.add_argument("--warm-calls", type=int, default=10,
                        help="untimed calls before each timed one, after the pause between "
                             "systems (10: each system's steady pace; 1: the second call "
                             "after idle time; 0: the first, as tables before 2026-12-06 did)")
    parser.add_argument("--no-numpy", action="store_true", help="skip the NumPy backend")
    parser.add_argument("--torch-compile", choices=("auto", "off"), default="auto",
                        help="auto: time PyTorch under torch.compile where it compiles here "
                             "(else eager, with the reason); off: eager")
    parser.add_argument("--tune-budget", type=float, default=60.0,
                        help="seconds of tuning per graph and batch size before timing (what "
                             "the cache lacks; 0: the cache as it is)")
    args = parser.parse_args()
    fb, tbs = args.forward_batch, args.train_batch
    print(f"CPU: {cpu_name()}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"forward batch {fb}, training batch {', '.join(map(str, tbs)) or 'none'}; median of "
          f"{args.runs} interleaved runs, each after {args.warm_calls} untimed call(s)")
    for spec in args.specs:
        graph = cnnc.load_spec(spec)
        if args.tune_budget > 0:
            tune(graph, args.device, fb, tbs, args.tune_budget)
        systems: dict[str, Tasks | None] = {
            "cnnc opencl": cnnc_tasks(graph, "opencl", args.device, fb, tbs)}
        tuned = (f"tuned kernels (--tune-budget {args.tune_budget:g} s per graph and batch)"
                 if args.tune_budget > 0 else "the tuning cache as it is")
        given = {"cnnc opencl": f"{tuned}; NHWC input as it is (cnnc's layout)"
                 f"{chunk_text(graph, args.device, fb)}"}
        if not args.no_numpy:
            systems["cnnc numpy"] = cnnc_tasks(graph, "numpy", None, fb, tbs)
            given["cnnc numpy"] = "NumPy reference interpreter; NHWC input"
        try:
            import torch

            name = f"pytorch {torch.__version__}"
            try:
                systems[name], given[name] = torch_tasks(graph, fb, tbs, args.torch_compile)
            except TwinMismatch as err:
                systems[name], given[name] = None, f"REFUSED: {err}"
                print(f"  {err}")
        except ImportError:
            print("(PyTorch is not installed: pip install torch==2.13.0 to compare with it)")
        try:
            import onnxruntime

            name = f"onnxruntime {onnxruntime.__version__} (cnnc export)"
            systems[name] = onnxruntime_tasks(graph, fb)
            given[name] = ORT_GIVEN.format(threads=os.cpu_count() or 1)
        except ImportError:
            print("(onnxruntime is not installed: pip install 'cnnc[dev]' to compare with it)")
        medians = interleaved_medians(systems, args.runs, args.warm_calls)
        ref = medians["cnnc opencl"]
        tasks = ["forward", *(f"train {tb}" for tb in tbs)]
        sizes = {"forward": fb, **{f"train {tb}": tb for tb in tbs}}
        print(f"\n{graph.name} ({spec}): images/s, and cnnc opencl's speed over each (x)")
        print("| system | " + " | ".join(f"{t} img/s" for t in tasks) + " | "
              + " | ".join(f"cnnc x ({t})" for t in tasks) + " |")
        print("|---|" + "---:|" * (2 * len(tasks)))
        for name in systems:
            if name not in medians:
                why = given.get(name, "network not expressible").split(":")[0]
                print(f"| {name} | ({why}) |" + " |" * (2 * len(tasks) - 1))
                continue
            got = medians[name]
            speed = [f"{sizes[t] / got[t]:,.0f}" if t in got else "—" for t in tasks]
            ratio = [f"{got[t] / ref[t]:.2f}" if t in got else "—" for t in tasks]
            print(f"| {name} | " + " | ".join(speed) + " | " + " | ".join(ratio) + " |")
        print(peak_line(graph, args.device, ref, sizes))
        print("\nWhat each system was given:")
        for name in systems:
            print(f"- {name}: {given.get(name, '')}")


def peak_line(graph: Graph, device: str | None, times: dict[str, float],
              sizes: dict[str, int]) -> str:
    """cnnc opencl's GFLOP/s per task and its share of the device's measured FMA peak (the
    direct algorithm's FLOPs, 3x the forward pass's for a training step, as `cnnc bench`
    counts them: Winograd's saved multiplications count as done, so a share may pass 100%)."""
    from cnnc.backends.opencl.device import select_device
    from cnnc.backends.opencl.peak import measured_peak
    from cnnc.ir.cost import total_flops

    peak = measured_peak(select_device(device), refresh=True)
    forward = total_flops(graph)
    parts = []
    for task, seconds in times.items():
        gflops = forward * (1 if task == "forward" else 3) * sizes[task] / seconds / 1e9
        parts.append(f"{task} {gflops:,.0f} GFLOP/s ({100 * gflops / peak:.0f}%)")
    return (f"cnnc opencl against the device's measured FMA peak ({peak:.0f} GFLOP/s): "
            + ", ".join(parts))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
