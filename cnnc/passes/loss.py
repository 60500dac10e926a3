"""Training pass 2: attach the loss to the network's output.

Cross-entropy on a network that ends in softmax is fused with it for numerical stability: the
loss takes the logits (softmax_cross_entropy). A conv2d/dense with a softmax activation is split
into `<layer>/logits` (the same layer, linear) and `<layer>` (a softmax activation), so the
prediction keeps its name. Other outputs get the generic cross_entropy on probabilities, or
mean_squared_error. The target is a new input, `train/target`.

Outputs of the result: (train/loss, <prediction>).
"""

from __future__ import annotations

from cnnc.errors import SpecError
from cnnc.ir.graph import Graph, Node
from cnnc.ir.shapes import shape_str
from cnnc.passes import names
from cnnc.passes.graph_builder import GraphBuilder

CROSS_ENTROPY = ("sparse_categorical_crossentropy", "categorical_crossentropy")


def _ends_in_softmax(node: Node) -> bool:
    return node.opdef.fuses_activation and node.attrs["activation"] == "softmax"


def attach_loss(graph: Graph, *, loss: str, label_smoothing: float = 0.0,
                soft_targets: bool = False) -> Graph:
    """label_smoothing: the cross-entropies' e; soft_targets: a sparse cross-entropy takes
    float rows of class weights instead of class ids (what mixup and cutmix feed)."""
    if len(graph.outputs) != 1:
        raise SpecError(f"training needs a network with one output; '{graph.name}' has "
                        f"{len(graph.outputs)}: {', '.join(graph.outputs)}")
    out = graph.node(graph.outputs[0]) if graph.outputs[0] in graph.node_map else None
    if out is None or out.shape is None:
        raise SpecError(f"the output '{graph.outputs[0]}' of '{graph.name}' is not a layer")
    if label_smoothing and loss not in CROSS_ENTROPY:
        raise SpecError(f"label_smoothing applies to the cross-entropy losses, not {loss}")
    sparse = loss == "sparse_categorical_crossentropy"
    if sparse and len(out.shape) < 2:
        raise out.located(SpecError(
            f"{loss} needs predictions with a class axis; the output has shape "
            f"{shape_str(out.shape)}"))
    fused = loss in CROSS_ENTROPY and _ends_in_softmax(out)
    b = GraphBuilder(graph)
    pred = out.name
    for node in graph.nodes:
        if node is out and fused and node.op != "activation":
            pred = b.add(names.logits(node.name), node.op, node.inputs,
                         node.attrs.replace(activation="linear"), node.params, like=node)
            b.add(node.name, "activation", (pred,), {"activation": "softmax"}, like=node)
        else:
            b.keep(node)
    if fused and out.op == "activation":
        pred = out.inputs[0]
    if soft_targets and sparse:
        # Checked above as a sparse loss (a class axis); fed as rows of class weights from here.
        sparse = False
    target_shape = out.shape[1:-1] if sparse else out.shape[1:]
    b.add(names.TARGET, "input", (),
          {"shape": target_shape, "dtype": "int32" if sparse else "float32"}, like=out)
    if fused:
        op, attrs = "softmax_cross_entropy", {"sparse": sparse}
    elif loss in CROSS_ENTROPY:
        op, attrs = "cross_entropy", {"sparse": sparse}
    else:
        op, attrs = "mean_squared_error", {}
    if label_smoothing:
        attrs["label_smoothing"] = float(label_smoothing)
    b.add(names.LOSS, op, (pred, names.TARGET), attrs, like=out)
    return b.build(outputs=(names.LOSS, out.name))


def check_reconstruction(graph: Graph) -> None:
    """For `target input` (an autoencoder): the output must have the input's shape, since the
    target fed as `train/target` is the input image itself."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise SpecError(f"target input (reconstruction) needs a network with one input and one "
                        f"output; '{graph.name}' has {len(graph.inputs)} and "
                        f"{len(graph.outputs)}")
    want = graph.shape_of(graph.inputs[0])
    out = graph.node(graph.outputs[0])
    if out.shape != want:
        raise out.located(SpecError(
            f"target input (reconstruction) needs the output shaped like the input "
            f"{shape_str(want)}; the output '{out.name}' has shape {shape_str(out.shape)}"))
