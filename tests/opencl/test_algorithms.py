"""The registry of the tunable ops' algorithms (cnnc/backends/opencl/algorithms.py): every
registration binds, states a GEMM, edge shapes and an error factor that hold, and is the only
way its op is bound. No device needed: bindings are descriptions."""

from __future__ import annotations

import pytest

from cnnc.backends.opencl import (
    bind_distributed,
    bind_fused,
    bind_gradients,
    bind_layers,
    bind_losses,
    bind_residual,
    bind_updates,
)
from cnnc.backends.opencl.algorithms import (
    ALGORITHMS,
    REGISTERED,
    TUNABLE_OPS,
    bind_by_algorithm,
    default_algorithm,
)
from cnnc.backends.opencl.bind import BINDERS
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.target import Target
from cnnc.errors import InternalError
from cnnc.frontend.spec import load_spec
from cnnc.ir.graph import Node
from cnnc.ir.ops import node_op_names
from cnnc.passes.pipeline import inference_graph, training_graph
from cnnc.tune.cache import variant_problem
from cnnc.tune.gate import cases
from cnnc.tune.space import as_layer, gemm_of, tunable, tuning_graph, variant_space

# Every algorithm of every tunable op applies somewhere here: a few channels (im2col), a
# stride-2 convolution (phases), stride-1 3x3 ones (Winograd), a grouped one, transposed
# convolutions (strided: phases; and not), depthwise ones (one with a batch norm folded in at
# inference, one fused with the 1x1 convolution after it), a 1x1 convolution read by a global
# average pooling alone (one pointwise_avgpool node at inference), dense layers.
SPEC = """
network: algorithms
input: [9, 11, 3]
layers:
  - {conv2d: [8, 3], padding: same, activation: relu}
  - {conv2d: [12, 3], strides: 2, padding: same, activation: relu}
  - {conv2d: [16, 3], padding: same, activation: relu}
  - {conv2d: [16, 1], groups: 4, activation: relu}
  - {depthwise_conv2d: 3, padding: same, activation: relu}
  - {depthwise_conv2d: 3, depth_multiplier: 2, use_bias: false}
  - batchnorm
  - {conv2d_transpose: [6, 3], strides: 2, padding: same, activation: relu}
  - {conv2d_transpose: [5, 2], activation: relu}
  - {depthwise_conv2d: 3, padding: same}
  - {conv2d: [8, 1], activation: relu}
  - {conv2d: [10, 1], activation: relu}
  - global_avgpool2d
  - {dense: 12, activation: relu}
  - {dense: 4, activation: softmax}
train:
  batch_size: 3
  optimizer: {name: sgd, learning_rate: 0.01}
  loss: sparse_categorical_crossentropy
"""

TARGETS = [Target("cpu", 2, native_vector=8), Target("gpu", 8)]
BATCH = 3


@pytest.fixture(scope="module")
def graphs():
    forward = load_spec(SPEC)
    # the inference graph as the tuner sees it: the dense layer and softmax head it fuses
    # (dense_pair) as the two layers
    return [tuning_graph(inference_graph(forward)), training_graph(forward, wrt_inputs=True)]


def _nodes(graphs, target):
    for graph in graphs:
        ctx = BindContext(graph, BATCH, target)
        for node in graph.nodes:
            if tunable(node):
                yield graph, ctx, node


def test_the_tunable_ops_are_bound_by_their_algorithms_only():
    """No op group's table binds a tunable op besides the registry: an algorithm cannot be
    chosen by a binder of its own."""
    for table in (bind_layers, bind_gradients, bind_losses, bind_updates, bind_distributed,
                  bind_fused, bind_residual):
        assert not set(table.BINDERS) & set(TUNABLE_OPS), table.__name__
    assert set(TUNABLE_OPS) <= set(node_op_names())
    for op in TUNABLE_OPS:
        assert BINDERS[op] is bind_by_algorithm


def test_registrations_of_one_algorithm_agree():
    """describe() and the tuner's families read an algorithm by its name alone; the error
    factor is read per (op, algorithm) (the Winograd kernel gradient's transforms err less than
    the forward pass's), so the gate of each op scales by its own."""
    from cnnc.tune.space import error_factor

    for a in REGISTERED:
        for b in REGISTERED:
            if a.name == b.name:
                assert (a.describe, a.family) == (b.describe, b.family)
    for a in REGISTERED:
        if a.name == "winograd":
            node = Node("n", a.op, ())
            variant = {"algo": "winograd", "wino_m": 4}
            assert error_factor(node, variant) == a.error_factor(variant)
    for op in TUNABLE_OPS:  # each tunable op has a default algorithm
        assert any(a.gemm is not None for a in REGISTERED if a.op == op), op


@pytest.mark.parametrize("target", TARGETS, ids=["cpu", "gpu"])
def test_every_registration_binds_and_is_in_the_space(graphs, target):
    """Each (op, algorithm) runs somewhere in the sample graphs, every variant of its own
    binds, and its variants use only keys the tuning cache accepts."""
    seen = set()
    for graph, ctx, node in _nodes(graphs, target):
        layer = as_layer(node)
        for variant in variant_space(node, ctx):
            algorithm = ALGORITHMS[(layer.op, variant["algo"])]
            assert algorithm.applies(layer, ctx)
            assert variant_problem(variant) is None, variant
            seen.add((layer.op, variant["algo"]))
            plan = make_plan(graph, BATCH, target, variants={node.name: variant})
            assert plan.bindings[node.name].launches
    missing = sorted(set(ALGORITHMS) - seen - ONE_KIND_ONLY.get(target.kind, set()))
    assert not missing, f"registrations no node of the sample graphs takes: {missing}"


# Registrations that apply on one kind of device only: the staged depthwise_pointwise kernel's
# and row kernels' private array of a pixel block's depthwise channels is a CPU's (a GPU's
# would spill it); the kernel gradient's tap vectors are listed on a CPU only (a GPU's work-items
# would be too few: KH x the row's vector blocks x the filter blocks, per part).
ONE_KIND_ONLY = {"gpu": {("depthwise_pointwise", "staged"),
                         ("depthwise_pointwise", "staged_rows"),
                         ("conv2d_grad_kernel", "grad_taps")}}


def test_defaults_are_what_the_binders_run_without_a_variant(graphs):
    target = TARGETS[0]
    for graph, ctx, node in _nodes(graphs, target):
        default = variant_space(node, ctx)[0]
        assert default["algo"] == default_algorithm(as_layer(node), ctx).name
        plain = make_plan(graph, BATCH, target).bindings[node.name]
        spelled = make_plan(graph, BATCH, target, variants={node.name: default})
        assert spelled.bindings[node.name] == plain, node.name


def test_edge_shapes_keep_the_columns_and_infer(graphs):
    """Each registration's edge shapes are graphs that infer, with the real shape's columns
    (a variant's register block must divide them)."""
    target = TARGETS[0]
    for graph, ctx, node in _nodes(graphs, target):
        real, *edges = cases(graph, node, BATCH)
        assert edges, node.name
        cols = gemm_of(real.node, BindContext(real.graph, real.batch, target)).cols
        for case in edges:
            edge_ctx = BindContext(case.graph, case.batch, target)
            assert gemm_of(case.node, edge_ctx).cols == cols, (node.name, case.label)


def test_error_factors_never_loosen_below_a_direct_sum(graphs):
    from cnnc.tune.space import error_factor

    for _, ctx, node in _nodes(graphs, TARGETS[0]):
        for variant in variant_space(node, ctx):
            assert error_factor(node, variant) >= 1.0


def test_an_algorithm_the_op_does_not_have_is_a_bug(graphs):
    graph = graphs[0]
    node = next(n for n in graph.nodes if n.op == "dense")
    with pytest.raises(InternalError, match="dense has no algorithm 'winograd'"):
        make_plan(graph, BATCH, TARGETS[0], variants={node.name: {"algo": "winograd"}})


def test_a_new_algorithm_is_one_registration(graphs, monkeypatch):
    """Registering another algorithm for dense (here the direct one's binding and GEMM under
    another name) puts it in the tuner's space and lets the binders run it, nothing else."""
    from dataclasses import replace

    from cnnc.backends.opencl import algorithms

    direct = ALGORITHMS[("dense", "direct")]
    again = replace(direct, name="again", describe=lambda v: "again")
    monkeypatch.setattr(algorithms, "REGISTERED", (*REGISTERED, again))
    monkeypatch.setitem(algorithms.ALGORITHMS, ("dense", "again"), again)
    graph = graphs[0]
    node: Node = next(n for n in graph.nodes if n.op == "dense")
    ctx = BindContext(graph, BATCH, TARGETS[0])
    space = variant_space(node, ctx)
    again_variant = {**space[0], "algo": "again"}  # after dense's few-rows gemv, at batch 3
    assert again_variant in space
    plan = make_plan(graph, BATCH, TARGETS[0], variants={node.name: again_variant})
    assert plan.bindings[node.name] == make_plan(graph, BATCH, TARGETS[0]).bindings[node.name]


def test_winograd_is_registered_for_each_op_it_binds():
    """winograd.py's convolution geometry per op and the registry list the same ops."""
    from cnnc.backends.opencl import winograd

    registered = {a.op for a in REGISTERED if a.variants is winograd.winograd_space}
    assert registered == set(winograd.OPS)
