"""The activations table: one row per activation name, read by every stage that needs one.

The op table's `activation` arguments accept exactly these names; `cnnc.ir.cost` reads the FLOPs,
the NumPy backend keys its implementations by name (and reads the constants from here), and the
OpenCL binders turn a row into -D options by name (`kernel_defines`), so no numeric code has to
agree between Python and OpenCL C. Coverage tests hold every table keyed by activation name to
this one.

Derivatives are written in terms of the activation's output y (what the training graph keeps),
which every activation here determines uniquely where it matters.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Activation:
    name: str
    flops: int  # per element, for the FLOP count (a multiply-add counts two)
    derivative: str  # d/dx as a function of the output y (what activation_grad computes)
    constants: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    kinked: bool = False  # not differentiable somewhere: finite differences avoid its kinks
    elementwise: bool = True  # softmax is not: it spans a row, so no GEMM can apply it as it stores

    @property
    def define(self) -> str:
        """The -D option that selects this activation in kernels/common.h."""
        return "ACT_" + self.name.upper()


def _row(name: str, flops: int, derivative: str, **kw) -> Activation:
    if "constants" in kw:
        kw["constants"] = MappingProxyType(dict(kw["constants"]))
    return Activation(name, flops, derivative, **kw)


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (
    _row("linear", 0, "1"),
    _row("relu", 1, "1 if y > 0 else 0", kinked=True),
    # Keras 3's default negative_slope for the leaky_relu activation.
    _row("leaky_relu", 2, "1 if y > 0 else slope", constants={"slope": 0.2}, kinked=True),
    _row("relu6", 2, "1 if 0 < y < max_value else 0", constants={"max_value": 6.0},
         kinked=True),
    _row("elu", 4, "1 if y > 0 else y + alpha", constants={"alpha": 1.0}),
    _row("sigmoid", 4, "y * (1 - y)"),
    _row("tanh", 4, "1 - y * y"),
    _row("softmax", 5, "y * (dy - sum(dy * y)) over the last axis", elementwise=False),
)}

NAMES: tuple[str, ...] = tuple(ACTIVATIONS)


def activation(name: str) -> Activation:
    return ACTIVATIONS[name]


def float_bits(value: float) -> int:
    """A float32 as the signed 32-bit integer with the same bits: how a constant travels in a
    -D option (only integers reach build options); the kernel reads it back with as_float()."""
    return struct.unpack("<i", struct.pack("<f", value))[0]


def kernel_defines(name: str) -> dict[str, int]:
    """The -D options that make kernels/common.h's ACTIVATE(v) this activation.

    `ACT_<NAME>=1` selects it, and each constant comes as `ACT_<CONSTANT>_BITS`.
    """
    act = ACTIVATIONS[name]
    if not act.elementwise:
        raise ValueError(f"activation '{name}' is not element-wise and has no ACTIVATE(v)")
    defines = {act.define: 1}
    for const, value in act.constants.items():
        defines[f"ACT_{const.upper()}_BITS"] = float_bits(value)
    return defines
