"""Vector-Jacobian rules of the broadcasting merges and of reshape (autodiff, cnnc/passes):
merged into vjp_rules.VJP_RULES. A broadcast operand's gradient is summed back to its shape."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cnnc.ir.graph import Node
from cnnc.passes import names
from cnnc.passes.vjp_types import Grads, Rule, RuleContext


def _summed(cx: RuleContext, node: Node, dy: str, x: str, scale: float) -> str:
    """scale * dy summed to x's shape; dy itself where nothing is to be done."""
    if scale == 1.0 and cx.shape(x) == cx.shape(node.name):
        return dy
    return cx.part(x, "unbroadcast", (dy,),
                   {"input_shape": cx.shape(x)[1:], "scale": scale}, like=node)


def _linear(scales: Callable[[int, int], float]) -> Rule:
    """add, subtract, average: each operand's gradient is dy times a constant."""
    def rule(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
        n = len(node.inputs)
        return [_summed(cx, node, dy, x, scales(i, n)) if need else None
                for i, (x, need) in enumerate(zip(node.inputs, needs, strict=True))]
    return rule


def _multiply(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    out: Grads = []
    for i, (x, need) in enumerate(zip(node.inputs, needs, strict=True)):
        if not need:
            out.append(None)
            continue
        rest = node.inputs[:i] + node.inputs[i + 1:]
        other = rest[0] if len(rest) == 1 else cx.add(
            f"{names.grad(node.name)}/others{i}", "multiply", rest, like=node)
        out.append(cx.part(x, "multiply_grad", (dy, other),
                           {"input_shape": cx.shape(x)[1:]}, like=node))
    return out


def _extremum(op: str) -> Rule:
    """maximum, minimum: the left fold of the binary op, differentiated step by step from the
    last (ties share evenly at each step, as PyTorch's binary torch.maximum does)."""
    def rule(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
        xs = node.inputs
        folds = [xs[0]]  # folds[k] = op(x0 .. xk)
        for k in range(1, len(xs) - 1):
            folds.append(cx.add(f"{names.grad(node.name)}/fold{k}", op,
                                (folds[-1], xs[k]), like=node))
        out: Grads = [None] * len(xs)
        g = dy
        for k in range(len(xs) - 1, 0, -1):
            left = folds[k - 1]
            if needs[k]:
                out[k] = cx.part(xs[k], f"{op}_grad", (g, xs[k], left),
                                 {"input_shape": cx.shape(xs[k])[1:]}, like=node)
            if not any(needs[:k]):
                break
            g_left = (cx.part(left, f"{op}_grad", (g, left, xs[k]),
                              {"input_shape": cx.shape(left)[1:]}, like=node) if k == 1 else
                      cx.add(f"{names.grad(node.name)}/fold{k - 1}_grad", f"{op}_grad",
                             (g, left, xs[k]), {"input_shape": cx.shape(left)[1:]}, like=node))
            if k == 1:
                out[0] = g_left if needs[0] else None
            g = g_left
        return out
    return rule


def _reshape(cx: RuleContext, node: Node, dy: str, needs: Sequence[bool]) -> Grads:
    (x,) = node.inputs
    return [cx.part(x, "view", (dy,), {"shape": cx.shape(x)[1:]}, like=node)]


MERGE_RULES: dict[str, Rule] = {
    "add": _linear(lambda i, n: 1.0),
    "subtract": _linear(lambda i, n: -1.0 if i == 1 else 1.0),
    "average": _linear(lambda i, n: 1.0 / n),
    "multiply": _multiply,
    "maximum": _extremum("maximum"),
    "minimum": _extremum("minimum"),
    "reshape": _reshape,
}
