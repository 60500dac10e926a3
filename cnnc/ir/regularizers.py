"""Weight regularizers: the `kernel_regularizer` argument of conv2d and dense, and the op that
adds its penalty to the training loss (cnnc/passes/regularize.py places it).

Keras' L2 regularizer: penalty = l2 * sum(kernel ** 2), added to the loss that training reports
and minimises. Its gradient 2 * l2 * kernel is added to the kernel's gradient inside the
optimizer's update (the `l2` attribute of the update ops, cnnc/ir/updates.py), before any
decoupled weight decay, as Keras adds regularization losses before it computes gradients.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cnnc.ir import args as A
from cnnc.ir.args import Arg, ArgError, Attrs
from cnnc.ir.ops import OpDef, Shape, register

KERAS_L2_DEFAULT = 0.01  # keras.regularizers.L2(l2=0.01), what the string 'l2' means there


def _factor(name: str, value: Any, original: Any) -> float:
    try:  # an integer too large for a float overflows here
        factor = float(value) if isinstance(value, (int, float)) \
            and not isinstance(value, bool) else math.nan
    except OverflowError:
        factor = math.inf
    if not (math.isfinite(factor) and factor >= 0):
        raise ArgError(f"Expected an L2 factor, a finite number >= 0. "
                       f"Received {name}={original!r}")
    return factor


def regularizer(name: str, value: Any) -> float:
    """An L2 regularizer as its factor (0: none). Accepts a factor (1e-4), the word l2 (Keras'
    default, 0.01), a pair (l2, 1e-4) / [l2, 1e-4], a mapping {l2: 1e-4}, or null."""
    original = value
    if value is None:
        return 0.0
    if isinstance(value, str):
        if value.lower() == "l2":
            return KERAS_L2_DEFAULT
    elif isinstance(value, Mapping):
        if len(value) == 1 and str(next(iter(value))).lower() == "l2":
            return _factor(name, next(iter(value.values())), original)
    elif isinstance(value, (tuple, list)):
        if len(value) == 2 and isinstance(value[0], str) and value[0].lower() == "l2":
            return _factor(name, value[1], original)
    else:
        return _factor(name, value, original)
    raise ArgError(f"Expected an L2 regularizer: a factor such as 1e-4, l2 (factor 0.01), "
                   f"(l2, 1e-4) or {{l2: 1e-4}}. Received {name}={original!r}")


KERNEL_REGULARIZER = Arg("kernel_regularizer", regularizer, 0.0,
                         doc="L2 penalty on the kernel: l2 * sum(kernel^2) joins the loss")


def _scalar(attrs: Attrs, shapes: tuple[Shape, ...]) -> Shape:
    return ()


register(OpDef(
    name="l2_penalty", group="loss", args=(Arg("l2", A.positive_real),), arity=(2, 2),
    infer=_scalar, reduction=lambda attrs, shapes: math.prod(shapes[1]) + 1,
    doc="loss + l2 * sum(weight^2): a kernel's L2 penalty joined to the training loss. "
        "Inputs (loss, weight). Its gradient with respect to the weight is added in the "
        "optimizer's update (the update ops' l2 attribute), so it has no gradient op.",
))
