"""ONNX export: the activations that have no operator at the file's opset, written as the
element-wise nodes PyTorch's TorchScript exporter writes for them (and onnx_patterns.py reads
back as one activation).

    silu        Sigmoid, Mul(x, s)                     (Swish from opset 24)
    hard_swish  HardSigmoid(1/6, 0.5), Mul(x, h)      (HardSwish from opset 14)
    gelu        Div(x, sqrt 2), Erf, Add 1, Mul x, Mul 0.5          (Gelu from opset 20)
    gelu_tanh   x * (x * x), Mul c, Add x, Mul sqrt(2/pi), Tanh, Add 1, Mul x, Mul 0.5
    mish        Softplus, Tanh, Mul(x, t)              (Mish from opset 18)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from cnnc.ir.activations import ACTIVATIONS, GELU_TANH_C, GELU_TANH_K


def _const(ex: Any, name: str, value: float) -> str:
    return ex.weight(name, np.array(value, dtype=np.float32))


def _silu(ex: Any, src: str, dst: str, name: str) -> None:
    ex.add("Sigmoid", [src], [f"{name}/sigmoid"], f"{name}/sigmoid")
    ex.add("Mul", [src, f"{name}/sigmoid"], [dst], name)


def _hard_swish(ex: Any, src: str, dst: str, name: str) -> None:
    ex.add("HardSigmoid", [src], [f"{name}/hard_sigmoid"], f"{name}/hard_sigmoid",
           **ACTIVATIONS["hard_sigmoid"].constants)
    ex.add("Mul", [src, f"{name}/hard_sigmoid"], [dst], name)


def _gelu_tail(ex: Any, src: str, inner: str, dst: str, name: str) -> None:
    """x * (1 + inner) * 0.5, as Add(inner, 1), Mul(x, .), Mul(., 0.5)."""
    ex.add("Add", [inner, _const(ex, f"{name}/one", 1.0)], [f"{name}/plus1"], f"{name}/plus1")
    ex.add("Mul", [src, f"{name}/plus1"], [f"{name}/times_x"], f"{name}/times_x")
    ex.add("Mul", [f"{name}/times_x", _const(ex, f"{name}/half", 0.5)], [dst], name)


def _gelu(ex: Any, src: str, dst: str, name: str) -> None:
    ex.add("Div", [src, _const(ex, f"{name}/sqrt2", math.sqrt(2))], [f"{name}/scaled"],
           f"{name}/scaled")
    ex.add("Erf", [f"{name}/scaled"], [f"{name}/erf"], f"{name}/erf")
    _gelu_tail(ex, src, f"{name}/erf", dst, name)


def _gelu_tanh(ex: Any, src: str, dst: str, name: str) -> None:
    ex.add("Mul", [src, src], [f"{name}/x2"], f"{name}/x2")
    ex.add("Mul", [src, f"{name}/x2"], [f"{name}/x3"], f"{name}/x3")
    ex.add("Mul", [_const(ex, f"{name}/c", GELU_TANH_C), f"{name}/x3"], [f"{name}/cx3"],
           f"{name}/cx3")
    ex.add("Add", [src, f"{name}/cx3"], [f"{name}/poly"], f"{name}/poly")
    ex.add("Mul", [_const(ex, f"{name}/k", GELU_TANH_K), f"{name}/poly"], [f"{name}/u"],
           f"{name}/u")
    ex.add("Tanh", [f"{name}/u"], [f"{name}/tanh"], f"{name}/tanh")
    _gelu_tail(ex, src, f"{name}/tanh", dst, name)


def _mish(ex: Any, src: str, dst: str, name: str) -> None:
    ex.add("Softplus", [src], [f"{name}/softplus"], f"{name}/softplus")
    ex.add("Tanh", [f"{name}/softplus"], [f"{name}/tanh"], f"{name}/tanh")
    ex.add("Mul", [src, f"{name}/tanh"], [dst], name)


# activation -> the writer of its decomposition, used below its row's `onnx_since`.
DECOMPOSITIONS: dict[str, Callable[[Any, str, str, str], None]] = {
    "silu": _silu,
    "hard_swish": _hard_swish,
    "gelu": _gelu,
    "gelu_tanh": _gelu_tanh,
    "mish": _mish,
}
