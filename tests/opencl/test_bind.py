"""Bindings: every op of the op table has one, and every launch matches its kernel's signature.

No device needed: bindings are descriptions. The signature check reads the parameters of each
`__kernel` in kernels/*.cl and checks every launch passes as many arguments, buffers where the
kernel takes pointers and scalars of the right type elsewhere.
"""

from __future__ import annotations

import re
from functools import cache
from math import prod

import pytest
from test_ops import CASES, forward_graph, train_graph

import cnnc
from cnnc.backends.opencl.bind import BINDERS, bind_node
from cnnc.backends.opencl.launches import (
    BindContext,
    FirstIndex,
    Float,
    Int,
    Null,
    ScalarsAt,
    Step,
    UInt,
    UpdateScalars,
    Value,
    Workspace,
    Zeros,
)
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.program import build_options, kernel_dir
from cnnc.backends.opencl.target import Target
from cnnc.errors import CnncError, InternalError
from cnnc.ir.graph import Graph, Node
from cnnc.ir.ops import node_op_names
from cnnc.passes.pipeline import inference_graph, training_graph

TARGETS = [Target("cpu", 2), Target("gpu", 80)]


def test_every_op_has_an_opencl_binding():
    """No op may fall back to NumPy on the host: each one is bound to kernels."""
    missing = sorted(set(node_op_names()) - set(BINDERS))
    assert not missing, f"ops with no OpenCL binding: {', '.join(missing)}"
    extra = sorted(set(BINDERS) - set(node_op_names()))
    assert not extra, f"bindings for ops that do not exist: {', '.join(extra)}"


def test_an_op_without_a_binding_is_reported_as_a_bug():
    """A clean error the CLI prints (a CnncError), saying it is cnnc's fault, not the user's."""
    node = Node("n", "no_such_op")
    with pytest.raises(InternalError) as err:
        bind_node(node, BindContext(Graph("g", (node,), ()), 1))
    assert isinstance(err.value, CnncError)
    text = err.value.render()
    assert "no OpenCL binding for op 'no_such_op'" in text
    assert "bug in cnnc" in text and "report" in text


@cache
def kernel_signatures(file: str, residual: bool = False, gated: bool = False, groups: int = 2,
                      bias: bool = False, sources: int = 1,
                      concat: bool = False, parts: int = 1) -> dict[str, list[str]]:
    """kernel name -> parameter types ('ptr', 'int', 'uint', 'float'). A kernel whose list ends
    in RESIDUAL_PARAM (common.h) takes one more pointer, last, when built with `residual`
    (-D HAS_RESIDUAL=1), and none otherwise; one whose list ends in GATE_PARAM (conv2d.cl)
    takes one more after that when built `gated` (-D GATED=1), one whose list ends in
    BIAS_PARAM (conv2d.cl's input gradients) when built with `bias` (-D HAS_BIAS=1: a
    transposed convolution's). channel_shuffle.cl's concat_shuffle takes a third and fourth
    input (SRC2_PARAM, SRC3_PARAM) with -D GROUPS 3, 4; conv2d_forward, built GATHERED with
    -D SOURCES, one more input for each source after the first (GATHER_PARAM), last;
    winograd.cl's input reads, built with -D CONCAT=1, a second part after x (CONCAT_PARAM);
    pool.cl's maxpool2d, built with -D PARTS, one more input for each part after the first
    (PARTS_PARAM), last."""
    text = (kernel_dir() / file).read_text()
    out = {}
    for m in re.finditer(r"__kernel\s+void\s+(\w+)\s*\(([^)]*)\)", text):
        kinds = []
        params = m.group(2).replace("CONCAT_PARAM",
                                    ", __global const float *x1" if concat else "")
        for k, extra in ((2, "SRC2_PARAM"), (3, "SRC3_PARAM")):
            params = params.replace(extra, ", __global const float *x" if groups > k else "")
        if params.rstrip().endswith("PARTS_PARAM"):
            params = params.rstrip().removesuffix("PARTS_PARAM")
            params += ", __global const float *x" * (parts - 1)
        gather = params.rstrip().endswith("GATHER_PARAM")
        params = params.rstrip().removesuffix("GATHER_PARAM")
        has_bias = params.rstrip().endswith("BIAS_PARAM")
        params = params.rstrip().removesuffix("BIAS_PARAM")
        gate = params.rstrip().endswith("GATE_PARAM")
        params = params.rstrip().removesuffix("GATE_PARAM")
        if params.rstrip().endswith("RESIDUAL_PARAM"):
            params = params.rstrip().removesuffix("RESIDUAL_PARAM")
            params += ", __global const float *residual" if residual else ""
        params += ", __global const float *gate" if gate and gated else ""
        params += ", __global const float *bias" if has_bias and bias else ""
        params += ", __global const float *x" * (sources - 1) if gather else ""
        for param in params.split(","):
            param = " ".join(param.split())
            if "*" in param:
                kinds.append("ptr")
            else:
                kinds.append(param.replace("const ", "").split()[0])
        out[m.group(1)] = kinds
    return out


ARG_KINDS = {
    Value: "ptr",
    Workspace: "ptr",
    Zeros: "ptr",
    Null: "ptr",
    Int: "int",
    UInt: "uint",
    Float: "float",
    Step: "uint",
    FirstIndex: "uint",
    UpdateScalars: "ptr",
    ScalarsAt: "int",
}


def _graphs():
    yield "fashion/forward", inference_graph(cnnc.load_spec("specs/fashion.yaml")), 32
    yield "fashion/train", training_graph(cnnc.load_spec("specs/fashion.yaml")), 32
    yield "resnet_mini/forward", inference_graph(cnnc.load_spec("specs/resnet_mini.yaml")), 8
    # the concatenations (and an upsampling) read in place (fuse_conv_concat)
    yield "unet_mini/forward", inference_graph(cnnc.load_spec("specs/unet_mini.yaml")), 8
    for case in CASES:
        yield f"{case.name}/forward", forward_graph(case), case.batch
        yield f"{case.name}/train", train_graph(case), case.batch
        if "add" in str(case.layers) or "channel_shuffle" in str(case.layers):
            # the residual ops (fuse_residual), the gathers (fuse_shuffle)
            yield f"{case.name}/inference", inference_graph(forward_graph(case)), case.batch


GRAPHS = list(_graphs())


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.kind)
@pytest.mark.parametrize("name,graph,batch", GRAPHS, ids=[g[0] for g in GRAPHS])
def test_launches_match_kernel_signatures(name, graph, batch, target):
    plan = make_plan(graph, batch, target)
    for node, lau in plan.launches():
        where = f"{node}: {lau.file}:{lau.kernel}"
        # HAS_ACT_GRAD (bind_act_grad.py) passes the activation's value in the residual's place
        sig = kernel_signatures(lau.file, bool(lau.define_map.get("HAS_RESIDUAL")
                                               or lau.define_map.get("HAS_ACT_GRAD")),
                                bool(lau.define_map.get("GATED")),
                                lau.define_map.get("GROUPS", 2),
                                bool(lau.define_map.get("HAS_BIAS")),
                                lau.define_map.get("SOURCES", 1),
                                bool(lau.define_map.get("CONCAT")),
                                lau.define_map.get("PARTS", 1))
        assert lau.kernel in sig, f"{where}: no such kernel"
        kinds = [ARG_KINDS[type(a)] for a in lau.args]
        assert kinds == sig[lau.kernel], f"{where}: passes {kinds}, kernel takes {sig[lau.kernel]}"
        build_options(lau.define_map)  # integers only, or this raises
        assert all(g > 0 for g in lau.global_size) and 1 <= len(lau.global_size) <= 3, where
        if lau.local_size is not None:
            assert len(lau.local_size) == len(lau.global_size), where
            assert all(g % k == 0 for g, k in zip(lau.global_size, lau.local_size)), where
            assert prod(lau.local_size) <= 256, where  # every OpenCL GPU allows 256
        for arg in lau.args:
            if isinstance(arg, Value):
                assert arg.name in graph.node_map or arg.name in graph.state_map, where
            if isinstance(arg, Workspace):
                assert arg.index < len(plan.bindings[node].workspaces), where


def test_the_batch_size_never_reaches_the_build_options():
    """Programs are shared by every batch size of two to RULE_MAX_BATCH, and by every larger
    one (predict's last partial batch builds nothing but across that bound): on an AVX-512 CPU
    the small batches run the 14x14 3x3 convolution as the one-launch Winograd by rule
    (winograd.wins_by_rule), whose programs are the only ones they add; one row alone runs its
    dense layers as gemv.cl and on a CPU its 7x7 256-channel convolution's forward pass in
    reduction parts and its 7x7 convolutions in blocks of rows that divide the map's 49 (the
    latency path, tiling.exact_row_tile), whose programs are the only ones batch 1 adds."""
    from cnnc.backends.opencl.winograd import RULE_MAX_BATCH

    graph = training_graph(cnnc.load_spec("specs/fashion.yaml"))
    options = {}
    for batch in (1, 2, RULE_MAX_BATCH, RULE_MAX_BATCH + 1, 32):
        plan = make_plan(graph, batch, TARGETS[0])
        options[batch] = {(lau.file, lau.kernel, lau.defines) for _, lau in plan.launches()}
    assert options[2] == options[RULE_MAX_BATCH]
    assert options[RULE_MAX_BATCH + 1] == options[32]
    small = options[2] - options[32]
    assert {o[0] for o in small} <= {"winograd.cl"}
    assert bool(small) == (TARGETS[0].kind == "cpu" and TARGETS[0].max_vector >= 16)
    added = options[1] - options[2]
    parts = {o for o in added if o[0] == "conv2d.cl"}
    assert {o[0] for o in added - parts} == {"gemv.cl"}
    assert {o[1] for o in parts} <= {"conv2d_forward", "conv2d_parts_finish"}
    for _, kernel, defines in parts:
        d = dict(defines)
        exact = kernel == "conv2d_forward" and d["MR"] < 8 and (d["OH"] * d["OW"]) % d["MR"] == 0
        assert d.get("SPLIT", 1) > 1 or exact, (kernel, d)
    assert bool(parts) == (TARGETS[0].kind == "cpu")
