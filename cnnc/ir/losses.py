"""Loss ops: a loss of (prediction, target) and its gradient with respect to the prediction.

`passes/loss.py` appends one to a forward graph; the semantics in each `doc` are the contract
both backends meet.
"""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.args import Arg, Attrs
from cnnc.ir.ops import OpDef, Shape, element_terms, last_axis_terms, register
from cnnc.ir.shapes import shape_str

# Keras' backend epsilon: cross_entropy clips probabilities to [CLIP_EPSILON, 1 - CLIP_EPSILON].
CLIP_EPSILON = 1e-7

# ---------------------------------------------------------------- losses


def _scalar(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    pred, target = shapes
    _check_target(attrs, pred, target)
    return ()


def _check_target(attrs: Attrs, pred: Shape, target: Shape) -> None:
    want = pred[:-1] if attrs.get("sparse") else pred
    if tuple(target) != tuple(want):
        raise ShapeError(
            f"targets of shape {shape_str(target)} do not match predictions of shape "
            f"{shape_str(pred)}"
        )


def _grad_like_pred(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    pred, target = shapes
    _check_target(attrs, pred, target)
    return pred


SPARSE = Arg("sparse", A.boolean, False)
# PyTorch's and Keras' label smoothing: the target row t becomes (1 - e) * t + e / classes.
LABEL_SMOOTHING = Arg("label_smoothing", A.unit_interval, 0.0)

register(OpDef(
    name="softmax_cross_entropy", group="loss", args=(SPARSE, LABEL_SMOOTHING), arity=(2, 2), infer=_scalar,
    reduction=element_terms,
    doc="Mean over the batch of -sum(target * log_softmax(logits)); sparse targets are int32 "
        "class indices. Inputs (logits, target). Used when the network ends in softmax. "
        "For predictions of rank > 2, N (the 'batch') counts every row: all axes but the last. "
        "label_smoothing e scores the target (1 - e) * target + e / classes.",
))
register(OpDef(
    name="softmax_cross_entropy_grad", group="loss", args=(SPARSE, LABEL_SMOOTHING), arity=(2, 2),
    infer=_grad_like_pred,
    reduction=last_axis_terms,
    doc="(softmax(logits) - target) / N, N as in softmax_cross_entropy. Inputs (logits, "
        "target).",
))
register(OpDef(
    name="cross_entropy", group="loss", args=(SPARSE, LABEL_SMOOTHING), arity=(2, 2), infer=_scalar,
    reduction=element_terms,
    doc="Keras' categorical cross-entropy on probabilities: p = pred / sum(pred), clipped to "
        f"[{CLIP_EPSILON:g}, 1 - {CLIP_EPSILON:g}]; mean over the batch (rows, as in "
        "softmax_cross_entropy) of -sum(target * log p), the target smoothed as in "
        "softmax_cross_entropy. Inputs (pred, target).",
))
register(OpDef(
    name="cross_entropy_grad", group="loss", args=(SPARSE, LABEL_SMOOTHING), arity=(2, 2), infer=_grad_like_pred,
    reduction=last_axis_terms,
    doc="Gradient of cross_entropy with respect to pred (zero where the clip is active).",
))
register(OpDef(
    name="mean_squared_error", group="loss", args=(), arity=(2, 2), infer=_scalar,
    reduction=element_terms,
    doc="Mean over every element of (pred - target)^2. Inputs (pred, target).",
))
register(OpDef(
    name="mean_squared_error_grad", group="loss", args=(), arity=(2, 2), infer=_grad_like_pred,
    doc="2 * (pred - target) / pred.size. Inputs (pred, target).",
))
