"""Ops of the training graph: gradients, batch-norm statistics, dropout masks, losses, updates.

`passes/autodiff.py` builds the training graph from a forward graph with these ops, and both
backends run that one graph. The semantics stated in each `doc` are the contract the NumPy
implementation and the OpenCL kernels both meet.

Step counter: ops with ``uses_step`` read the run's step (0 for the first training step).
Optimizers count iterations from t = step + 1, as Keras does.
"""

from __future__ import annotations

import math
from array import array

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.args import Arg, Attrs
from cnnc.ir.layers import BN_NORMALISE_ARGS, CONV_GEOMETRY_ARGS, POOL_ARGS, shape_str
from cnnc.ir.ops import OpDef, Shape, register

# Keras' backend epsilon: cross_entropy clips probabilities to [CLIP_EPSILON, 1 - CLIP_EPSILON].
CLIP_EPSILON = 1e-7

INPUT_SHAPE = Arg("input_shape", A.shape, doc="the forward input's shape without batch")


def _like_input(i: int):
    def infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
        return shapes[i]
    return infer


def _from_input_shape(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return (shapes[0][0], *attrs["input_shape"])


def _channels_vector(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return (shapes[0][-1],)


# ---------------------------------------------------------------- activations


register(OpDef(
    name="activation_grad", group="train",
    args=(Arg("activation", A.choice(*A.ACTIVATIONS)),),
    arity=(2, 2), infer=_like_input(0),
    doc="dx from the activation's output y and dy: relu 1[y>0]; leaky_relu 1 or 0.2; "
        "elu 1 or y+1; sigmoid y(1-y); tanh 1-y^2; softmax y*(dy - sum(dy*y, last axis)); "
        "linear dy. Inputs (y, dy).",
))


# ---------------------------------------------------------------- conv2d


def _conv_kernel_shape(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    kh, kw = attrs["kernel_size"]
    return (kh, kw, attrs["input_shape"][-1] // attrs["groups"], attrs["filters"])


register(OpDef(
    name="conv2d_grad_input", group="train", args=(*CONV_GEOMETRY_ARGS, INPUT_SHAPE),
    arity=(2, 2), infer=_from_input_shape,
    doc="dx of conv2d (a transposed convolution). Inputs (dy, kernel); dy is the gradient of "
        "the convolution before bias and activation.",
))

register(OpDef(
    name="conv2d_grad_kernel", group="train", args=(*CONV_GEOMETRY_ARGS, INPUT_SHAPE),
    arity=(2, 2), infer=_conv_kernel_shape,
    doc="d kernel of conv2d, summed over the batch. Inputs (x, dy).",
))

register(OpDef(
    name="bias_grad", group="train", args=(), arity=(1, 1), infer=_channels_vector,
    doc="Sum of dy over every axis but the last. Input (dy,).",
))


# ---------------------------------------------------------------- dense


def _dense_grad_input_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    dy, kernel = shapes
    return (*dy[:-1], kernel[0])


def _dense_grad_kernel_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    x, dy = shapes
    return (x[-1], dy[-1])


register(OpDef(
    name="dense_grad_input", group="train", args=(), arity=(2, 2),
    infer=_dense_grad_input_infer,
    doc="dy @ kernel^T. Inputs (dy, kernel).",
))

register(OpDef(
    name="dense_grad_kernel", group="train", args=(), arity=(2, 2),
    infer=_dense_grad_kernel_infer,
    doc="x^T @ dy with every leading axis of x and dy flattened into rows. Inputs (x, dy).",
))


# ---------------------------------------------------------------- pooling, reshapes


register(OpDef(
    name="maxpool2d_grad", group="train", args=POOL_ARGS, arity=(2, 2), infer=_like_input(0),
    doc="Routes each dy to the first maximum of its window in row-major order (padding never "
        "wins); overlapping windows accumulate. Inputs (x, dy).",
))

register(OpDef(
    name="avgpool2d_grad", group="train", args=(*POOL_ARGS, INPUT_SHAPE), arity=(1, 1),
    infer=_from_input_shape,
    doc="Spreads dy / count evenly over each window's real cells. Input (dy,).",
))

register(OpDef(
    name="global_avgpool2d_grad", group="train", args=(INPUT_SHAPE,), arity=(1, 1),
    infer=_from_input_shape,
    doc="dy / (H*W) broadcast over height and width. Input (dy,) of shape (N, C) or (N,1,1,C).",
))

register(OpDef(
    name="reshape", group="train", args=(Arg("shape", A.shape),), arity=(1, 1),
    infer=lambda attrs, shapes: (shapes[0][0], *attrs["shape"]),
    doc="Same data, new non-batch shape (row-major). Input (x,).",
))


def _slice_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    (x,) = shapes
    ax = attrs["axis"] % len(x)
    if not 0 <= attrs["start"] < attrs["stop"] <= x[ax]:
        raise ShapeError(f"slice {attrs['start']}:{attrs['stop']} outside axis of {x[ax]}")
    return tuple(attrs["stop"] - attrs["start"] if i == ax else d for i, d in enumerate(x))


register(OpDef(
    name="slice", group="train",
    args=(Arg("axis", A.integer), Arg("start", A.non_negative_int), Arg("stop", A.positive_int)),
    arity=(1, 1), infer=_slice_infer,
    doc="x[..., start:stop, ...] along `axis` (the gradient of concatenate). Input (x,).",
))


# ---------------------------------------------------------------- dropout


DROPOUT_ARGS = (Arg("rate", A.unit_interval), Arg("seed", A.integer))

register(OpDef(
    name="dropout_train", group="train", args=DROPOUT_ARGS, arity=(1, 1),
    infer=_like_input(0), uses_step=True,
    doc="x * keep / (1 - rate), keep = cnnc.random.uniform(seed, step, flat index) >= rate.",
))

register(OpDef(
    name="dropout_grad", group="train", args=DROPOUT_ARGS, arity=(1, 1),
    infer=_like_input(0), uses_step=True,
    doc="dy * keep / (1 - rate) with the same mask as dropout_train. Input (dy,).",
))


# ---------------------------------------------------------------- batch norm


def _bn_stats_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return (2, shapes[0][-1])


register(OpDef(
    name="batchnorm_stats", group="train", args=(), arity=(1, 1), infer=_bn_stats_infer,
    doc="Row 0: mean of x over every axis but the last; row 1: the biased variance.",
))

register(OpDef(
    name="batchnorm_train", group="train", args=BN_NORMALISE_ARGS, arity=(2, 4),
    infer=_like_input(0),
    doc="(x - mean) / sqrt(var + epsilon) * gamma + beta with the batch's stats. Inputs "
        "(x, stats[, gamma][, beta]): gamma present iff scale, beta iff center.",
))

register(OpDef(
    name="batchnorm_grad_input", group="train", args=BN_NORMALISE_ARGS, arity=(3, 4),
    infer=_like_input(0),
    doc="dx of batchnorm_train through the batch statistics: with xhat the normalised x, "
        "g = dy*gamma, dx = (g - mean(g) - xhat*mean(g*xhat)) / sqrt(var + epsilon). Inputs "
        "(x, stats, dy[, gamma]).",
))

register(OpDef(
    name="batchnorm_grad_gamma", group="train", args=BN_NORMALISE_ARGS, arity=(3, 3),
    infer=_channels_vector,
    doc="sum(dy * xhat) over every axis but the last. Inputs (x, stats, dy).",
))


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

register(OpDef(
    name="softmax_cross_entropy", group="loss", args=(SPARSE,), arity=(2, 2), infer=_scalar,
    doc="Mean over the batch of -sum(target * log_softmax(logits)); sparse targets are int32 "
        "class indices. Inputs (logits, target). Used when the network ends in softmax. "
        "For predictions of rank > 2, N (the 'batch') counts every row: all axes but the last.",
))
register(OpDef(
    name="softmax_cross_entropy_grad", group="loss", args=(SPARSE,), arity=(2, 2),
    infer=_grad_like_pred,
    doc="(softmax(logits) - target) / N, N as in softmax_cross_entropy. Inputs (logits, "
        "target).",
))
register(OpDef(
    name="cross_entropy", group="loss", args=(SPARSE,), arity=(2, 2), infer=_scalar,
    doc="Keras' categorical cross-entropy on probabilities: p = pred / sum(pred), clipped to "
        f"[{CLIP_EPSILON:g}, 1 - {CLIP_EPSILON:g}]; mean over the batch (rows, as in "
        "softmax_cross_entropy) of -sum(target * log p). Inputs (pred, target).",
))
register(OpDef(
    name="cross_entropy_grad", group="loss", args=(SPARSE,), arity=(2, 2), infer=_grad_like_pred,
    doc="Gradient of cross_entropy with respect to pred (zero where the clip is active).",
))
register(OpDef(
    name="mean_squared_error", group="loss", args=(), arity=(2, 2), infer=_scalar,
    doc="Mean over every element of (pred - target)^2. Inputs (pred, target).",
))
register(OpDef(
    name="mean_squared_error_grad", group="loss", args=(), arity=(2, 2), infer=_grad_like_pred,
    doc="2 * (pred - target) / pred.size. Inputs (pred, target).",
))


# ---------------------------------------------------------------- updates


def _no_value(attrs: Attrs, shapes: tuple[Shape, ...]) -> None:
    first = shapes[0]
    for s in shapes[1:]:
        if s != first and len(s) == len(first):
            raise ShapeError(f"update operands {shape_str(first)} and {shape_str(s)} differ")


register(OpDef(
    name="moving_average_update", group="update",
    args=(Arg("index", A.non_negative_int), Arg("momentum", A.unit_interval)),
    arity=(2, 2), infer=lambda attrs, shapes: None, mutates=(0,),
    doc="moving = moving * momentum + stats[index] * (1 - momentum). Inputs (moving, stats).",
))


def _sgd_scalars(attrs: Attrs, step: int, lr: float) -> tuple[float, ...]:
    return (lr, attrs["momentum"])


def _adam_scalars(attrs: Attrs, step: int, lr: float) -> tuple[float, ...]:
    t = step + 1
    b1, b2 = attrs["beta_1"], attrs["beta_2"]
    alpha = lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
    return (alpha, 1.0 - b1, 1.0 - b2, attrs["epsilon"])


class _NadamMomentumCache:
    """Keras' Nadam keeps u_product = prod_{i<=t} u_i; a table of it grows as steps advance.

    The table is bounded: past TABLE_STEPS steps (more than any run here takes), the factors
    are exactly beta_1 (0.96**i is far below float64's resolution), so the product is the last
    entry times beta_1**(t - TABLE_STEPS), computed at once. A checkpoint claiming step 2**40
    then costs 8 MB and a fraction of a second, not a table that grows until memory runs out.
    """

    TABLE_STEPS = 2**20

    def __init__(self) -> None:
        self._tables: dict[float, array] = {}
        self._fixed: set[float] = set()  # beta_1 values whose product no longer changes

    def product(self, beta_1: float, t: int) -> float:
        table = self._tables.setdefault(beta_1, array("d", [1.0]))
        last = len(table) - 1
        if t > last and last < self.TABLE_STEPS and beta_1 not in self._fixed:
            for i in range(last + 1, min(t, self.TABLE_STEPS) + 1):
                value = table[-1] * beta_1 * (1.0 - 0.5 * 0.96 ** i)  # Keras' order
                table.append(value)
                if value == table[-2] and 1.0 - 0.5 * 0.96 ** i == 1.0:
                    # Every later factor is exactly beta_1 and leaves this value as it is
                    # (beta_1 of 1, or the smallest subnormal): the product is fixed.
                    self._fixed.add(beta_1)
                    break
            last = len(table) - 1
        if t <= last:
            return table[t]
        if beta_1 in self._fixed:
            return table[last]
        return table[last] * beta_1 ** (t - last)


_NADAM_CACHE = _NadamMomentumCache()


def _nadam_scalars(attrs: Attrs, step: int, lr: float) -> tuple[float, ...]:
    t = step + 1
    b1, b2 = attrs["beta_1"], attrs["beta_2"]
    u_t = b1 * (1.0 - 0.5 * 0.96 ** t)
    u_next = b1 * (1.0 - 0.5 * 0.96 ** (t + 1))
    prod_t = _NADAM_CACHE.product(b1, t)
    prod_next = prod_t * u_next
    c_m = lr * u_next / (1.0 - prod_next)
    c_g = lr * (1.0 - u_t) / (1.0 - prod_t)
    c_v = 1.0 / (1.0 - b2 ** t)
    return (c_m, c_g, c_v, 1.0 - b1, 1.0 - b2, attrs["epsilon"])


LR = Arg("learning_rate", A.positive_real)
ADAM_ARGS = (LR, Arg("beta_1", A.unit_interval, 0.9), Arg("beta_2", A.unit_interval, 0.999),
             Arg("epsilon", A.positive_real, 1e-7))  # Adam's and Nadam's, Keras' defaults

register(OpDef(
    name="sgd_update", group="update",
    args=(LR, Arg("momentum", A.unit_interval, 0.0), Arg("nesterov", A.boolean, False)),
    arity=(2, 3), infer=_no_value, mutates=(0, 2), uses_step=True, scalars=_sgd_scalars,
    doc="Keras SGD with scalars (lr, momentum). Without momentum: p -= lr*g. With: "
        "v = momentum*v - lr*g; p += v, or p += momentum*v - lr*g with nesterov. "
        "Inputs (param, grad[, velocity]).",
))

register(OpDef(
    name="adam_update", group="update", args=ADAM_ARGS,
    arity=(4, 4), infer=_no_value, mutates=(0, 2, 3), uses_step=True, scalars=_adam_scalars,
    doc="Keras Adam with scalars (alpha, 1-b1, 1-b2, eps): m += (g-m)(1-b1); "
        "v += (g^2-v)(1-b2); p -= alpha*m/(sqrt(v)+eps). Inputs (param, grad, m, v).",
))

register(OpDef(
    name="nadam_update", group="update", args=ADAM_ARGS,
    arity=(4, 4), infer=_no_value, mutates=(0, 2, 3), uses_step=True, scalars=_nadam_scalars,
    doc="Keras 3 Nadam with scalars (c_m, c_g, c_v, 1-b1, 1-b2, eps): m += (g-m)(1-b1); "
        "v += (g^2-v)(1-b2); p -= (c_m*m + c_g*g) / (sqrt(v*c_v) + eps). "
        "Inputs (param, grad, m, v).",
))
