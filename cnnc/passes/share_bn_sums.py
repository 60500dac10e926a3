"""Training pass: batch norm's batch sums computed once, for its input's and parameters' gradients.

batchnorm_grad_input(x, stats, dy[, gamma]) sums dy and dy * xhat over the batch inside its own
kernels, and the gradients of gamma (batchnorm_grad_gamma(x, stats, dy): sum(dy * xhat)) and
beta (bias_grad(dy): sum(dy)) are those same two sums, each read the batch again. Where either
parameter's gradient is there, the three become

    <dx>/sums = batchnorm_grad_sums(x, stats, dy)        (2, C): [sum(dy); sum(dy * xhat)]
    <dx>      = batchnorm_grad_apply(x, stats, dy, sums[, gamma])
    grad/beta = sums_row(sums, row=0),  grad/gamma = sums_row(sums, row=1)

so the batch is read once for the sums instead of three times (the same kernels and summation
order: the values are bit for bit those of the three separate nodes on OpenCL). A batch norm
whose parameters get no gradient (frozen, or neither center nor scale) keeps its one node.
Data-parallel training undoes the sharing of the parameters' gradients (sync_batchnorm.py): its
exchanged sums are the global batch's, and the parameters' gradients must be the rank's own.
Runs after the backward pass and fuse_batchnorm_activation; fuse_bn_act_grad.py then works on
the shared form.
"""

from __future__ import annotations

from cnnc.ir.graph import Graph, Node
from cnnc.passes import names
from cnnc.passes.graph_builder import GraphBuilder

BETA_ROW, GAMMA_ROW = 0, 1


def _param_grads(graph: Graph, node: Node) -> dict[str, int]:
    """The gradient nodes of gamma and beta that sum what `node` (a batchnorm_grad_input) sums:
    name -> the row of the sums that equals it."""
    x, stats, dy = node.inputs[:3]
    found = {}
    for reader in graph.consumers.get(dy, ()):
        other = graph.node(reader)
        if (other.op == "batchnorm_grad_gamma" and other.inputs == (x, stats, dy)
                and other.attrs == node.attrs):
            found[reader] = GAMMA_ROW
        elif other.op == "bias_grad" and other.inputs == (dy,):
            found[reader] = BETA_ROW
    return found


def share_batchnorm_sums(graph: Graph) -> Graph:
    shared: dict[str, tuple[str, int]] = {}  # parameter gradient -> (its sums, row)
    plans: dict[str, Node] = {}  # sums' name -> the batchnorm_grad_input it serves
    for node in graph.nodes:
        if node.op == "batchnorm_grad_input":
            rows = _param_grads(graph, node)
            if rows:
                plans[names.batch_sums(node.name)] = node
                shared.update({g: (names.batch_sums(node.name), r) for g, r in rows.items()})
    if not plans:
        return graph
    b = GraphBuilder(graph)
    done: set[str] = set()

    def sums_before(sums: str) -> None:
        # at the first of the three nodes, whichever order the backward pass gave them
        if sums not in done:
            grad_input = plans[sums]
            b.add(sums, "batchnorm_grad_sums", grad_input.inputs[:3], grad_input.attrs,
                  like=grad_input)
            done.add(sums)

    for node in graph.nodes:
        if names.batch_sums(node.name) in plans:
            sums = names.batch_sums(node.name)
            sums_before(sums)
            x, stats, dy, *gamma = node.inputs
            b.add(node.name, "batchnorm_grad_apply", (x, stats, dy, sums, *gamma), node.attrs,
                  like=node)
        elif node.name in shared:
            sums, row = shared[node.name]
            sums_before(sums)
            b.add(node.name, "sums_row", (sums,), {"row": row}, like=node)
        else:
            b.keep(node)
    return b.build()
