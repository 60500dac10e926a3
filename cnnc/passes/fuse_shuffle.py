"""Inference pass: ShuffleNetV2's concatenate -> channel_shuffle -> channel_slice chain as
concat_shuffle gathers (cnnc/ir/concat_shuffle.py), so neither the concatenation nor the full
shuffle is written and read back.

Three rules, to a fixpoint:
- channel_shuffle(concatenate(x_0..x_{G-1})), the concatenation along the channels read by the
  shuffle only and no output, each input P channels (so shuffle group g is input g), G up to
  MAX_GROUPS -> one concat_shuffle over all the channels, under the shuffle's name;
- channel_slice(concat_shuffle(...)) whose range starts and stops on a multiple of G -> a
  concat_shuffle of that range read from the same inputs (dead_code_elimination removes the
  full one once every reader is such a slice: a stride-1 unit's split costs no copy of its own).
- a 1x1, stride-1, ungrouped conv2d or conv2d_bn reading a gather -> its gathered op
  (cnnc/ir/gathered.py) reading the tensors the gathers copy from, each input's channels as
  arithmetic runs over the convolution's input channels. The rule looks through every gather
  in the chain whose readers all are such convolutions or such gathers (and that is no output):
  those are then read by nobody, and dead_code_elimination removes them. ShuffleNetV2's
  stride-1 units and its last shuffle then cost no launch of their own at all.
Left alone: concatenations of unequal parts or along another axis, slices that cut a group,
gathers that another reader needs (the convolution reads them as they are, not through them),
and convolutions whose gather would read more than MAX_SOURCES tensors or MAX_SEGMENTS runs.
"""

from __future__ import annotations

from dataclasses import replace

from cnnc.ir.args import Attrs
from cnnc.ir.concat_shuffle import MAX_GROUPS
from cnnc.ir.gathered import (
    GATHERED_OF,
    LAYER_OF_GATHERED,
    MAX_SEGMENTS,
    MAX_SOURCES,
    Segment,
)
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


def _reads_in_place(node: Node, value: str) -> bool:
    """Whether `node` is a convolution that reads `value`'s channels wherever they lie: a
    gathered one, or one that can become one."""
    if node.op in LAYER_OF_GATHERED:
        return True
    a = node.attrs
    return (node.op in GATHERED_OF and node.inputs == (value,) and a["kernel_size"] == (1, 1)
            and a["strides"] == (1, 1) and a["groups"] == 1)


def _looked_through(graph: Graph, value: str) -> bool:
    """Whether `value` is a gather whose every reader reads it in place: such convolutions, or
    gathers looked through in turn."""
    node = graph.node_map.get(value)
    if node is None or node.op != "concat_shuffle" or value in graph.outputs:
        return False
    return all(_reads_in_place(graph.node(c), value) or _looked_through(graph, c)
               for c in graph.consumers.get(value, ()))


def _channels(graph: Graph, value: str) -> list[tuple[str, int]]:
    """(tensor, channel) each channel of `value` is copied from, through the gathers looked
    through."""
    if not _looked_through(graph, value):
        return [(value, c) for c in range(graph.shape_of(value)[-1])]
    node = graph.node(value)
    groups, parts = node.attrs["groups"], [_channels(graph, x) for x in node.inputs]
    # output channel c - start of the slice is shuffle channel c = j * groups + g: x_g[j]
    return [parts[c % groups][c // groups]
            for c in range(node.attrs["start"], node.attrs["stop"])]


def _gathered_channels(graph: Graph, node: Node) -> list[tuple[str, int]]:
    """A gathered convolution's input channels, each through the gathers looked through."""
    parts = [_channels(graph, x) for x in node.inputs]
    out: dict[int, tuple[str, int]] = {}
    for source, start, count, k0, step in node.attrs["segments"]:
        for i in range(count):
            out[k0 + i * step] = parts[source][start + i]
    return [out[k] for k in range(len(out))]


def _runs(channels: list[tuple[str, int]]) -> tuple[tuple[str, ...], tuple[Segment, ...]]:
    """The tensors read and the runs (source, start, count, k0, kstep) that gather them: per
    tensor, its channels in order, a run extended while both the channel and the position k
    step evenly."""
    names = tuple(dict.fromkeys(name for name, _ in channels))
    runs: list[list[int]] = []
    for i, name in enumerate(names):
        run: list[int] | None = None
        for c, k in sorted((c, k) for k, (n, c) in enumerate(channels) if n == name):
            if run is not None and c == run[1] + run[2]:
                step = k - run[3] if run[2] == 1 else run[4]
                if step > 0 and k == run[3] + run[2] * step:
                    run[2], run[4] = run[2] + 1, step
                    continue
            run = [i, c, 1, k, 1]
            runs.append(run)
    return names, tuple(tuple(r) for r in runs)  # type: ignore[misc]


def _gather_into_conv(graph: Graph, node: Node) -> Rewrite | None:
    if node.op in GATHERED_OF and len(node.inputs) == 1:
        if not (_reads_in_place(node, node.inputs[0])
                and _looked_through(graph, node.inputs[0])):
            return None
        op, channels = GATHERED_OF[node.op], _channels(graph, node.inputs[0])
    elif node.op in LAYER_OF_GATHERED:  # made before a gather it reads could be looked through
        if not any(_looked_through(graph, x) for x in node.inputs):
            return None
        op, channels = node.op, _gathered_channels(graph, node)
    else:
        return None
    names, segments = _runs(channels)
    if len(names) > MAX_SOURCES or len(segments) > MAX_SEGMENTS:
        return None
    fused = replace(node, op=op, inputs=names, attrs=node.attrs.replace(segments=segments))
    return Rewrite(at=node.name, new=(fused,))


RULES = {
    "concatenate + channel_shuffle -> one gather from the parts": _fuse_concat,
    "channel_slice of that gather -> a gather of the slice's channels": _fuse_slice,
    "1x1 convolution of gathers -> the convolution reading the gathers' inputs":
        _gather_into_conv,
}


def fuse_shuffle(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)
