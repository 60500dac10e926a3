"""The exponential moving average of the weights in the op table (Keras' use_ema and
ema_momentum): the update op that keeps a shadow of each trainable parameter, and the optimizer
options that ask for it (the training pass is cnnc/passes/ema.py).

After each optimizer step, shadow = momentum * shadow + (1 - momentum) * param, with a
momentum of 0 at the first step (Keras: the average starts as the weights after step 1). The
shadows are optimizer slots (`slot/<param>/ema`), so checkpoints hold them and a resumed run
continues the same average; validation, test, export and the weights written at the end use
them (cnnc/train/ema.py), as Keras overwrites the weights with their average when fit ends.
"""

from __future__ import annotations

from cnnc.ir import args as A
from cnnc.ir.args import Arg, Attrs
from cnnc.ir.ops import OpDef, register
from cnnc.ir.updates import _no_value

EMA_OPTIONS = (
    Arg("use_ema", A.boolean, False, doc="keep a moving average of the weights for evaluation"),
    Arg("ema_momentum", A.unit_interval, 0.99, doc="its momentum (Keras' default 0.99)"),
)
EMA_SLOT = "ema"


def _ema_scalars(attrs: Attrs, step: int, lr: float) -> tuple[float, ...]:
    momentum = 0.0 if step == 0 else attrs["momentum"]
    return (momentum, 1.0 - momentum)


register(OpDef(
    name="ema_update", group="update", args=(Arg("momentum", A.unit_interval),),
    arity=(2, 2), infer=_no_value, mutates=(0,), uses_step=True, scalars=_ema_scalars,
    doc="Keras' moving average of a weight, scalars (m, 1-m) with m 0 at step 0 and momentum "
        "after: shadow = m * shadow + (1 - m) * param. Inputs (shadow, param).",
))
