"""The network as a table, like Keras' model.summary(), plus FLOPs: `cnnc summary` prints it and
a run's report.html shows it.

One row per layer: name and Keras class, output shape with the batch left open (None),
parameters, and forward FLOPs per example (a multiply-add counts two, as the op table counts).
Totals below: parameters (trainable and not: batch norm's moving statistics are not) and FLOPs.
With rf, three more columns give each layer's receptive field on the input
(cnnc/ir/receptive_field.py): its size, the jump between neighbouring outputs' fields, and
where the first output's field starts (negative: it reaches into the zero padding).
"""

from __future__ import annotations

from cnnc.ir.cost import node_flops, total_flops
from cnnc.ir.graph import Graph
from cnnc.ir.printer import format_shape, format_value
from cnnc.ir.train_config import DEFAULT_AUGMENT


def _size(n_params: int) -> str:
    """Bytes of float32 storage, in Keras' style: 5.39 MB (binary units)."""
    size = 4.0 * n_params
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"


def _flops_text(flops: int) -> str:
    for scale, unit in ((1e9, "GFLOP"), (1e6, "MFLOP"), (1e3, "kFLOP")):
        if flops >= scale:
            return f"{flops:,} ({flops / scale:.2f} {unit})"
    return f"{flops:,}"


def layer_rows(graph: Graph) -> list[tuple[str, str, int, int, str]]:
    """(name and type, output shape, params, FLOPs, inputs) for each node, in graph order."""
    rows = []
    for node in graph.nodes:
        op = node.opdef
        params = sum(graph.state_map[p].size for p in node.params)
        rows.append((f"{node.name} ({op.keras_name or op.name})", format_shape(node.shape),
                     params, node_flops(graph, node), ", ".join(node.inputs)))
    return rows


def _is_chain(graph: Graph) -> bool:
    nodes = graph.nodes
    return all(n.op == "input" and i == 0 or i > 0 and n.inputs == (nodes[i - 1].name,)
               for i, n in enumerate(nodes))


def summary_text(graph: Graph, *, rf: bool = False) -> str:
    """The table and totals, as `cnnc summary` prints them; rf adds the receptive fields."""
    rows = layer_rows(graph)
    chain = _is_chain(graph)
    head = ["Layer (type)", "Output Shape", "Param #", "FLOPs"] + ([] if chain else
                                                                  ["Connected to"])
    cells = [[r[0], r[1], f"{r[2]:,}", f"{r[3]:,}"] + ([] if chain else [r[4]]) for r in rows]
    right = {2, 3}  # numbers align right
    if rf:
        from cnnc.ir.receptive_field import describe, receptive_fields

        fields = receptive_fields(graph)
        at = len(head)
        head += ["RF size", "Jump", "Start"]
        for cell, node in zip(cells, graph.nodes):
            spatial = node.shape is not None and len(node.shape) == 4
            cell += describe(fields[node.name], spatial=spatial)
        right |= {at, at + 1, at + 2}
    widths = [max(len(str(c[i])) for c in [head, *cells]) for i in range(len(head))]

    def line(values: list[str]) -> str:
        parts = [f"{v:>{w}}" if i in right else f"{v:<{w}}"
                 for i, (v, w) in enumerate(zip(values, widths))]
        return "  ".join(parts).rstrip()

    rule_width = sum(widths) + 2 * (len(widths) - 1)
    total = sum(s.size for s in graph.weights)
    trainable = sum(s.size for s in graph.weights if s.trainable)
    flops = total_flops(graph)
    out = [f'Network: "{graph.name}"', "=" * rule_width, line(head), "=" * rule_width]
    out += [line(c) for c in cells]
    out.append("=" * rule_width)
    out.append(f"Total params: {total:,} ({_size(total)})")
    out.append(f"Trainable params: {trainable:,} ({_size(trainable)})")
    out.append(f"Non-trainable params: {total - trainable:,} ({_size(total - trainable)})")
    out.append(f"Forward FLOPs per example: {_flops_text(flops)}")
    if len(graph.outputs) > 1 or graph.outputs != (graph.nodes[-1].name,):
        shapes = ", ".join(f"{o} {format_shape(graph.shape_of(o))}" for o in graph.outputs)
        out.append(f"Outputs: {shapes}")
    if graph.train is not None:
        out.append(f"Training: {training_line(graph.train)}")
    return "\n".join(out)


def training_line(config) -> str:
    """The train section in one line: dataset, epochs, batch, optimizer, loss, extras."""
    opt = config.optimizer
    epochs = f"{config.epochs} epoch" + ("" if config.epochs == 1 else "s")
    parts = [config.dataset, epochs, f"batch {config.batch_size}",
             f"{opt.name} (learning rate {opt.learning_rate:g})", config.loss]
    if config.validation_size:
        parts.append(f"{config.validation_size:,} held out for validation")
    elif config.validation_split:
        parts.append(f"validation split {config.validation_split:g}")
    if config.schedule["name"] != "constant":
        parts.append(f"{config.schedule['name']} schedule")
    # Settings at their defaults are left out (crop_padding's default, zero, is a word).
    augment = [f"{k}={format_value(v)}" for k, v in config.augment.items()
               if v and v != DEFAULT_AUGMENT.get(k)]
    if augment:
        parts.append("augment " + " ".join(augment))
    if config.label_smoothing:
        parts.append(f"label smoothing {config.label_smoothing:g}")
    return ", ".join(parts)
