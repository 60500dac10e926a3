"""Checks of the data handed to a compiled model, before any backend sees it: one contract for
Python's fit/evaluate/predict/train_step and the command line's loaders (cnnc/data).

Decisions (documented for users in the Model's docstrings and docs/training.md):
- Images must be floating point (float16/32/64; computed in the model's dtype). Integer and uint8
  images are an error rather than silently converted: whether to scale by 1/255 is the caller's
  choice, and a silent cast would train on 0..255 values. The exception: an input that only
  `rescaling` layers read (the model scales its own pixels) takes integer images as they are.
- Files are not arrays in the model's space: a uint8 array or image file holds 8-bit pixels,
  scaled by 1/255 (or handed as 0..255 to a model that rescales itself), and float images in a
  file must be in [0, 1] (`check_pixel_range`). Arrays from Python get no range check: they are
  already the model's input (an imported ONNX model takes normalized, negative values), as in
  Keras. Other integer dtypes in files follow the rule for arrays above.
- Labels for sparse_categorical_crossentropy are integer class ids (any integer dtype) in
  0..classes-1, of shape (N,) or (N, 1) for (N, classes) predictions. Other losses take targets
  of the prediction's shape, integer or floating point.
- Every array must be non-empty with finite values; batch sizes must agree.
- The message text is the same wherever the data come in; the subject (`input 'x'`, or the file
  on the command line) and the hints (Python's arguments, or files and flags) differ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from cnnc.errors import InputError
from cnnc.ir.graph import Graph, Node
from cnnc.ir.preprocessing import rescaled_inputs
from cnnc.ir.shapes import shape_str

# The layer a spec starts with to take 0-255 pixels (Keras' Rescaling(1/255)).
RESCALING_LAYER = "rescaling 0.00392156862745098"


# How a refusal of integer images says to fix it, in the words of where the data came from.
PYTHON_INTEGERS = "convert explicitly, e.g. x.astype('float32') / 255 for 8-bit images"
FILE_INTEGERS = ("save 8-bit pixels as uint8 (cnnc divides them by 255) or floats in [0, 1], or "
                 f"start the spec with `{RESCALING_LAYER}` to feed it 0-255 values")
FILE_RANGE = "save uint8 pixels (0-255), or divide by 255"


def refuse_integers(what: str, dtype: Any, hint: str = PYTHON_INTEGERS) -> InputError:
    """The one refusal of integer images a model does not rescale."""
    return InputError(f"{what} expects floating-point values, received {np.dtype(dtype)}",
                      hint=hint)


# Arrays up to this many elements are checked by their sum of squares (all_finite): OpenBLAS
# splits longer dot products over its threads, which would wake beside the device's.
DOT_CHECK_LIMIT = 8192
# Arrays up to this many elements (a classifier's outputs at batch 1) are checked value by
# value in Python: as fast as the sum of squares warm, and after a pause, when every code path
# runs cold, 14 us against 21 for ten values (the BLAS call's code is the colder), on the Intel
# Xeon where Model.predict after a 0.1 s pause took 150-170 us for inception_mini.
ITEM_CHECK_LIMIT = 32


def all_finite(a: np.ndarray) -> bool:
    """Whether a floating-point array holds no NaN or infinity."""
    # A sum of squares is finite only if every element is (a NaN or an infinity makes it NaN or
    # infinite, and squares never cancel): one BLAS call instead of a boolean array and its
    # reduction, about 3x faster on a batch-1 input or output, where Model.predict checks
    # both. It overflows for large finite values (|x| > 1e19 in float32), so a sum that is not
    # finite is settled element by element.
    if a.dtype.kind == "f" and a.size <= ITEM_CHECK_LIMIT:
        return all(map(math.isfinite, a.ravel().tolist()))
    if a.dtype.kind == "f" and a.size <= DOT_CHECK_LIMIT and math.isfinite(np.vdot(a, a)):
        return True
    return bool(np.isfinite(a).all())


def check_finite(a: np.ndarray, what: str) -> None:
    if a.dtype.kind == "f" and not all_finite(a):
        raise InputError(f"{what} contains {_first_bad(a)}")


def check_not_empty(a: np.ndarray, what: str) -> None:
    if a.shape[0] == 0:
        raise InputError(f"{what} is an empty batch (0 examples)")


def check_pixel_range(a: np.ndarray, what: str) -> None:
    """Float pixels read from a file: in [0, 1] (what a uint8 file becomes), so that a model
    trained on one file format predicts on another (a PNG) with the same scale."""
    if a.size and np.issubdtype(a.dtype, np.floating):
        low, high = float(a.min()), float(a.max())
        if low < 0.0 or high > 1.0:
            raise InputError(f"{what} ranges over [{low:g}, {high:g}]; float images must be "
                             "in [0, 1]", hint=FILE_RANGE)


def file_pixels(value: Any, what: str, raw: bool = False) -> np.ndarray:
    """Images read from a file (an .npz member, .npy, IDX), checked by the contract: uint8 as
    they are (8-bit pixels, scaled later); other integers only for a model that rescales its
    input (raw: cnnc.data.dataset.raw_pixels), then 0..255 pixel values as uint8; floats finite
    and in [0, 1]. Returns uint8 or float32, so that every file means the same to any spec."""
    a = _array(value, what)
    if a.dtype == np.uint8:
        return a
    if np.issubdtype(a.dtype, np.integer):
        if not raw:
            raise refuse_integers(what, a.dtype, FILE_INTEGERS)
        if a.size and (int(a.min()) < 0 or int(a.max()) > 255):
            raise InputError(f"{what} ranges over [{int(a.min())}, {int(a.max())}]; integer "
                             "pixels must be in [0, 255]")
        return a.astype(np.uint8)
    if not np.issubdtype(a.dtype, np.floating):
        raise InputError(f"{what} expects floating-point values, received {a.dtype}")
    a = a.astype(np.float32, copy=False)
    check_finite(a, what)
    check_pixel_range(a, what)
    return a


def shape_error(what: str, want: tuple, got: tuple, hint: str | None = None) -> InputError:
    """want: one example's shape (H, W, C)."""
    expect = "(" + ", ".join(["N", *(str(d) for d in want)]) + ")"
    return InputError(f"{what} expects shape {expect}, received {shape_str(got)}", hint=hint)


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
        raise refuse_integers(what, a.dtype)
    want = tuple(node.shape[1:])
    if a.shape == want:
        raise InputError(f"{what} expects a batch of shape {_expected(node)}, received one "
                         f"example of shape {shape_str(a.shape)}", hint="add a batch axis: x[None]")
    if a.ndim != len(want) + 1 or a.shape[1:] != want:
        raise shape_error(what, want, a.shape)
    check_not_empty(a, what)
    check_finite(a, what)
    return a


class FeedChecks:
    """input_feeds for one graph, with what it reads of the graph (the input nodes, those that
    rescale themselves, each one's example shape) worked out once: a model checks every batch
    it is handed, and at batch 1 these look-ups cost as much as the checks (cnnc/model.py keeps
    one per graph)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.inputs = [n for n in graph.nodes if n.op == "input"]
        self.raw = rescaled_inputs(graph)
        # The one input whose float batches need no conversion (any float dtype: the backend
        # computes in the model's dtype); None where check_images must look at each batch.
        only = self.inputs[0] if len(self.inputs) == 1 else None
        self.plain = (only.name, tuple(only.shape[1:])) if (
            only is not None and only.attrs["dtype"] != "int32") else None

    def __call__(self, x: Any) -> dict[str, np.ndarray]:
        """Checked arrays for every input node: `x` is an array (one input) or a dict by name."""
        plain = self.plain
        # What check_images accepts unchanged, taken with the same checks (a float ndarray of
        # shape (N>=1, *example), finite); anything else goes the general way, which also
        # words the refusals.
        if plain is not None and type(x) is np.ndarray and x.dtype.kind == "f" \
                and x.shape[1:] == plain[1] and x.ndim == len(plain[1]) + 1 \
                and x.shape[0] > 0 and all_finite(x):
            return {plain[0]: x}
        return self._general(x)

    def _general(self, x: Any) -> dict[str, np.ndarray]:
        inputs, raw = self.inputs, self.raw
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


def input_feeds(graph: Graph, x: Any) -> dict[str, np.ndarray]:
    """Checked arrays for every input node: `x` is an array (one input) or a dict by name."""
    return FeedChecks(graph)(x)


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
