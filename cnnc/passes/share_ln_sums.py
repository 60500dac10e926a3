"""Training pass: layer normalisation's parameter gradients as the two rows of one pass's sums.

The backward pass gives a layer_norm with gamma and beta two reductions over the same rows:

    grad/gamma = layer_norm_grad_gamma(x, dy)      sum(dy * xhat): each row's statistics, then
                                                   a column sum (three launches on OpenCL)
    grad/beta  = bias_grad(dy)                     sum(dy): a column sum (two launches)

which become

    <grad/gamma>/sums = layer_norm_grad_sums(x, dy)      (2, C): [sum(dy); sum(dy * xhat)]
    grad/beta  = sums_row(sums, row=0),  grad/gamma = sums_row(sums, row=1)

so x and dy are read once for both, and each row's statistics are computed where they are used
instead of being written and read back. The rows are those of share_bn_sums.py's batch-norm
sums, so `sums_row` reads either. A bias_grad of the same dy is the same sum whichever layer
it belongs to; a layer_norm without center keeps its gamma node (row 1 alone would cost as
much). The sums are never exchanged by data-parallel ranks: each rank's parameter gradients
are its own batch's, as these are (sync_batchnorm.py keeps them). Runs after the backward pass.
"""

from __future__ import annotations

from cnnc.ir.graph import Graph, Node
from cnnc.passes import names
from cnnc.passes.graph_builder import GraphBuilder

BETA_ROW, GAMMA_ROW = 0, 1  # share_bn_sums.py's rows, which sums_row's readers expect


def _beta_grad(graph: Graph, gamma: Node) -> Node | None:
    """The bias_grad summing the dy that `gamma` (a layer_norm_grad_gamma) reads."""
    dy = gamma.inputs[1]
    for reader in graph.consumers.get(dy, ()):
        other = graph.node(reader)
        if other.op == "bias_grad" and other.inputs == (dy,):
            return other
    return None


def share_layer_norm_sums(graph: Graph) -> Graph:
    rows: dict[str, tuple[Node, int]] = {}  # parameter gradient -> (the gamma node, its row)
    for node in graph.nodes:
        if node.op == "layer_norm_grad_gamma":
            beta = _beta_grad(graph, node)
            if beta is not None and beta.name not in rows:
                rows[node.name] = (node, GAMMA_ROW)
                rows[beta.name] = (node, BETA_ROW)
    if not rows:
        return graph
    b = GraphBuilder(graph)
    done: set[str] = set()
    for node in graph.nodes:
        if node.name not in rows:
            b.keep(node)
            continue
        gamma, row = rows[node.name]
        sums = names.batch_sums(gamma.name)
        if sums not in done:  # at the first of the two, whichever order they come in
            b.add(sums, "layer_norm_grad_sums", gamma.inputs, gamma.attrs, like=gamma)
            done.add(sums)
        b.add(node.name, "sums_row", (sums,), {"row": row}, like=node)
    return b.build()
