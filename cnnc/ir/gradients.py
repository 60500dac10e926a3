"""Gradient ops: what the training graph's backward pass (and its training-mode forward) runs.

`passes/autodiff.py` builds the training graph from a forward graph with these ops (and the
loss and update ops of losses.py and updates.py), and both backends run that one graph. The
semantics stated in each `doc` are the contract the NumPy implementation and the OpenCL kernels
both meet. The training-mode variants of layers (dropout with a mask, batch norm on the batch's
statistics) belong to this group too: only the training graph uses them.

Step counter: ops with ``uses_step`` read the run's step (0 for the first training step).
"""

from __future__ import annotations

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.args import Arg, Attrs
from cnnc.ir.layers import (
    ACTIVATION_ARG,
    ACTIVATION_PARAMS,
    BN_NORMALISE_ARGS,
    CONV_GEOMETRY_ARGS,
    DEPTHWISE_GEOMETRY_ARGS,
    MAXPOOL_ARGS,
    POOL_ARGS,
)
from cnnc.ir.ops import OpDef, Shape, last_axis_terms, register, row_terms, window_terms

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
    name="activation_grad", group="gradient",
    args=(Arg("activation", A.choice(*A.ACTIVATIONS)), *ACTIVATION_PARAMS),
    arity=(2, 2), infer=_like_input(0),
    reduction=last_axis_terms,
    doc="dx from the activation's output y and dy: relu 1[y>0]; leaky_relu 1 or 0.2; "
        "elu 1 or y+1; sigmoid y(1-y); tanh 1-y^2; softmax y*(dy - sum(dy*y, last axis)); "
        "linear dy. Inputs (y, dy); a relu with parameters (activations.reads_input) reads its "
        "input x instead, (x, dy): dy where threshold < x (and 0 < x < max_value when capped), "
        "plus negative_slope * dy where x < threshold.",
))


# ---------------------------------------------------------------- conv2d


def _conv_grad_input_terms(attrs: Attrs, shapes: tuple[Shape, ...]) -> int:
    kh, kw = attrs["kernel_size"]
    return kh * kw * attrs["filters"] // attrs["groups"]


def _conv_kernel_shape(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    kh, kw = attrs["kernel_size"]
    return (kh, kw, attrs["input_shape"][-1] // attrs["groups"], attrs["filters"])


register(OpDef(
    name="conv2d_grad_input", group="gradient", args=(*CONV_GEOMETRY_ARGS, INPUT_SHAPE),
    arity=(2, 2), infer=_from_input_shape,
    reduction=_conv_grad_input_terms,
    doc="dx of conv2d (a transposed convolution). Inputs (dy, kernel); dy is the gradient of "
        "the convolution before bias and activation.",
))

register(OpDef(
    name="conv2d_grad_kernel", group="gradient", args=(*CONV_GEOMETRY_ARGS, INPUT_SHAPE),
    arity=(2, 2), infer=_conv_kernel_shape,
    reduction=row_terms(1),
    doc="d kernel of conv2d, summed over the batch. Inputs (x, dy).",
))

# ---------------------------------------------------------------- depthwise_conv2d


def _depthwise_kernel_shape(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    kh, kw = attrs["kernel_size"]
    return (kh, kw, attrs["input_shape"][-1], attrs["depth_multiplier"])


register(OpDef(
    name="depthwise_conv2d_grad_input", group="gradient",
    args=(*DEPTHWISE_GEOMETRY_ARGS, INPUT_SHAPE), arity=(2, 2), infer=_from_input_shape,
    reduction=lambda attrs, shapes: attrs["kernel_size"][0] * attrs["kernel_size"][1]
    * attrs["depth_multiplier"],
    doc="dx of depthwise_conv2d: conv2d_grad_input of its grouped conv2d (cnnc.ir.layers."
        "depthwise_as_conv2d). Inputs (dy, kernel).",
))

register(OpDef(
    name="depthwise_conv2d_grad_kernel", group="gradient",
    args=(*DEPTHWISE_GEOMETRY_ARGS, INPUT_SHAPE), arity=(2, 2), infer=_depthwise_kernel_shape,
    reduction=row_terms(1),
    doc="d kernel of depthwise_conv2d, summed over the batch, in the layer's (KH, KW, C, M) "
        "shape. Inputs (x, dy).",
))


register(OpDef(
    name="bias_grad", group="gradient", args=(), arity=(1, 1), infer=_channels_vector,
    reduction=row_terms(0),
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
    name="dense_grad_input", group="gradient", args=(), arity=(2, 2),
    infer=_dense_grad_input_infer,
    reduction=last_axis_terms,
    doc="dy @ kernel^T. Inputs (dy, kernel).",
))

register(OpDef(
    name="dense_grad_kernel", group="gradient", args=(), arity=(2, 2),
    infer=_dense_grad_kernel_infer,
    reduction=row_terms(0),
    doc="x^T @ dy with every leading axis of x and dy flattened into rows. Inputs (x, dy).",
))


# ---------------------------------------------------------------- pooling, reshapes


register(OpDef(
    name="maxpool2d_grad", group="gradient", args=MAXPOOL_ARGS, arity=(2, 2), infer=_like_input(0),
    reduction=window_terms,
    doc="Routes each dy to the first maximum of its window in row-major order (padding never "
        "wins); overlapping windows accumulate. Inputs (x, dy).",
))

register(OpDef(
    name="avgpool2d_grad", group="gradient", args=(*POOL_ARGS, INPUT_SHAPE), arity=(1, 1),
    infer=_from_input_shape,
    reduction=window_terms,
    doc="Spreads dy / count evenly over each window's real cells. Input (dy,).",
))

register(OpDef(
    name="global_avgpool2d_grad", group="gradient", args=(INPUT_SHAPE,), arity=(1, 1),
    infer=_from_input_shape,
    doc="dy / (H*W) broadcast over height and width. Input (dy,) of shape (N, C) or (N,1,1,C).",
))

register(OpDef(
    name="view", group="gradient", args=(Arg("shape", A.shape),), arity=(1, 1),
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
    name="slice", group="gradient",
    args=(Arg("axis", A.integer), Arg("start", A.non_negative_int), Arg("stop", A.positive_int)),
    arity=(1, 1), infer=_slice_infer,
    doc="x[..., start:stop, ...] along `axis` (the gradient of concatenate). Input (x,).",
))


# ---------------------------------------------------------------- dropout


DROPOUT_ARGS = (Arg("rate", A.unit_interval), Arg("seed", A.integer))

register(OpDef(
    name="dropout_train", group="gradient", args=DROPOUT_ARGS, arity=(1, 1),
    infer=_like_input(0), uses_step=True,
    doc="x * keep / (1 - rate), keep = cnnc.rng.uniform(seed, step, flat index) >= rate.",
))

register(OpDef(
    name="dropout_grad", group="gradient", args=DROPOUT_ARGS, arity=(1, 1),
    infer=_like_input(0), uses_step=True,
    doc="dy * keep / (1 - rate) with the same mask as dropout_train. Input (dy,).",
))


# ---------------------------------------------------------------- batch norm


def _bn_stats_infer(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return (2, shapes[0][-1])


register(OpDef(
    name="batchnorm_stats", group="gradient", args=(), arity=(1, 1), infer=_bn_stats_infer,
    reduction=row_terms(0),
    doc="Row 0: mean of x over every axis but the last; row 1: the biased variance.",
))

register(OpDef(
    name="batchnorm_train", group="gradient", args=(*BN_NORMALISE_ARGS, ACTIVATION_ARG),
    arity=(2, 4), infer=_like_input(0),
    reduction=row_terms(0),
    doc="activation((x - mean) / sqrt(var + epsilon) * gamma + beta) with the batch's stats. "
        "Inputs (x, stats[, gamma][, beta]): gamma present iff scale, beta iff center. The "
        "activation is linear unless passes/fuse_training.py fused the next layer's in.",
))

register(OpDef(
    name="batchnorm_grad_input", group="gradient", args=BN_NORMALISE_ARGS, arity=(3, 4),
    infer=_like_input(0),
    reduction=row_terms(0),
    doc="dx of batchnorm_train through the batch statistics: with xhat the normalised x, "
        "g = dy*gamma, dx = (g - mean(g) - xhat*mean(g*xhat)) / sqrt(var + epsilon). Inputs "
        "(x, stats, dy[, gamma]).",
))

register(OpDef(
    name="batchnorm_grad_gamma", group="gradient", args=BN_NORMALISE_ARGS, arity=(3, 3),
    infer=_channels_vector,
    reduction=row_terms(0),
    doc="sum(dy * xhat) over every axis but the last. Inputs (x, stats, dy).",
))
