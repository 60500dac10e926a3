"""ONNX front end: an .onnx file -> the same checked layer graph the other front ends make.

    read_model (onnx_file.py)    bytes -> ModelProto, every size and path checked
    read_graph (onnx_graph.py)   -> plain nodes in dependency order, initialisers as arrays
    lower_onnx (here)            -> each node folded (onnx_fold.py) or lowered by its rule
                                    (onnx_ops.py) into layer declarations, then `lower`

Nodes cnnc cannot lower are all collected and reported in one error, each with its name, op
type and the attribute or value at fault. The graph carries the model's weights (converted once
to NHWC/HWIO) as `given_weights`, so a compiled model starts from them, and training goes on
from there like any other cnnc network.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cnnc.errors import CnncError, InternalError, SpecError
from cnnc.frontend import onnx_lrn  # noqa: F401  (registers PyTorch's LRN chain into PATTERNS)
from cnnc.frontend.lower import LayerDecl, assign_names, lower
from cnnc.frontend.onnx_file import read_model
from cnnc.frontend.onnx_fold import FOLDERS, FoldBudget, FoldError, can_fold, fold
from cnnc.frontend.onnx_graph import (
    DEFAULT_DOMAINS,
    OnnxGraph,
    OnnxNode,
    layer_args_metadata,
    read_graph,
)
from cnnc.frontend.onnx_lowering import NCHW, Context, Layer, Tensor, Unsupported, clean_name
from cnnc.frontend.onnx_norm_ops import PATTERNS
from cnnc.frontend.onnx_ops import RULES
from cnnc.frontend.onnx_patterns import rewrite_activation_patterns
from cnnc.frontend.onnx_windows import WindowError
from cnnc.ir.graph import Graph
from cnnc.ir.ops import lookup_layer

# Metadata keys cnnc's export writes (cnnc/export/onnx_export.py): choices ONNX cannot state.
LAYER_ARGS_KEY = "cnnc.layer_args"
TRAIN_KEY = "cnnc.train"
PRODUCER = "cnnc"
LISTED = 50  # unsupported nodes listed in one message


def load_onnx(path: str | os.PathLike) -> Graph:
    """The layer graph of an .onnx file, with its weights; CnncError naming every problem."""
    label = os.fspath(path)
    try:
        model = read_model(label)
        graph = read_graph(model, label)
        default = Path(label).stem
        name = graph.name if model.producer_name == PRODUCER and graph.name else default
        return lower_onnx(graph, name=name, shapes=lambda: _inferred_shapes(model))
    except CnncError as err:
        raise err.with_context(file=label) from None


def lower_onnx(g: OnnxGraph, *, name: str,
               shapes: Callable[[], dict[str, tuple]] | None = None,
               boundary: dict[str, tuple[str, Any]] | None = None) -> Graph:
    """Lower a read graph; `shapes` gives ONNX's inferred value shapes, used only after a node
    fails, so that the nodes after it are still checked (and reported) too. `boundary`, when
    given, receives each ONNX graph input's and output's cnnc layer name and perm (ONNX value =
    np.transpose(cnnc value, perm)), for a runner that feeds and reads ONNX's layouts; an output
    that is an NCHW tensor flattened is then taken too, its perm being the cnnc column of each
    ONNX column (an array), where load_onnx refuses it (cnnc's flatten order differs)."""
    g = rewrite_activation_patterns(g)  # before any rule: exporters' SiLU, GELU, ... subgraphs
    cx = Context(g, layer_args_metadata(g, LAYER_ARGS_KEY))
    problems: list[str] = []
    poisoned: set[str] = set()
    inferred: dict[str, tuple] | None = None
    budget = FoldBudget()
    _inputs(cx, problems, poisoned)
    for node in g.nodes:
        if node.index in cx.absorbed:  # lowered with the first node of its pattern
            continue
        if any(v in poisoned for v in node.inputs if v):
            # Not lowered without its inputs: reported only if its op is unknown anyway.
            if node.op not in RULES and node.op not in FOLDERS:
                problems.append(_problem(node, "this operator is not supported"))
            poisoned.update(v for v in node.outputs if v)
            continue
        try:
            _lower_node(cx, node, budget)
        except (Unsupported, FoldError, WindowError) as err:
            problems.append(_problem(node, str(err)))
            if inferred is None:
                inferred = shapes() if shapes is not None else {}
            _stand_in(cx, node, inferred, poisoned)
    outputs = _outputs(cx, problems, poisoned, flat_ok=boundary is not None)
    if problems:
        shown = problems[:LISTED]
        if len(problems) > LISTED:
            shown.append(f"  ... and {len(problems) - LISTED} more")
        count = f"{len(problems)} node{'s' if len(problems) != 1 else ''}"
        raise SpecError(f"the model cannot be imported: {count} cannot be lowered exactly to "
                        "cnnc layers:\n" + "\n".join(shown), file=g.file)
    graph = _build(cx, name, outputs)
    if boundary is not None:
        for v in (*(i.name for i in g.inputs), *g.outputs):
            t = cx.tensors[v]
            boundary[v] = (t.layer.decl.name, t.perm if t.order is None else t.order)
    return graph


def _inferred_shapes(model: Any) -> dict[str, tuple]:
    """Every value's shape as ONNX's shape inference sees it ({} when it cannot say)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - only a help for reporting; the model is refused anyway
        return {}
    out = {}
    for vi in inferred.graph.value_info:
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            out[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                 for d in tt.shape.dim)
    return out


def _stand_in(cx: Context, node: OnnxNode, inferred: dict[str, tuple],
              poisoned: set[str]) -> None:
    """After a node fails, stand-in values of its outputs' shapes (NCHW, or (batch, n)) let
    the nodes after it be checked too; outputs of unknown shape poison their readers. An
    output of its first input's shape (an elementwise op, a normalisation) keeps that input's
    layout, so that a layout-sensitive node after it is judged as it would be."""
    first = cx.tensors.get(node.inputs[0]) if node.inputs and node.inputs[0] else None
    for v in node.outputs:
        if not v:
            continue
        dims = inferred.get(v)
        if first is not None and first.order is None and dims is not None and (
                tuple(dims[1:]) == tuple(first.onnx_shape[1:])):
            cx.tensors[v] = Tensor(cx.stand_in(first.shape), first.perm)
            continue
        if dims is None or len(dims) not in (2, 4) or not all(d for d in dims[1:]):
            poisoned.add(v)
            continue
        if len(dims) == 4:
            shape, perm = (None, dims[2], dims[3], dims[1]), NCHW
        else:
            shape, perm = (None, dims[1]), (0, 1)
        cx.tensors[v] = Tensor(cx.stand_in(shape), perm)


def _problem(node: OnnxNode, reason: str) -> str:
    return f"  node {node.label} ({node.op}): {reason}"


def _lower_node(cx: Context, node: OnnxNode, budget: FoldBudget | None = None) -> None:
    if node.domain not in DEFAULT_DOMAINS:
        raise Unsupported(f"operator domain '{node.domain}' is not supported")
    if can_fold(node, cx.constants):
        for v, value in zip(node.outputs, fold(node, [cx.constants.get(v) if v else None
                                                      for v in node.inputs], cx.opset,
                                     budget)):
            if v:
                cx.constants[v] = value
        return
    if any(match(cx, node) for match in PATTERNS.get(node.op, ())):
        return
    rule = RULES.get(node.op)
    if rule is None:
        raise Unsupported("this operator is not supported")
    extra = sorted(set(node.attrs) - set(rule.attrs))
    if extra:
        listed = ", ".join(f"{a}={node.attrs[a]!r}" for a in extra)
        raise Unsupported(f"attribute {listed} is not supported")
    rule.lower(cx, node)
    for i, v in enumerate(node.outputs):
        if v and v not in cx.tensors and v not in cx.constants and v not in cx.flat and (
                v in cx.readers or v in cx.outputs):
            raise Unsupported(f"output {i} ('{v}') is used, and cnnc does not compute it")


def _inputs(cx: Context, problems: list[str], poisoned: set[str]) -> None:
    """An input layer per ONNX graph input: 4-D NCHW (or NHWC where only transposes to NCHW
    read it, as in tf2onnx's models) becomes cnnc's NHWC; 2-D stays."""
    from onnx import TensorProto

    for inp in cx.graph.inputs:
        reason = None
        dims = inp.dims
        if inp.elem_type != TensorProto.FLOAT:
            reason = "cnnc's inputs are float32"
        elif dims is None or len(dims) not in (2, 4):
            reason = f"shape {dims}: cnnc reads (batch, features) or 4-D image inputs"
        elif any(not isinstance(d, int) or d <= 0 for d in dims[1:]):
            reason = f"shape {dims}: every dimension but the batch must be a fixed size"
        if reason is not None:
            problems.append(f"  input '{inp.name}': {reason}")
            poisoned.add(inp.name)
            continue
        if isinstance(dims[0], int):
            cx.batch = dims[0]  # a model exported for one batch size: its reshapes name it
        readers = cx.readers.get(inp.name, [])
        nhwc = len(dims) == 4 and readers and all(
            r.op == "Transpose" and r.attrs.get("perm") == NCHW for r in readers)
        if len(dims) == 4 and not nhwc:
            shape, perm = (dims[2], dims[3], dims[1]), NCHW
        else:
            shape, perm = tuple(dims[1:]), tuple(range(len(dims)))
        cx.infer("input", {"shape": shape}, [])
        decl = LayerDecl(op="input", keywords={"shape": shape}, path=f"input '{inp.name}'")
        layer = Layer(decl, None, (None, *shape), hint=clean_name(inp.name, ""), value=inp.name)
        cx.layers.append(layer)
        cx.tensors[inp.name] = Tensor(layer, perm)


def _outputs(cx: Context, problems: list[str], poisoned: set[str],
             flat_ok: bool = False) -> list[Layer]:
    out: list[Layer] = []
    for v in cx.graph.outputs:
        if v in poisoned:
            continue
        t = cx.tensors.get(v)
        if t is None:
            problems.append(f"  output '{v}': it is a constant; cnnc computes its outputs")
        elif t.order is not None and not flat_ok:
            problems.append(f"  output '{v}': a flattened NCHW tensor, whose order cnnc's "
                            "(NHWC) flatten does not give")
        elif t.layer.op == "input":
            problems.append(f"  output '{v}': it is an input; cnnc outputs computed values")
        elif t.layer in out:
            problems.append(f"  output '{v}': the same values as another output")
        else:
            out.append(t.layer)
    return out


def _build(cx: Context, name: str, outputs: list[Layer]) -> Graph:
    """Names, then the shared lowering, then the weights under the final parameter names."""
    layers = cx.layers
    taken: set[str] = set()
    given: list[str | None] = []
    for layer in layers:
        hint = layer.hint
        if hint is not None:
            base, k = hint, 0
            while hint in taken:
                k += 1
                hint = f"{base}_{k}"
            taken.add(hint)
        given.append(hint)
    ops = [lookup_layer(layer.op) for layer in layers]
    for layer, final in zip(layers, assign_names(ops, given)):
        layer.decl.name = final
    train = _train(cx)
    graph = lower(_network_name(name), [layer.decl for layer in layers],
                  outputs=[layer.decl for layer in outputs], train=train, file=cx.graph.file)
    weights = {f"{layer.decl.name}/{suffix}": np.ascontiguousarray(value, dtype=np.float32)
               for layer in layers for suffix, value in layer.params.items()}
    expected = {s.name: s.shape for s in graph.weights}
    have = {k: v.shape for k, v in weights.items()}
    if have != expected:
        raise InternalError(f"imported weights {sorted(have.items())} do not match the "
                            f"graph's parameters {sorted(expected.items())}")
    return graph.replace(given_weights=weights)


def _train(cx: Context) -> Any:
    text = cx.graph.metadata.get(TRAIN_KEY)
    if not text:
        return None
    import json

    from cnnc.ir.train_config import parse_train_config

    try:
        data = json.loads(text)
    except ValueError:
        raise SpecError(f"metadata '{TRAIN_KEY}' is not valid JSON") from None
    return parse_train_config(data, path=f"metadata {TRAIN_KEY}")


def _network_name(name: str) -> str:
    text = re.sub(r"[^A-Za-z0-9_.\-]", "_", name.strip()) or "network"
    return text if re.match(r"[A-Za-z_]", text) else "_" + text


__all__ = ["LAYER_ARGS_KEY", "PRODUCER", "TRAIN_KEY", "load_onnx", "lower_onnx"]
