"""What a vector-Jacobian rule is (autodiff, cnnc/passes): its context, signature and result,
shared by the rule tables (vjp_rules.py, merge_vjp.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from cnnc.ir.graph import Node
from cnnc.ir.ops import Shape

Grads = list["str | None"]


class RuleContext(Protocol):
    def shape(self, value: str) -> Shape: ...

    def part(self, operand: str, op: str, inputs: Sequence[str],
             attrs: Mapping[str, Any] | None = None, *, like: Node) -> str:
        """A node computing one gradient contribution to `operand`."""
        ...

    def add(self, name: str, op: str, inputs: Sequence[str],
            attrs: Mapping[str, Any] | None = None, *, like: Node,
            params: Sequence[str] = ()) -> str:
        """A node (a layer op's parameters in `params`) that no operand's gradient is."""
        ...


Rule = Callable[[RuleContext, Node, "str | None", Sequence[bool]], Grads]
