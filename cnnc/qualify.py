"""The child process that qualifies one OpenCL driver: `python -m cnnc.qualify P:D --name NAME`.

Run by cnnc/backends/opencl/qualification.py, never by hand: a driver that crashes or hangs on
cnnc's kernels takes down this process, not the one that asked. It prints a line before each
stage ("stage <name>: <what it does>") and, when it gets to the end, one verdict line
("verdict {json}"); what a crash or a hang means is decided by the parent from the last stage.

The networks build every kernel in kernels/*.cl (tests/opencl/test_qualification.py checks
that): small shapes, every layer kind, three losses and optimizers, and for each tunable node
each algorithm the tuner may choose (Winograd, phases, the direct kernel, no im2col), each node
checked against the NumPy reference as `cnnc verify` checks it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

# Every layer kind the OpenCL backend binds, in a network small enough to build and check in
# seconds: 3 input channels (conv2d_rows.cl forward, im2col for the kernel gradient), residual
# joins of two and three, a strided depthwise and a strided 1x1 convolution (phases),
# concatenation, batch norm and activations that fold into nothing, a transposed convolution,
# upsampling and cropping, both poolings (disjoint windows that leave cells uncovered,
# overlapping ones), padding, dropout.
NETWORK = """network qualify
input 11x11x3
stem: conv2d 8 3 same use_bias=false
batchnorm
a: activation relu
conv2d 8 3 same
b: batchnorm
c: add(a, b, stem)
batchnorm
r: relu max_value=6
d: depthwise_conv2d 3 strides=2 same depth_multiplier=2
e: leaky_relu 0.1
f: conv2d(r) 8 1 strides=2 activation=elu
concatenate(e, f)
activation tanh
conv2d_transpose 16 3 strides=2 padding=same relu
upsampling2d 2 interpolation=bilinear
cropping2d 8
zero_padding2d 1
conv2d 12 2 activation=tanh
maxpool2d 2
maxpool2d 2 strides=1 padding=same
avgpool2d 2
dropout 0.25
flatten
dense 16 activation=sigmoid
dense 4 softmax
"""
# Global pooling (average and max), a squeeze-excite gate (one squeeze_excite launch at
# inference) and its broadcast multiply (merge.cl, forward and gradient: its row forms) and a maximum with a row-shaped operand (merge_grad's general
# form), a map read only by its pooling and its product with it (excite.cl's one-node input
# gradient), layer norm with and without its beta (layer_norm.cl's shared sums, and the
# statistics and gamma kernels a norm without beta keeps), a concatenation's channel shuffle
# (one concat_shuffle gather at inference) and a channel slice, a depthwise convolution read by
# a 1x1 one alone (one depthwise_pointwise launch at inference), a 1x1 convolution read by a
# global average pooling alone (one pointwise_avgpool launch at inference), and the losses on outputs that
# do not fuse with them (cross-entropy on sigmoid outputs, mean squared error on a softmax); an
# L2 kernel regularizer (regularize.cl, the updates' -D L2) and weight decay (-D DECAY).
# A depthwise convolution read by a layer norm alone (one depthwise_layer_norm launch at
# inference), then local response normalisation (lrn.cl). A convolution reading a
# concatenation of two upsampled maps in place (one conv2d_concat launch at inference). A 1x1
# convolution reading a channel shuffle read by nothing else, read by a global average pooling
# alone (one pointwise_avgpool_gathered launch at inference). A 1x1 expansion read by a strided
# depthwise convolution alone (one pointwise_depthwise launch at inference).
GLOBAL_POOL = """network qualify_gap
input 6x6x4
x: conv2d 4 3 same relu
global_avgpool2d keepdims=true
conv2d 2 1 activation=relu
e: conv2d 4 1 activation=hard_sigmoid
y: multiply(x, e)
r: avgpool2d(x) (1, 6)
maximum(y, r)
depthwise_conv2d 3 same
k: conv2d 4 1
p: global_avgpool2d keepdims=true
multiply(k, p)
layer_norm
layer_norm center=false
depthwise_conv2d 3 same
layer_norm
lrn 3 alpha=1.0
normalization mean=0.1 variance=2.0
q: rescaling 0.5 0.1
c: concatenate(x, q)
s: channel_shuffle 2
g: global_avgpool2d
h: channel_slice(s) 1 3
m: global_maxpool2d
v: conv2d(h) 4 1 relu
w: global_avgpool2d
ux: upsampling2d(x) 2
t: conv2d(x) 4 1
ut: upsampling2d(t) 2
j: concatenate(ux, ut)
conv2d 4 3 same
z: global_avgpool2d
c2: concatenate(x, q)
channel_shuffle 2
conv2d 4 1 relu
gz: global_avgpool2d
ex: conv2d(x) 8 1 relu
depthwise_conv2d 3 strides=2 same
gx: global_avgpool2d
concatenate(g, m, w, z, gz, gx)
dense 3 {activation} kernel_regularizer=0.01
"""
# Each loss and optimizer cnnc has, on one of the two networks.
TRAINING = (
    (NETWORK, "nadam", "sparse_categorical_crossentropy"),
    (GLOBAL_POOL.format(activation="sigmoid"), "adam", "categorical_crossentropy"),
    (GLOBAL_POOL.format(activation="softmax"),
     "sgd momentum=0.9 weight_decay=0.001 global_clipnorm=1.0 use_ema=true", "mean_squared_error"),
)
BATCH = 3
VARIANT_GRAPH = 2  # the graph (in the order of graphs()) run with every kind of variant too
STAGES = {
    "probe": "running a probe kernel",
    "networks": "building and running cnnc's kernels",
    "binaries": "retrieving program binaries",
    "reload": "running cnnc's kernels built from their binaries",
}


def stage(name: str) -> None:
    print(f"stage {name}: {STAGES[name]}", flush=True)


def verdict(**fields: Any) -> int:
    print("verdict " + json.dumps(fields), flush=True)
    return 0


# ---------------------------------------------------------------- what runs


def graphs() -> Iterator[tuple[str, Any]]:
    """(what, graph) for every graph the qualification runs."""
    from cnnc.frontend.spec import load_spec
    from cnnc.passes.pipeline import inference_graph, training_graph

    for text in (NETWORK, GLOBAL_POOL.format(activation="softmax")):
        yield "forward", inference_graph(load_spec(text))
    for text, optimizer, loss in TRAINING:
        yield f"training ({optimizer.split()[0]}, {loss})", training_graph(load_spec(
            f"{text}train {{ optimizer {optimizer}  loss {loss} }}\n"))


Variants = Mapping[str, Mapping[str, Any]]  # kernel variants by node name


def variant_rounds(graph: Any, target: Any, skip_ops: frozenset[str] = frozenset()
                   ) -> list[Variants]:
    """Kernel variants for runs of `graph` such that every kernel the tuner may pick is built
    and checked: for each tunable node (but those of `skip_ops`), the variants of its tuning
    space that launch a kernel none before them does, the space read from its end (where the
    smallest Winograd tiles, the fastest to build, come first; the kernels are the same for
    every tile); in the k-th run, each node's k-th such variant."""
    from cnnc.backends.opencl.bind import bind_node
    from cnnc.backends.opencl.launches import BindContext
    from cnnc.tune.space import tunable, variant_space

    def kernels(node: Any, variant: Mapping[str, Any]) -> set[tuple[str, str]]:
        ctx = BindContext(graph, BATCH, target, {node.name: variant})
        return {(x.file, x.kernel) for x in bind_node(node, ctx).launches}

    per_node: dict[str, list[Mapping[str, Any]]] = {}
    ctx = BindContext(graph, BATCH, target)
    for node in graph.nodes:
        if not tunable(node) or node.op in skip_ops:
            continue
        space = variant_space(node, ctx)
        seen = kernels(node, space[0])  # the default's, run without variants
        for variant in reversed(space[1:]):
            new = kernels(node, variant) - seen
            if new:
                seen |= new
                per_node.setdefault(node.name, []).append(variant)
    rounds = max((len(v) for v in per_node.values()), default=0)
    return [{name: vs[k] for name, vs in per_node.items() if k < len(vs)}
            for k in range(rounds)]


def run_networks(device: Any, every_variant: bool = True) -> str | None:
    """Build and check every network, with every kind of variant (every_variant=False: the
    defaults only); the first failure."""
    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.crosscheck import cross_check

    target = OpenCLBackend(device).target
    runs = list(graphs())
    # The first training graph holds every tunable op of a layer: its variants cover those of
    # the forward graphs but for their inference-only fused ops (depthwise_pointwise, ...),
    # whose variants the forward graphs run themselves.
    trained = frozenset(n.op for n in runs[VARIANT_GRAPH][1].nodes)
    for k, (what, graph) in enumerate(runs):
        others = [] if not every_variant else (
            variant_rounds(graph, target) if k == VARIANT_GRAPH
            else variant_rounds(graph, target, skip_ops=trained) if k < VARIANT_GRAPH else [])
        for variants in [None, *others]:
            report = cross_check(graph, BATCH, device=device, seed=1, variants=variants)
            bad = report.first_failure
            if bad is not None:
                how = "" if not variants else " with the tuner's variants " + ", ".join(
                    f"{n}={dict(v)}" for n, v in sorted(variants.items()))
                return _differs(f"the {what} pass of a small network{how}", bad)
    return None if device.kind != "cpu" else check_serial_plans(device, runs)


def _differs(what: str, bad: Any) -> str:
    """The qualification's words for a node check (crosscheck.NodeCheck) that failed."""
    return (f"{what} differs from NumPy at node '{bad.node}' ({bad.op}, {bad.kernels}): error "
            f"{bad.local_rel:.1e} alone, tolerance {bad.tolerance:.1e}")


def check_serial_plans(device: Any, runs: list[tuple[str, Any]]) -> str | None:
    """The forward passes bound as plans for chains (a CPU device's small passes, chain.py),
    their dense layers as gemv (gemv_parts and gemv_sum there), run in chains where they apply
    and otherwise one by one; the first failure."""
    from cnnc.crosscheck import cross_check

    for what, graph in runs:
        if what != "forward":
            continue
        gemv = {n.name: {"algo": "gemv"} for n in graph.nodes if n.op == "dense"}
        bad = cross_check(graph, BATCH, device=device, seed=1, variants=gemv,
                          serial=True).first_failure
        if bad is not None:
            return _differs("the forward pass of a small network as a chain runs it", bad)
    return None


def check_recorded_step(device: Any) -> str | None:
    """A queued training step whose loss and right predictions stay on the device
    (step_figures.cl), against the same step run with its values fetched."""
    import numpy as np

    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.backends.step_figures import Record, host_figures
    from cnnc.crosscheck import random_feeds
    from cnnc.initializers import initial_values

    graph = next(g for what, g in graphs() if what.startswith("training"))
    loss, prediction = graph.outputs
    target = next(n.name for n in graph.nodes if n.op == "input" and n.name != graph.inputs[0])
    feeds = random_feeds(graph, BATCH, seed=2)
    state = initial_values(graph.state, 2)
    backend = OpenCLBackend(device)
    exe = backend.compile(graph, BATCH, keep=[target])
    backend.init_state(graph.state, state)
    fetched = exe.run(feeds, [loss, prediction])
    want = host_figures(fetched[loss], fetched[prediction], feeds[target])
    backend.init_state(graph.state, state)
    exe.run(feeds, [], record=Record(loss, prediction, target))
    got = backend.read_step_figures()
    if len(got) != 1 or got[0].correct != want.correct or not np.isclose(
            got[0].loss, want.loss, rtol=1e-5, atol=1e-6):
        return (f"a queued training step recorded {got} on the device, where its fetched "
                f"values give {want}")
    return None


# ---------------------------------------------------------------- the stages


def qualify(index: str, name: str, fault: str | None) -> int:
    import pyopencl as cl

    from cnnc.backends.opencl import program
    from cnnc.backends.opencl.device import devices, first_error_line, probe_kernel
    from cnnc.errors import CnncError

    def failed(stage_name: str, reason: str) -> int:
        return verdict(usable=False, reason=reason, stage=stage_name)

    stage("probe")
    found = [d for d in devices() if d.index == index]
    if not found or found[0].name != name:
        return failed("probe", f"device {index} '{name}' is not listed by this process")
    device = found[0]
    device.trust()  # this process is the one that qualifies it
    _fault(fault, "probe")
    try:
        probe_kernel(device)
    except (cl.Error, CnncError) as err:
        return failed("probe", f"a probe kernel fails: {first_error_line(err)}")

    stage("networks")
    _fault(fault, "networks")
    start = time.perf_counter()
    cache = program.program_cache(device)
    try:
        with cache.deferred_writes():
            bad = run_networks(device) or check_recorded_step(device)
    except (cl.Error, CnncError) as err:
        return failed("networks", f"cnnc's kernels fail: {first_error_line(err)}")
    if bad is not None:
        return failed("networks", bad)
    built = len(cache.programs)
    network_seconds = time.perf_counter() - start

    stage("binaries")
    _fault(fault, "binaries")
    try:
        written = cache.store(list(cache.programs))
    except cl.Error as err:
        return verdict(usable=True, binaries=False, stage="binaries",
                       binaries_reason="retrieving a program binary fails: "
                                       + first_error_line(err))
    if written < built:
        return verdict(usable=True, binaries=False, stage="binaries",
                       binaries_reason=f"the driver gave binaries for {written} of {built} "
                                       "programs")

    stage("reload")
    _fault(fault, "reload")
    program.forget_programs()
    try:
        bad = run_networks(device, every_variant=False) or check_recorded_step(device)
    except (cl.Error, CnncError) as err:
        bad = f"cnnc's kernels fail when built from binaries: {first_error_line(err)}"
    reloaded = program.program_cache(device)
    missed = [r for r in reloaded.records if not r.from_disk]
    if bad is None and missed:
        bad = (f"{len(missed)} of {len(reloaded.records)} program binaries did not reload "
               f"(kernels/{missed[0].file})")
    if bad is not None:
        return verdict(usable=True, binaries=False, stage="reload", binaries_reason=bad)
    return verdict(usable=True, binaries=True, programs=built,
                   network_seconds=round(network_seconds, 2))


def _fault(fault: str | None, where: str) -> None:
    """For tests: behave as a broken driver would at stage `where` ('abort@networks')."""
    if not fault:
        return
    how, _, at = fault.partition("@")
    if at != where:
        return
    if how == "abort":
        import os

        print("LLVM ERROR: a test asked this qualification to abort", file=sys.stderr,
              flush=True)
        os.abort()
    if how == "hang":
        while True:
            time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnc.qualify", description=__doc__)
    parser.add_argument("device", help="the device's index, P:D")
    parser.add_argument("--name", required=True, help="the device's name, as the parent saw it")
    parser.add_argument("--fault", help=argparse.SUPPRESS)  # tests: abort@STAGE, hang@STAGE
    args = parser.parse_args(argv)
    return qualify(args.device, args.name, args.fault)


if __name__ == "__main__":
    sys.exit(main())
