"""Binder of avgpool_dense (cnnc/ir/avgpool_dense.py): node -> launches, and its table
`BINDERS`.

The node's dense part is bound as a dense node of the node's name reading the pooling
`<name>/pool` (with the variant the tuner chose for it: cnnc/tune/space.py's tuning_graph times
that part under the node's name). Where that binding is gemv.cl's dense_softmax (a classifier's
head on a few rows, the default wherever it applies), its one launch reads the map and averages
each row's pixels itself (-D POOL_PIXELS), the pooled vector in local memory. Any other variant
(gemv, the direct GEMM) is unfused, never computed elsewhere: pool.cl's global_avgpool2d into a
workspace, and the dense layer's launches reading it, the two launches of the graph without the
fusion.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.backends.opencl import bind_gemv
from cnnc.backends.opencl.algorithms import chosen_algorithm
from cnnc.backends.opencl.bind_layers import bind_global_avgpool2d
from cnnc.backends.opencl.launches import (
    BindContext,
    Binder,
    NodeBinding,
    Value,
    Workspace,
    redirect,
)
from cnnc.backends.opencl.tiling import FLOAT_BYTES
from cnnc.errors import InternalError
from cnnc.ir.avgpool_dense import parts
from cnnc.ir.graph import Node


def pool_vector(channels: int, ctx: BindContext) -> int:
    """The channels the fused head's pooling sums at once: the widest vector that divides them.
    resnet_mini's head (14x14 pixels of 32 channels) on the one-thread companion of the 2-core
    Intel Xeon: 4.7 us a launch a channel at a time, 2.1 us eight at a time."""
    return next(v for v in (16, 8, 4, 2, 1) if v <= ctx.target.max_vector and channels % v == 0)


def bind_avgpool_dense(node: Node, ctx: BindContext) -> NodeBinding:
    (x,) = node.inputs
    pool, dense = parts(node, ctx.graph.shape_of(x))
    inner_ctx = replace(ctx, graph=ctx.graph.with_nodes((*ctx.graph.nodes, pool)))
    inner = chosen_algorithm(dense, inner_ctx).bind(dense, inner_ctx)
    head = [i for i, lau in enumerate(inner.launches)
            if (lau.file, lau.kernel) == ("gemv.cl", bind_gemv.HEAD)]
    _, h, w, c = ctx.shape(x)
    if head and len(inner.launches) == 1:
        lau = inner.launches[0]
        mr = lau.define_map["MR"]
        # The pooled rows beside the logits, in the group's local memory.
        if (mr * (c + dense.attrs["units"])) * FLOAT_BYTES <= ctx.target.limits.local_memory:
            defines = tuple(sorted({**lau.define_map, "POOL_PIXELS": h * w,
                                    "POOL_VW": pool_vector(c, ctx)}.items()))
            fused = replace(redirect(lau, {Value(pool.name): Value(x)}), defines=defines)
            return replace(inner, launches=(fused,))
    # Unfused: the pooling into a workspace the dense layer's launches read.
    reads = [lau for lau in inner.launches if Value(pool.name) in lau.args]
    if not reads:
        raise InternalError(f"node '{node.name}': no launch of its dense binding reads the "
                            "pooled vector")
    work = Workspace(len(inner.workspaces))
    pooled = bind_global_avgpool2d(pool, inner_ctx).launches
    launches = (*(redirect(lau, {Value(pool.name): work}) for lau in pooled),
                *(redirect(lau, {Value(pool.name): work}) for lau in inner.launches))
    return replace(inner, launches=launches,
                   workspaces=(*inner.workspaces, inner_ctx.numel(pool.name)))


BINDERS: dict[str, Binder] = {"avgpool_dense": bind_avgpool_dense}
