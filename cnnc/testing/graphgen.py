"""Hypothesis strategies for random valid layer graphs, shared by the backends' tests.

`layer_decls()` draws a list of cnnc.frontend.lower.LayerDecl: an input, then blocks (conv2d
with random kernel sizes, strides, paddings, dilations and groups; max/avg pooling; batchnorm;
dropout; activations; DAG branches joined by add or concatenate), then optionally a dense head.
Every draw is valid by construction (shapes are tracked as it is built), so `graphs()` always
lowers. Sizes stay small so that interpreters and device kernels run each example quickly.

    from cnnc.testing.graphgen import graphs
    @given(graphs(max_blocks=3))
    def test_something(graph): ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

from cnnc.frontend.lower import LayerDecl, lower
from cnnc.ir.args import ACTIVATIONS
from cnnc.ir.convpool import output_length
from cnnc.ir.graph import Graph

BLOCKS = ("conv", "conv", "pool", "batchnorm", "dropout", "activation", "add", "concat")


@dataclass
class _State:
    """The layer the next block reads, and its (height, width, channels)."""

    decls: list[LayerDecl]
    name: str
    h: int
    w: int
    c: int

    def fresh(self) -> str:
        return f"l{len(self.decls)}"

    def emit(self, op: str, positional: Sequence = (), keywords: dict | None = None,
             inputs: Sequence[str] | None = None) -> str:
        name = self.fresh()
        self.decls.append(LayerDecl(op, list(positional), dict(keywords or {}), name=name,
                                    inputs=list(inputs) if inputs is not None else [self.name]))
        return name


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def _conv(draw, s: _State, activations: Sequence[str], *, same_size: bool = False,
          filters: int | None = None, source: str | None = None) -> tuple[str, int, int, int]:
    """A conv2d reading `source` (default: the current layer); returns (name, h, w, filters)."""
    groups = draw(st.sampled_from(_divisors(s.c)))
    f = filters if filters is not None else groups * draw(st.integers(1, max(1, 6 // groups)))
    if f % groups:
        groups = 1
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    if same_size:
        strides, dilation, padding = (1, 1), (1, 1), "same"
    else:
        strides = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        dilation = (1, 1) if max(strides) > 1 else (draw(st.integers(1, 2)),
                                                    draw(st.integers(1, 2)))
        fits = (dilation[0] * (kh - 1) + 1 <= s.h) and (dilation[1] * (kw - 1) + 1 <= s.w)
        padding = draw(st.sampled_from(["valid", "same"])) if fits else "same"
    kw_ = {"strides": strides, "padding": padding, "dilation_rate": dilation, "groups": groups,
           "activation": draw(st.sampled_from(activations)), "use_bias": draw(st.booleans())}
    name = s.fresh()
    s.decls.append(LayerDecl("conv2d", [f, (kh, kw)], kw_, name=name,
                             inputs=[source or s.name]))
    oh = output_length(s.h, kh, strides[0], padding, dilation[0])
    ow = output_length(s.w, kw, strides[1], padding, dilation[1])
    return name, oh, ow, f


@st.composite
def _pool(draw, s: _State) -> None:
    op = draw(st.sampled_from(["maxpool2d", "avgpool2d"]))
    ph, pw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    strides = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    fits = ph <= s.h and pw <= s.w
    padding = draw(st.sampled_from(["valid", "same"])) if fits else "same"
    s.name = s.emit(op, [(ph, pw)], {"strides": strides, "padding": padding})
    sh, sw = strides if strides is not None else (ph, pw)
    s.h, s.w = output_length(s.h, ph, sh, padding), output_length(s.w, pw, sw, padding)


@st.composite
def _branches(draw, s: _State, activations: Sequence[str], join: str) -> None:
    """Two paths from the current layer, joined: a residual add or a channel concatenation."""
    if join == "add":
        left = s.name if draw(st.booleans()) else draw(_conv(s, activations, same_size=True,
                                                             filters=s.c))[0]
        right = draw(_conv(s, activations, same_size=True, filters=s.c))[0]
        s.name = s.emit("add", inputs=[left, right])
        return
    left, _, _, f1 = draw(_conv(s, activations, same_size=True))
    if draw(st.booleans()):
        right, _, _, f2 = draw(_conv(s, activations, same_size=True))
        s.name = s.emit("concatenate", inputs=[left, right])
        s.c = f1 + f2
    else:
        # along the height: both sides need the same channels
        right, _, _, _ = draw(_conv(s, activations, same_size=True, filters=f1))
        s.name = s.emit("concatenate", keywords={"axis": 1}, inputs=[left, right])
        s.h, s.c = 2 * s.h, f1


@st.composite
def layer_decls(
    draw,
    *,
    max_blocks: int = 4,
    activations: Sequence[str] = ACTIVATIONS,
    blocks: Sequence[str] = BLOCKS,
    head: bool | None = None,
    max_size: int = 7,
    max_channels: int = 4,
) -> list[LayerDecl]:
    h = draw(st.integers(2, max_size))
    w = draw(st.integers(2, max_size))
    c = draw(st.integers(1, max_channels))
    s = _State([LayerDecl("input", [(h, w, c)], name="l0")], "l0", h, w, c)
    for _ in range(draw(st.integers(1, max_blocks))):
        kind = draw(st.sampled_from(blocks))
        if kind == "conv":
            s.name, s.h, s.w, s.c = draw(_conv(s, activations))
        elif kind == "pool":
            draw(_pool(s))
        elif kind == "batchnorm":
            s.name = s.emit("batchnorm", keywords={"center": draw(st.booleans()),
                                                   "scale": draw(st.booleans())})
        elif kind == "dropout":
            s.name = s.emit("dropout", [draw(st.sampled_from([0.0, 0.25, 0.5]))])
        elif kind == "activation":
            s.name = s.emit("activation", [draw(st.sampled_from(activations))])
        else:
            draw(_branches(s, activations, "add" if kind == "add" else "concat"))
    if head is None:
        head = draw(st.booleans())
    if head:
        s.name = s.emit(draw(st.sampled_from(["flatten", "global_avgpool2d"])))
        s.name = s.emit("dense", [draw(st.integers(1, 5))],
                        {"activation": draw(st.sampled_from(activations))})
    return s.decls


def graphs(**options) -> st.SearchStrategy[Graph]:
    """Random valid layer graphs (options as layer_decls)."""
    return layer_decls(**options).map(lambda decls: lower("generated", decls))
