"""Data-parallel pass: batch norm over the global batch, and the values ranks must exchange.

A training graph split over ranks computes the same thing as on one device except where a value
sums over the batch. Parameter gradients are all-reduced after the gradient phase
(data_parallel.py); batch norm needs its sums over the global batch in the middle of the step:
- forward: `<layer>/stats` (mean, variance) is exchanged right after batchnorm_stats, so every
  rank normalises with, and updates its moving averages from, the global batch's statistics;
- backward: batchnorm_grad_input becomes batchnorm_grad_sums (its per-channel sums, exchanged)
  plus batchnorm_grad_apply (cnnc/ir/distributed_ops.py), the same arithmetic in two steps
  (batchnorm_act_grad_sums and _apply, fuse_bn_act_grad.py's, are exchanged alike). Gamma's
  and beta's gradients that share_bn_sums.py read as rows of those sums must be the rank's
  own (the all-reduce of parameter gradients adds up the ranks' shares; rows of the exchanged
  sums would count each rank's twice): they sum the rank's batch again, as
  batchnorm_grad_gamma and bias_grad of plain sums, and as rows of a second copy of sums
  taken through an activation, `<sums>/local`, which is never exchanged.
`exchange_points` lists those values in the order every rank's executable reaches them.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from cnnc.ir.graph import Graph, Node
from cnnc.passes import names
from cnnc.passes.graph_builder import GraphBuilder

BATCH_STATS = "batch_stats"  # (2, C): mean and biased variance over the rows a rank holds
WEIGHTED_SUM = "weighted_sum"  # sums over the rows a rank holds, of its share of the loss


@dataclass(frozen=True)
class ExchangePoint:
    value: str
    kind: str  # BATCH_STATS or WEIGHTED_SUM
    rows_per_example: int  # rows summed over per example (H*W for NHWC, 1 for dense)
    index: int  # position among the graph's exchange points (ranks check they agree)


SUMS_OPS = ("batchnorm_grad_sums", "batchnorm_act_grad_sums")
APPLY_OPS = ("batchnorm_grad_apply", "batchnorm_act_grad_apply")


def local_sums(sums: str) -> str:
    return f"{sums}/local"


def _rank_own_parameter_gradient(b: GraphBuilder, row: Node, sums: Node) -> None:
    if sums.op not in SUMS_OPS:  # layer norm's (share_ln_sums.py): never exchanged, the rank's
        b.keep(row)
        return
    if sums.op == "batchnorm_grad_sums":
        x, stats, dy = sums.inputs
        if row.attrs["row"] == 0:
            b.add(row.name, "bias_grad", (dy,), like=row)
        else:
            b.add(row.name, "batchnorm_grad_gamma", (x, stats, dy), sums.attrs, like=row)
        return
    local = local_sums(sums.name)
    if local not in b.shapes:
        b.add(local, sums.op, sums.inputs, sums.attrs, like=sums)
    b.add(row.name, "sums_row", (local,), row.attrs, like=row)


def sync_batchnorm(graph: Graph) -> Graph:
    """batchnorm_grad_input split into batchnorm_grad_sums + batchnorm_grad_apply, and the
    parameters' gradients read from sums of the rank's own batch."""
    if not any(n.op in ("batchnorm_grad_input", "sums_row") for n in graph.nodes):
        return graph
    b = GraphBuilder(graph)
    for node in graph.nodes:
        if node.op == "sums_row":
            _rank_own_parameter_gradient(b, node, graph.node(node.inputs[0]))
            continue
        if node.op != "batchnorm_grad_input":
            b.keep(node)
            continue
        x, stats, dy, *gamma = node.inputs
        sums = b.add(names.batch_sums(node.name), "batchnorm_grad_sums", (x, stats, dy),
                     node.attrs, like=node)
        b.add(node.name, "batchnorm_grad_apply", (x, stats, dy, sums, *gamma), node.attrs,
              like=node)
    return b.build()


def exchange_points(graph: Graph) -> tuple[ExchangePoint, ...]:
    """The values a data-parallel step exchanges mid-run, in graph order."""
    points = []
    for node in graph.nodes:
        if node.op == "batchnorm_stats":
            kind = BATCH_STATS
        elif node.op in SUMS_OPS and any(
                graph.node(r).op in APPLY_OPS for r in graph.consumers.get(node.name, ())):
            kind = WEIGHTED_SUM  # the `<sums>/local` copies the parameters read stay local
        else:
            continue
        x_shape = graph.shape_of(node.inputs[0])
        points.append(ExchangePoint(node.name, kind, prod(x_shape[1:-1]), len(points)))
    return tuple(points)
