"""Update ops: in-place writes of state (optimizer steps, batch norm's moving averages).

They produce no value; `mutates` lists the inputs they write. Optimizers count iterations from
t = step + 1, as Keras does; their per-step scalars are computed once on the host (`scalars`)
and handed to every backend.
"""

from __future__ import annotations

import math
from array import array

from cnnc.errors import ShapeError
from cnnc.ir import args as A
from cnnc.ir.args import Arg, Attrs
from cnnc.ir.ops import OpDef, Shape, register
from cnnc.ir.shapes import shape_str

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


def _decay(attrs: Attrs, lr: float) -> float:
    """Decoupled weight decay's factor for this step: p *= 1 - lr * weight_decay, before the
    optimizer's own update (Keras 3's BaseOptimizer._apply_weight_decay, torch.optim.AdamW)."""
    return 1.0 - lr * attrs["weight_decay"]


def _sgd_scalars(attrs: Attrs, step: int, lr: float) -> tuple[float, ...]:
    return (lr, attrs["momentum"], _decay(attrs, lr), 2.0 * attrs["l2"])


def _adam_scalars(attrs: Attrs, step: int, lr: float) -> tuple[float, ...]:
    t = step + 1
    b1, b2 = attrs["beta_1"], attrs["beta_2"]
    alpha = lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
    return (alpha, 1.0 - b1, 1.0 - b2, attrs["epsilon"], _decay(attrs, lr), 2.0 * attrs["l2"])


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
    return (c_m, c_g, c_v, 1.0 - b1, 1.0 - b2, attrs["epsilon"], _decay(attrs, lr),
            2.0 * attrs["l2"])


# The attribute that a schedule's per-step momentum (one_cycle's cycle_momentum) stands in for,
# per update op: the backends pass it to OpDef.scalars in place of the attribute's value.
CYCLED_MOMENTUM_ARG = {"sgd_update": "momentum", "adam_update": "beta_1",
                       "adamw_update": "beta_1"}


def step_scalars(op: str, attrs: Attrs, step: int, lr: float, momentum: float | None = None
                 ) -> tuple[float, ...]:
    """OPS[op].scalars for this step, with the step's `momentum` (None: the attribute's own) in
    place of sgd's momentum or adam's beta_1: what every backend hands its update kernels."""
    from cnnc.ir.ops import OPS

    key = CYCLED_MOMENTUM_ARG.get(op)
    if momentum is not None and key is not None:
        attrs = Attrs({**dict(attrs.items()), key: momentum})
    return OPS[op].scalars(attrs, step, lr)


LR = Arg("learning_rate", A.positive_real)
# Decoupled weight decay (Loshchilov & Hutter as Keras 3 and torch.optim.AdamW apply it: the
# factor is lr * weight_decay, so a schedule scales it too), and whether it also reaches biases
# and normalisation parameters (cnnc/passes/optimizer.py leaves those out unless this is true).
# `l2`: a kernel regularizer's factor (cnnc/ir/regularizers.py), set per parameter by
# cnnc/passes/regularize.py, never by the optimizer settings (train_config.PASS_ARGS): the
# update adds 2 * l2 * p to the gradient before anything else (the last scalar is 2 * l2).
L2_ARG = Arg("l2", A.non_negative_real, 0.0)
DECAY_ARGS = (Arg("weight_decay", A.non_negative_real, 0.0),
              Arg("decay_bias_and_norm", A.boolean, False), L2_ARG)
ADAM_ARGS = (LR, Arg("beta_1", A.unit_interval, 0.9), Arg("beta_2", A.unit_interval, 0.999),
             Arg("epsilon", A.positive_real, 1e-7))  # Adam's and Nadam's, Keras' defaults

register(OpDef(
    name="sgd_update", group="update",
    args=(LR, Arg("momentum", A.unit_interval, 0.0), Arg("nesterov", A.boolean, False),
          *DECAY_ARGS),
    arity=(2, 3), infer=_no_value, mutates=(0, 2), uses_step=True, scalars=_sgd_scalars,
    doc="Keras SGD with scalars (lr, momentum, decay, 2*l2). g += 2*l2*p (an L2 kernel "
        "regularizer's gradient), then p *= decay (1 - lr*weight_decay); "
        "then without momentum: p -= lr*g. With: "
        "v = momentum*v - lr*g; p += v, or p += momentum*v - lr*g with nesterov. "
        "Inputs (param, grad[, velocity]).",
))

register(OpDef(
    name="adam_update", group="update", args=(*ADAM_ARGS, *DECAY_ARGS),
    arity=(4, 4), infer=_no_value, mutates=(0, 2, 3), uses_step=True, scalars=_adam_scalars,
    doc="Keras Adam with scalars (alpha, 1-b1, 1-b2, eps, decay, 2*l2): g += 2*l2*p and "
        "p *= decay first; "
        "m += (g-m)(1-b1); v += (g^2-v)(1-b2); p -= alpha*m/(sqrt(v)+eps). "
        "Inputs (param, grad, m, v).",
))

# Keras' AdamW: Adam with a decoupled weight decay of 0.004 by default (torch.optim.AdamW's is
# 0.01 and its epsilon 1e-8, added after the bias correction of sqrt(v) rather than before).
register(OpDef(
    name="adamw_update", group="update",
    args=(*ADAM_ARGS, Arg("weight_decay", A.non_negative_real, 0.004), *DECAY_ARGS[1:]),
    arity=(4, 4), infer=_no_value, mutates=(0, 2, 3), uses_step=True, scalars=_adam_scalars,
    doc="Keras AdamW: adam_update with weight_decay 0.004 by default; p *= 1 - lr*weight_decay "
        "before the Adam step. Inputs (param, grad, m, v).",
))

register(OpDef(
    name="nadam_update", group="update", args=(*ADAM_ARGS, *DECAY_ARGS),
    arity=(4, 4), infer=_no_value, mutates=(0, 2, 3), uses_step=True, scalars=_nadam_scalars,
    doc="Keras 3 Nadam with scalars (c_m, c_g, c_v, 1-b1, 1-b2, eps, decay, 2*l2): "
        "g += 2*l2*p and p *= decay first; m += (g-m)(1-b1); "
        "v += (g^2-v)(1-b2); p -= (c_m*m + c_g*g) / (sqrt(v*c_v) + eps). "
        "Inputs (param, grad, m, v).",
))
