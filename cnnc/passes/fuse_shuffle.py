"""Inference pass: ShuffleNetV2's concatenate -> channel_shuffle -> channel_slice chain as
concat_shuffle gathers (cnnc/ir/concat_shuffle.py), so neither the concatenation nor the full
shuffle is written and read back.

Two rules, to a fixpoint:
- channel_shuffle(concatenate(x_0..x_{G-1})), the concatenation along the channels read by the
  shuffle only and no output, each input P channels (so shuffle group g is input g), G up to
  MAX_GROUPS -> one concat_shuffle over all the channels, under the shuffle's name;
- channel_slice(concat_shuffle(...)) whose range starts and stops on a multiple of G -> a
  concat_shuffle of that range read from the same inputs (dead_code_elimination removes the
  full one once every reader is such a slice: a stride-1 unit's split costs no copy of its own).
Left alone: concatenations of unequal parts or along another axis, and slices that cut a group.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.args import Attrs
from cnnc.ir.concat_shuffle import MAX_GROUPS
from cnnc.ir.graph import Graph, Node
from cnnc.passes.rewrite import Rewrite, apply_rules


def _producer(graph: Graph, node: Node, op: str) -> Node | None:
    source = node.inputs[0] if node.inputs else None
    if source is None or source not in graph.node_map:
        return None
    found = graph.node(source)
    return found if found.op == op else None


def _fuse_concat(graph: Graph, node: Node) -> Rewrite | None:
    if node.op != "channel_shuffle":
        return None
    concat = _producer(graph, node, "concatenate")
    groups = node.attrs["groups"]
    if (concat is None or graph.consumers.get(concat.name) != (node.name,)
            or concat.name in graph.outputs or len(concat.inputs) != groups
            or groups > MAX_GROUPS):
        return None
    shapes = [graph.shape_of(x) for x in concat.inputs]
    if concat.attrs["axis"] not in (-1, len(shapes[0]) - 1) or any(s != shapes[0]
                                                                   for s in shapes):
        return None
    channels = groups * shapes[0][-1]
    fused = replace(node, op="concat_shuffle", inputs=concat.inputs,
                    attrs=Attrs(groups=groups, start=0, stop=channels))
    return Rewrite(at=node.name, new=(fused,), drop=(concat.name,))


def _fuse_slice(graph: Graph, node: Node) -> Rewrite | None:
    if node.op != "channel_slice":
        return None
    gather = _producer(graph, node, "concat_shuffle")
    if gather is None:
        return None
    groups = gather.attrs["groups"]
    start = gather.attrs["start"] + node.attrs["start"]
    stop = gather.attrs["start"] + node.attrs["stop"]
    if start % groups or stop % groups:
        return None
    fused = replace(node, op="concat_shuffle", inputs=gather.inputs,
                    attrs=Attrs(groups=groups, start=start, stop=stop))
    return Rewrite(at=node.name, new=(fused,))


RULES = {
    "concatenate + channel_shuffle -> one gather from the parts": _fuse_concat,
    "channel_slice of that gather -> a gather of the slice's channels": _fuse_slice,
}


def fuse_shuffle(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
