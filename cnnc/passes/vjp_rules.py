"""Vector-Jacobian rules: for each forward op, the graph nodes computing its operands' gradients.

A rule gets the node, the name of the gradient of its output (`dy`; None for a loss, whose seed
is 1) and which operands need a gradient; it emits nodes through the context and returns, per
operand (inputs then parameters), the name of that operand's gradient contribution or None.
Returning `dy` itself (add) passes the gradient through without a node.

Ops that never get a rule: see NOT_DIFFERENTIATED.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cnnc.errors import InternalError
from cnnc.ir import activations
from cnnc.ir import args as A
from cnnc.ir.conv_transpose import TRANSPOSE_GEOMETRY_ARGS
from cnnc.ir.graph import Node
from cnnc.ir.layers import (
    BN_NORMALISE_ARGS,
    CONV_GEOMETRY_ARGS,
    DEPTHWISE_GEOMETRY_ARGS,
    MAXPOOL_ARGS,
    POOL_ARGS,
)
from cnnc.ir.resample import UPSAMPLING_ARGS
from cnnc.ir.separable import separable_parts
from cnnc.passes import names
from cnnc.passes.merge_vjp import MERGE_RULES
from cnnc.passes.vjp_types import Grads, Rule, RuleContext


def _pick(node: Node, args: Sequence[str | A.Arg]) -> dict[str, Any]:
    """The node's values of these arguments (given by name or as the op table's Args)."""
    names_ = [a if isinstance(a, str) else a.name for a in args]
    return {k: node.attrs[k] for k in names_}


def _preactivation(cx: RuleContext, node: Node, dy: str) -> str:
    """d loss / d (conv or dense before its activation)."""
    act = node.attrs["activation"]
    if act == "linear":
        return dy
    return cx.add(names.preact_grad(node.name), "activation_grad", (node.name, dy),
                  {"activation": act}, like=node)


def _kernel_layer(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool],
                  attrs: Mapping[str, Any]) -> Grads:
    """conv2d and dense: operands (x, kernel[, bias]); their gradient ops are named
    `<op>_grad_input` and `<op>_grad_kernel` and take `attrs`."""
    d = _preactivation(cx, node, dy)
    x, kernel = node.operands[:2]
    out: Grads = [None] * len(node.operands)
    if needs[0]:
        out[0] = cx.part(x, f"{node.op}_grad_input", (d, kernel), attrs, like=node)
    if needs[1]:
        out[1] = cx.part(kernel, f"{node.op}_grad_kernel", (x, d), attrs, like=node)
    if len(out) > 2 and needs[2]:
        out[2] = cx.part(node.operands[2], "bias_grad", (d,), like=node)
    return out


def _conv2d(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    attrs = {**_pick(node, CONV_GEOMETRY_ARGS), "input_shape": cx.shape(node.inputs[0])[1:]}
    return _kernel_layer(cx, node, dy, needs, attrs)


def _depthwise_conv2d(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    attrs = {**_pick(node, DEPTHWISE_GEOMETRY_ARGS),
             "input_shape": cx.shape(node.inputs[0])[1:]}
    return _kernel_layer(cx, node, dy, needs, attrs)


def _dense(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    return _kernel_layer(cx, node, dy, needs, {})


def _maxpool2d(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    (x,) = node.inputs
    return [cx.part(x, "maxpool2d_grad", (x, dy), _pick(node, MAXPOOL_ARGS), like=node)]


def _avgpool2d(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    (x,) = node.inputs
    attrs = {**_pick(node, POOL_ARGS), "input_shape": cx.shape(x)[1:]}
    return [cx.part(x, "avgpool2d_grad", (dy,), attrs, like=node)]


def _global_avgpool2d(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    (x,) = node.inputs
    return [cx.part(x, "global_avgpool2d_grad", (dy,), {"input_shape": cx.shape(x)[1:]},
                    like=node)]


def _zero_padding2d(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    """The padding cut off again: a slice of the rows, then one of the columns."""
    (x,) = node.inputs
    _, h, w, _ = cx.shape(x)
    (t, _), (left, _) = node.attrs["padding"]
    rows = cx.add(f"{names.grad(node.name)}/rows", "slice", (dy,),
                  {"axis": 1, "start": t, "stop": t + h}, like=node)
    return [cx.part(x, "slice", (rows,), {"axis": 2, "start": left, "stop": left + w},
                    like=node)]


def _flatten(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    (x,) = node.inputs
    return [cx.part(x, "view", (dy,), {"shape": cx.shape(x)[1:]}, like=node)]


def _activation(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    # From the output y, which the training graph keeps anyway; a parameterised relu from its
    # input x: with a threshold or a cap, y does not tell the sides of the kinks apart (a capped
    # y equals max_value from every x above it).
    (x,) = node.inputs
    attrs = {"activation": node.attrs["activation"], **activations.parameters(node.attrs)}
    value = x if activations.reads_input(node.attrs) else node.name
    return [cx.part(x, "activation_grad", (value, dy), attrs, like=node)]


def _concatenate(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    rank = len(cx.shape(node.name))
    axis = node.attrs["axis"] % rank
    out: Grads = []
    start = 0
    for x, need in zip(node.inputs, needs, strict=False):
        stop = start + cx.shape(x)[axis]
        out.append(cx.part(x, "slice", (dy,), {"axis": axis, "start": start, "stop": stop},
                           like=node) if need else None)
        start = stop
    return out


def _dropout_train(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    (x,) = node.inputs
    return [cx.part(x, "dropout_grad", (dy,), _pick(node, ("rate", "seed")), like=node)]


def _batchnorm_train(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    """Operands (x, stats[, gamma][, beta]); the path through the batch statistics is part of
    batchnorm_grad_input, so `stats` gets no gradient of its own."""
    a = node.attrs
    if a["activation"] != "linear":  # fused after the backward pass (passes/fuse_training.py)
        raise InternalError(f"{node.name}: batchnorm_train with a fused activation has no rule")
    x, stats, *affine = node.operands
    gamma = affine[0] if a["scale"] else None
    attrs = _pick(node, BN_NORMALISE_ARGS)
    out: Grads = [None] * len(node.operands)
    if needs[0]:
        extra = (gamma,) if gamma is not None else ()
        out[0] = cx.part(x, "batchnorm_grad_input", (x, stats, dy, *extra), attrs, like=node)
    i = 2
    if a["scale"]:
        if needs[i]:
            out[i] = cx.part(gamma, "batchnorm_grad_gamma", (x, stats, dy), attrs, like=node)
        i += 1
    if a["center"] and needs[i]:
        out[i] = cx.part(node.operands[i], "bias_grad", (dy,), like=node)
    return out


def _loss(grad_op: str, keys: Sequence[str]) -> Rule:
    """A loss's seed gradient with respect to its prediction (the target gets none)."""
    def rule(cx: RuleContext, node: Node, dy: str | None, needs: Sequence[bool]) -> Grads:
        pred, target = node.inputs
        return [cx.part(pred, grad_op, (pred, target), _pick(node, keys), like=node), None]
    return rule


# ---------------------------------------------------------------- resampling, transposed convs


def _upsampling2d(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    (x,) = node.inputs
    attrs = {**_pick(node, UPSAMPLING_ARGS), "input_shape": cx.shape(x)[1:]}
    return [cx.part(x, "upsampling2d_grad", (dy,), attrs, like=node)]


def _cropping2d(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    """The cropped rows and columns back as zeros: zero padding."""
    (x,) = node.inputs
    return [cx.part(x, "zero_padding2d", (dy,), {"padding": node.attrs["cropping"]},
                    like=node)]


def _conv2d_transpose(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    attrs = {**_pick(node, TRANSPOSE_GEOMETRY_ARGS), "input_shape": cx.shape(node.inputs[0])[1:]}
    return _kernel_layer(cx, node, dy, needs, attrs)


def _separable_conv2d(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    """Operands (x, depthwise_kernel, pointwise_kernel[, bias]): the depthwise part is
    recomputed (cheap: no channel sums) for the pointwise kernel's gradient."""
    x, dk, pk = node.operands[:3]
    dw_attrs, pw_attrs = separable_parts(node.attrs)
    t = cx.add(f"{node.name}/depthwise", "depthwise_conv2d", (x,), dw_attrs, like=node,
               params=(dk,))
    d = _preactivation(cx, node, dy)
    pw_geometry = {**_pick_attrs(pw_attrs, CONV_GEOMETRY_ARGS), "input_shape": cx.shape(t)[1:]}
    dw_geometry = {**_pick_attrs(dw_attrs, DEPTHWISE_GEOMETRY_ARGS),
                   "input_shape": cx.shape(x)[1:]}
    out: Grads = [None] * len(node.operands)
    if needs[2]:
        out[2] = cx.part(pk, "conv2d_grad_kernel", (t, d), pw_geometry, like=node)
    if len(out) > 3 and needs[3]:
        out[3] = cx.part(node.operands[3], "bias_grad", (d,), like=node)
    if needs[0] or needs[1]:
        dt = cx.add(f"{names.grad(node.name)}/depthwise", "conv2d_grad_input", (d, pk),
                    pw_geometry, like=node)
        if needs[0]:
            out[0] = cx.part(x, "depthwise_conv2d_grad_input", (dt, dk), dw_geometry,
                             like=node)
        if needs[1]:
            out[1] = cx.part(dk, "depthwise_conv2d_grad_kernel", (x, dt), dw_geometry,
                             like=node)
    return out


def _pick_attrs(attrs: Mapping[str, Any], args: Sequence[A.Arg]) -> dict[str, Any]:
    return {a.name: attrs[a.name] for a in args}


RESAMPLE_VJP_RULES: dict[str, Rule] = {
    "separable_conv2d": _separable_conv2d,
    "conv2d_transpose": _conv2d_transpose,
    "upsampling2d": _upsampling2d,
    "cropping2d": _cropping2d,
}


VJP_RULES: dict[str, Rule] = {
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise_conv2d,
    "dense": _dense,
    "maxpool2d": _maxpool2d,
    "avgpool2d": _avgpool2d,
    "global_avgpool2d": _global_avgpool2d,
    "zero_padding2d": _zero_padding2d,
    "flatten": _flatten,
    "activation": _activation,
    "concatenate": _concatenate,
    "dropout_train": _dropout_train,
    "batchnorm_train": _batchnorm_train,
    "softmax_cross_entropy": _loss("softmax_cross_entropy_grad", ("sparse", "label_smoothing")),
    "cross_entropy": _loss("cross_entropy_grad", ("sparse", "label_smoothing")),
    "mean_squared_error": _loss("mean_squared_error_grad", ()),
    # the broadcasting merges (add's rule among them: a broadcast operand's gradient is summed)
    **MERGE_RULES,
    **RESAMPLE_VJP_RULES,
}

# Ops of a forward or loss graph that have no rule, and why.
NOT_DIFFERENTIATED = {
    "input": "a leaf: its gradient is the sum of its consumers' contributions",
    "dropout": "replaced by dropout_train in training mode",
    "batchnorm": "replaced by batchnorm_stats + batchnorm_train in training mode",
    "batchnorm_stats": "its gradient is part of batchnorm_grad_input",
    "l2_penalty": "added after `backward` (passes/regularize.py); its kernel gradient, "
                  "2 * l2 * kernel, is added in the optimizer's update",
}


# ---------------------------------------------------------------- layer norm, global max
# pooling, channel shuffle (cnnc/ir/layer_norm.py, global_maxpool.py, channel_shuffle.py)


def _layer_norm(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    """Operands (x[, gamma][, beta]); the row statistics are recomputed from x by the gradient
    ops, so the forward pass keeps nothing but x."""
    a = node.attrs
    x, *affine = node.operands
    gamma = affine[0] if a["scale"] else None
    attrs = {k: a[k] for k in ("epsilon", "center", "scale")}
    out: Grads = [None] * len(node.operands)
    if needs[0]:
        extra = (gamma,) if gamma is not None else ()
        out[0] = cx.part(x, "layer_norm_grad_input", (x, dy, *extra), attrs, like=node)
    i = 1
    if a["scale"]:
        if needs[i]:
            out[i] = cx.part(gamma, "layer_norm_grad_gamma", (x, dy),
                             {"epsilon": a["epsilon"]}, like=node)
        i += 1
    if a["center"] and needs[i]:
        out[i] = cx.part(node.operands[i], "bias_grad", (dy,), like=node)
    return out


def _global_maxpool2d(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    (x,) = node.inputs
    return [cx.part(x, "global_maxpool2d_grad", (x, dy), like=node)]


def _channel_shuffle(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    """The inverse permutation: a shuffle with C/groups groups."""
    (x,) = node.inputs
    channels = cx.shape(x)[-1]
    return [cx.part(x, "channel_shuffle", (dy,), {"groups": channels // node.attrs["groups"]},
                    like=node)]


VJP_RULES.update({
    "layer_norm": _layer_norm,
    "global_maxpool2d": _global_maxpool2d,
    "channel_shuffle": _channel_shuffle,
})


# ---------------------------------------------------------------- channel slice
# (cnnc/ir/channel_slice.py)


def _channel_slice(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    """dy back in its channel range, zeros elsewhere; the other slices of x add theirs."""
    (x,) = node.inputs
    attrs = {"start": node.attrs["start"], "stop": node.attrs["stop"],
             "channels": cx.shape(x)[-1]}
    return [cx.part(x, "channel_slice_grad", (dy,), attrs, like=node)]


VJP_RULES["channel_slice"] = _channel_slice


# ---------------------------------------------------------------- preprocessing layers
# (cnnc/ir/preprocessing.py): element-wise affine maps. Their constants and normalization's
# statistics are not trained, so only the input gets a gradient.


def _rescaling(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    """dx = dy * scale: the same layer with no offset."""
    (x,) = node.inputs
    if not needs[0]:
        return [None]
    return [cx.part(x, "rescaling", (dy,), {"scale": node.attrs["scale"], "offset": 0.0},
                    like=node)]


def _normalization(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    x, _, variance = node.operands
    if not needs[0]:
        return [None, None, None]
    return [cx.part(x, "normalization_grad", (dy, variance), like=node), None, None]


VJP_RULES.update({"rescaling": _rescaling, "normalization": _normalization})


# ---------------------------------------------------------------- local response normalisation
# (cnnc/ir/lrn.py)


def _lrn(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    """One gradient op from (x, dy): the divisors are recomputed from x, so the forward pass
    keeps nothing but x."""
    (x,) = node.inputs
    if not needs[0]:
        return [None]
    attrs = {k: node.attrs[k] for k in ("size", "alpha", "beta", "bias")}
    return [cx.part(x, "lrn_grad", (x, dy), attrs, like=node)]


VJP_RULES["lrn"] = _lrn
