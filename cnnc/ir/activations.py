"""The activations table: one row per activation name, read by every stage that needs one.

The op table's `activation` arguments accept exactly these names; `cnnc.ir.cost` reads the FLOPs,
the NumPy backend keys its implementations by name (and reads the constants from here), and the
OpenCL binders turn a row into -D options by name (`kernel_defines`), so no numeric code has to
agree between Python and OpenCL C. Coverage tests hold every table keyed by activation name to
this one.

Derivatives are written in terms of the activation's output y (what the training graph keeps),
where y determines them; the smooth non-monotone ones (silu, gelu, mish, hard_swish) and the
rest of the issue-20 family are differentiated from their input x instead (`from_input`): the
training pass splits a layer carrying one into the linear layer and an activation node
(passes/training_mode.py), so that x exists as a value of its own.

Parameters: the `relu` activation takes Keras' ReLU arguments (max_value, negative_slope,
threshold) on the `activation` op; the Keras ReLU, LeakyReLU and ThresholdedReLU layers lower to
it. With all of them at their defaults it is the plain relu; with any other value it computes as
Keras' ReLU layer does (three steps, below) and is differentiated from its input x, since a
threshold or a cap hides the side of a kink from y. relu6 and leaky_relu are the ReLUs whose
arguments their `relu` field gives: where a layer's epilogue applies an activation by name
(`fused_name`), such a parameterised relu becomes that name.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Activation:
    name: str
    flops: int  # per element, for the FLOP count (a multiply-add counts two)
    derivative: str  # d/dx from the output y, or from x where from_input (activation_grad)
    constants: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    kinked: bool = False  # not differentiable somewhere: finite differences avoid its kinks
    elementwise: bool = True  # softmax is not: it spans a row, so no GEMM can apply it as it stores
    # The activation op's arguments this activation takes, with their defaults (relu: Keras'
    # ReLU layer's), and the FLOPs per element when any differs from its default.
    params: Mapping[str, float | None] = field(default_factory=lambda: MappingProxyType({}))
    params_flops: int = 0
    # The Keras ReLU arguments it equals (relu6 is ReLU(max_value=6)); None: not a ReLU.
    relu: Mapping[str, float] | None = None
    # The ONNX operator computing it, whose attributes of the same names are its constants: how
    # ONNX import and export read and write it. None: a ReLU (written as the Keras ReLU it
    # equals), linear and softmax (Identity, and Softmax with its axis: their own rules), or
    # none in ONNX (export refuses it by name).
    onnx: str | None = None
    # ONNX attributes other than the constants that select this activation among the rows that
    # share its operator (Gelu: approximate='none' or 'tanh').
    onnx_attrs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # The opset that first has `onnx`; export below it writes the decomposition instead
    # (cnnc/export/onnx_activations.py), as PyTorch's exporters do.
    onnx_since: int = 1
    # The derivative reads the input x, not the output y (`reads_input`).
    from_input: bool = False
    # Where, in x, a kinked activation read from x has its kinks (finite differences avoid them).
    kinks: tuple[float, ...] = ()

    @property
    def define(self) -> str:
        """The -D option that selects this activation in kernels/common.h."""
        return "ACT_" + self.name.upper()


def _row(name: str, flops: int, derivative: str, **kw) -> Activation:
    for key in ("constants", "params", "relu", "onnx_attrs"):
        if key in kw:
            kw[key] = MappingProxyType(dict(kw[key]))
    return Activation(name, flops, derivative, **kw)


# Keras' ReLU layer: max_value (a cap, None for none), negative_slope below the threshold.
RELU_PARAMS = {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (
    _row("linear", 0, "1"),
    # With parameters: 1 where threshold < x (and 0 < x < max_value when capped), plus
    # negative_slope where x < threshold, from the input x.
    _row("relu", 1, "1 if y > 0 else 0", kinked=True, params=RELU_PARAMS, params_flops=2,
         relu={}),
    # Keras 3's default negative_slope for the leaky_relu activation.
    _row("leaky_relu", 2, "1 if y > 0 else slope", constants={"slope": 0.2}, kinked=True,
         relu={"negative_slope": 0.2}),
    _row("relu6", 2, "1 if 0 < y < max_value else 0", constants={"max_value": 6.0},
         kinked=True, relu={"max_value": 6.0}),
    _row("elu", 4, "1 if y > 0 else y + alpha", constants={"alpha": 1.0}, onnx="Elu"),
    _row("sigmoid", 4, "y * (1 - y)", onnx="Sigmoid"),
    _row("tanh", 4, "1 - y * y", onnx="Tanh"),
    _row("softmax", 5, "y * (dy - sum(dy * y)) over the last axis", elementwise=False),
    # ---- issue 20: Keras 3's smooth and hard activations, each differentiated from x.
    _row("silu", 5, "s * (1 + x * (1 - s)), s = sigmoid(x)", onnx="Swish",
         onnx_attrs={"alpha": 1.0}, onnx_since=24, from_input=True),
    # Keras 3: relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1), ONNX HardSigmoid's alpha and beta
    # (Keras 2's was 0.2x + 0.5).
    _row("hard_sigmoid", 3, "alpha if 0 < alpha * x + beta < 1 else 0",
         constants={"alpha": 1 / 6, "beta": 0.5}, kinked=True, onnx="HardSigmoid",
         from_input=True, kinks=(-3.0, 3.0)),
    _row("hard_swish", 4, "0 if x < -3, 1 if x > 3, else x / 3 + 0.5", kinked=True,
         onnx="HardSwish", onnx_since=14, from_input=True, kinks=(-3.0, 3.0)),
    _row("gelu", 8, "Phi(x) + x * phi(x)", onnx="Gelu", onnx_attrs={"approximate": "none"},
         onnx_since=20, from_input=True),
    # k = sqrt(2 / pi), c = 0.044715 (GELU_TANH_K, GELU_TANH_C; not ONNX attributes)
    _row("gelu_tanh", 10, "s + 2x s (1 - s) k (1 + 3c x^2), s = sigmoid(2k (x + c x^3))",
         onnx="Gelu",
         onnx_attrs={"approximate": "tanh"}, onnx_since=20, from_input=True),
    _row("softplus", 4, "sigmoid(x)", onnx="Softplus", from_input=True),
    _row("mish", 8, "t + x * sigmoid(x) * (1 - t^2), t = tanh(softplus(x))", onnx="Mish",
         onnx_since=18, from_input=True),
)}

NAMES: tuple[str, ...] = tuple(ACTIVATIONS)

GELU_TANH_K = math.sqrt(2 / math.pi)
GELU_TANH_C = 0.044715

# Other names an `activation` argument accepts for a row (Keras 3's: swish is silu, hard_silu is
# hard_swish).
ALIASES: Mapping[str, str] = MappingProxyType({"swish": "silu", "hard_silu": "hard_swish"})


def activation(name: str) -> Activation:
    return ACTIVATIONS[name]


def parameters(attrs: Mapping[str, Any]) -> dict[str, float | None]:
    """The parameters of an activation (the `activation` op's, or activation_grad's attributes)
    that differ from their defaults; empty for a plain activation, and for the activation
    argument of a layer (conv2d's), which takes none."""
    defaults = ACTIVATIONS[attrs["activation"]].params
    return {k: attrs[k] for k, d in defaults.items() if k in attrs and attrs[k] != d}


def reads_input(attrs: Mapping[str, Any]) -> bool:
    """Whether the gradient of this activation reads its input x rather than its output y: a
    parameterised relu's threshold or cap hides from y which side of a kink x was on, and y
    does not determine x for the non-monotone ones (`Activation.from_input`)."""
    return bool(parameters(attrs)) or ACTIVATIONS[attrs["activation"]].from_input


def fused_name(attrs: Mapping[str, Any]) -> str | None:
    """The activation, by name alone, that an `activation` node computes: what a layer before it
    applies in its epilogue when the two fuse. A parameterised relu has one when its arguments
    are exactly those of a ReLU of the table (relu6, leaky_relu); otherwise None."""
    given = parameters(attrs)
    if not given:
        return attrs["activation"]
    if attrs["activation"] == "relu":
        for act in ACTIVATIONS.values():
            if act.relu is not None and act.relu == given:
                return act.name
    return None


def flops(attrs: Mapping[str, Any]) -> int:
    """FLOPs per element of an activation with its parameters."""
    act = ACTIVATIONS[attrs["activation"]]
    return act.params_flops if parameters(attrs) else act.flops


def float_bits(value: float) -> int:
    """A float32 as the signed 32-bit integer with the same bits: how a constant travels in a
    -D option (only integers reach build options); the kernel reads it back with as_float()."""
    return struct.unpack("<i", struct.pack("<f", value))[0]


def kernel_defines(name: str, params: Mapping[str, float | None] | None = None
                   ) -> dict[str, int]:
    """The -D options that make kernels/common.h's ACTIVATE(v) (and ACTIVATE_GRAD) this
    activation, with the parameters that differ from their defaults (`parameters`).

    `ACT_<NAME>=1` selects it, and each constant comes as `ACT_<CONSTANT>_BITS`. A
    parameterised activation (any parameter off its default) carries each of its parameters
    that has a value the same way, `ACT_<PARAM>_BITS`: their presence selects the parameterised
    formula (a relu's ACT_THRESHOLD_BITS: Keras' ReLU), and the kernel skips a step whose
    parameter leaves the value as it is (no cap: no ACT_MAX_VALUE_BITS; slope 0: bits 0).
    """
    act = ACTIVATIONS[name]
    if not act.elementwise:
        raise ValueError(f"activation '{name}' is not element-wise and has no ACTIVATE(v)")
    defines = {act.define: 1}
    for const, value in act.constants.items():
        defines[f"ACT_{const.upper()}_BITS"] = float_bits(value)
    if params:
        for param, default in act.params.items():
            value = params.get(param, default)
            if value is not None:
                defines[f"ACT_{param.upper()}_BITS"] = float_bits(value)
    return defines
