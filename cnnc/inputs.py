"""Checks of the data handed to a compiled model, before any backend sees it.

Decisions (documented for users in the Model's docstrings):
- Images must be floating point (float16/32/64; computed in the model's dtype). Integer and uint8
  images are an error rather than silently converted: whether to scale by 1/255 is the caller's
  choice, and a silent cast would train on 0..255 values. The exception: an input that only
  `rescaling` layers read (the model scales its own pixels) takes integer images as they are.
- Labels for sparse_categorical_crossentropy are integer class ids (any integer dtype) in
  0..classes-1, of shape (N,) or (N, 1) for (N, classes) predictions. Other losses take targets
  of the prediction's shape, integer or floating point.
- Every array must be non-empty with finite values; batch sizes must agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cnnc.errors import InputError
from cnnc.ir.graph import Graph, Node
from cnnc.ir.preprocessing import rescaled_inputs
from cnnc.ir.shapes import shape_str


def _array(value: Any, what: str) -> np.ndarray:
    try:
        a = np.asarray(value)
    except Exception as err:  # noqa: BLE001 (ragged lists, odd objects: all the caller's data)
        raise InputError(f"{what} is not an array: {err}") from None
    if a.dtype == object or a.dtype.kind in "SUV":
        raise InputError(f"{what} must be a numeric array, received dtype {a.dtype}")
    return a


def _first_bad(a: np.ndarray) -> str:
    bad = ~np.isfinite(a)
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return f"{int(bad.sum())} NaN or infinite value(s), the first at index {index}"


def _expected(node: Node, n: str = "N") -> str:
    return "(" + ", ".join([n, *(str(d) for d in node.shape[1:])]) + ")"


def check_images(value: Any, node: Node, rescaled: bool = False) -> np.ndarray:
    """One input's batch: floating point (integers for an int32 input), shape (N, *node shape),
    N >= 1, finite. rescaled: the model's own rescaling layers read this input, so integer
    pixels (uint8 images) are taken too, as floats of the same values."""
    what = f"input '{node.name}'"
    a = _array(value, what)
    if rescaled and np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32 if a.dtype.itemsize <= 2 else np.float64)
    if node.attrs["dtype"] == "int32":
        if not np.issubdtype(a.dtype, np.integer):
            raise InputError(f"{what} expects integers, received {a.dtype}")
    elif not np.issubdtype(a.dtype, np.floating):
        raise InputError(
            f"{what} expects floating-point values, received {a.dtype}",
            hint="convert explicitly, e.g. x.astype('float32') / 255 for 8-bit images")
    want = tuple(node.shape[1:])
    if a.shape == want:
        raise InputError(f"{what} expects a batch of shape {_expected(node)}, received one "
                         f"example of shape {shape_str(a.shape)}", hint="add a batch axis: x[None]")
    if a.ndim != len(want) + 1 or a.shape[1:] != want:
        raise InputError(f"{what} expects shape {_expected(node)}, received "
                         f"{shape_str(a.shape)}")
    if a.shape[0] == 0:
        raise InputError(f"{what} is an empty batch (0 examples)")
    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
        raise InputError(f"{what} contains {_first_bad(a)}")
    return a


def input_feeds(graph: Graph, x: Any) -> dict[str, np.ndarray]:
    """Checked arrays for every input node: `x` is an array (one input) or a dict by name."""
    inputs = [n for n in graph.nodes if n.op == "input"]
    raw = rescaled_inputs(graph)
    if isinstance(x, Mapping):
        names = [n.name for n in inputs]
        problems = []
        missing = [n for n in names if n not in x]
        if missing:
            problems.append("missing " + ", ".join(missing))
        unknown = [str(k) for k in x if k not in names]
        if unknown:
            problems.append("unknown " + ", ".join(unknown))
        if problems:
            raise InputError(f"inputs are {', '.join(sorted(names))}; " + "; ".join(problems))
        feeds = {n.name: check_images(x[n.name], n, n.name in raw) for n in inputs}
    elif len(inputs) == 1:
        feeds = {inputs[0].name: check_images(x, inputs[0], inputs[0].name in raw)}
    else:
        raise InputError(f"the network has {len(inputs)} inputs; pass a dict "
                         f"{{{', '.join(repr(n.name) for n in inputs)}: array}}")
    sizes = {len(a) for a in feeds.values()}
    if len(sizes) > 1:
        raise InputError("the inputs have different numbers of examples: " + ", ".join(
            f"{k}: {len(a)}" for k, a in feeds.items()))
    return feeds


def check_targets(value: Any, target: Node, prediction_shape: tuple, count: int) -> np.ndarray:
    """Targets for the training graph's target input (int32 class ids or float targets)."""
    a = _array(value, "the targets")
    want = tuple(target.shape[1:])
    sparse = target.attrs["dtype"] == "int32"
    if sparse:
        if not np.issubdtype(a.dtype, np.integer):
            raise InputError(f"labels must be integer class ids, received {a.dtype}",
                             hint="convert them with y.astype('int32')" if
                             np.issubdtype(a.dtype, np.floating) else None)
        if a.ndim == len(want) + 2 and a.shape[-1] == 1:
            a = a[..., 0]  # Keras accepts (N, 1) labels too
    elif not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise InputError(f"targets must be numbers, received {a.dtype}")
    if a.ndim != len(want) + 1 or a.shape[1:] != want:
        expect = "(" + ", ".join(["N", *map(str, want)]) + ")"
        kind = "labels" if sparse else "targets"
        raise InputError(f"{kind} must have shape {expect} for predictions of shape "
                         f"{shape_str(prediction_shape)}, received {shape_str(a.shape)}")
    if len(a) != count:
        raise InputError(f"the batch has {count} inputs but {len(a)} targets")
    if sparse:
        classes = prediction_shape[-1]
        bad = (a < 0) | (a >= classes)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputError(f"label {a[index]} at index {index} is not a class id in "
                             f"0..{classes - 1}")
        return a.astype(np.int32)
    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
        raise InputError(f"the targets contain {_first_bad(a)}")
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)


def single_input(graph: Graph, x: Any, what: str) -> np.ndarray:
    """The checked images of a one-input network, for fit and evaluate (the same checks and
    messages as predict and train_step: input_feeds); `what` names the caller in the error for
    a network of several inputs."""
    inputs = [n for n in graph.nodes if n.op == "input"]
    if len(inputs) != 1:
        raise InputError(f"{what} takes arrays for a network of one input; this one has "
                         f"{len(inputs)} ({', '.join(n.name for n in inputs)})",
                         hint="train it step by step with train_step(dict of arrays, y)")
    if isinstance(x, Mapping):
        x = input_feeds(graph, x)[inputs[0].name]
    return check_images(x, inputs[0], inputs[0].name in rescaled_inputs(graph))
