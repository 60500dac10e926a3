"""What the OpenCL backend states about each algorithm of a tunable op: the `Algorithm` record
that algorithms.py registers under (op, algorithm), and the shapes it names (its main launch as
a `Gemm`, the `EdgeShape`s where its tiles break)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cnnc.backends.opencl.launches import BindContext, NodeBinding
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import register_tile, registers_used
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node

Variant = Mapping[str, Any]
Shape = tuple[int, ...]


@dataclass(frozen=True)
class Gemm:
    """What a tunable node's main launch is, as a GEMM: `cols` columns per group (the register
    block's columns must divide them), whether its reduction can be split (kernel gradients),
    whether it may use local tiles (groups == 1, not the transposed product), and its rows,
    columns and reduction length per run (for the split's defaults and for FLOP counts), in
    `groups` such GEMMs (a grouped convolution's)."""

    cols: int
    rows: int
    reduction: int
    split: bool
    local: bool
    step_bytes: int = 0  # bytes one step of a split reduction reads
    groups: int = 1

    @property
    def flops(self) -> int:
        return 2 * self.rows * self.cols * self.reduction * self.groups


@dataclass(frozen=True)
class EdgeShape:
    """A shape worth checking a variant on besides the node's own: the node with new `attrs`,
    its batched operands `inputs` (shapes without the batch) and its other operands `state`,
    at `batch` examples. A residual node's added operand is left out (the tuner's gate adds it,
    shaped like the layer's output)."""

    label: str
    inputs: Mapping[str, Shape]
    state: Mapping[str, Shape]
    attrs: Attrs
    batch: int


def always(node: Node, ctx: BindContext) -> bool:
    return True


def no_variants(node: Node, ctx: BindContext) -> list[dict[str, Any]]:
    return []


def exact(variant: Variant) -> float:
    return 1.0


def no_rows_tile(rows: int, cols: int, target: Target) -> None:
    return None


def no_family(variant: Variant) -> tuple[Any, ...]:
    return ()


def tile_text(variant: Variant) -> str:
    """'4x8x2' and the tile knobs that differ from the defaults ('4x8x2 split=3 no-local')."""
    text = f"{variant.get('MR', '?')}x{variant.get('VW', '?')}x{variant.get('NV', '?')}"
    if "split" in variant:
        text += f" split={variant['split']}"
    if variant.get("row_groups", 1) == 0:
        text += " no-row-groups"
    if variant.get("local", 1) == 0:
        text += " no-local"
    if variant.get("im2col", 1) == 0:
        text += " no-im2col"
    elif "im2col" in variant:
        text += " im2col"
    if variant.get("pad", 0):
        text += " padded"
    if "sync" in variant:
        text += f" sync={variant['sync']}" if variant["sync"] else " no-sync"
    return text


@dataclass(frozen=True)
class Algorithm:
    """One implementation of a tunable op, with everything that belongs to it.

    op, name      the key: the layer op it binds (fused and residual nodes bind as their layer)
                  and the variant's "algo"
    bind          node -> launches, reading the rest of its variant from ctx.variant(node)
    edges         the edge shapes a variant of it is checked on (the tuner's gate)
    gemm          its main launch as a GEMM under a variant, where its register block, row
                  groups, local tiles and split are the tuner's to choose; None: it lists
                  every variant of its own (`variants`)
    applies       whether it can run the node; among those with a GEMM, the first registered
                  that applies is the op's default (what the binders run without a variant)
    variants      its variants beyond the register blocks of its GEMM (all of them, without
                  one), in the order worth timing
    forms         other forms of its GEMM, as variant keys (conv2d's implicit GEMM where few
                  channels would copy the windows out: {"im2col": 0}), each timed with two
                  register blocks
    keys          the integer variant keys of its own, with their ranges (the tuning cache
                  refuses any other); tile_keys: keys holding a register tile of their own
    error_factor  how much larger than a direct sum's its rounding error may be (the gate's
                  tolerance is multiplied by it)
    family        what a variant computes how, tiles aside (the tuner leaves a family that is
                  far slower); registrations sharing a name share it and `describe`
    describe      a variant of it in a few words
    default_where where, among the nodes it applies to, it is the default (a few-rows GEMV
                  that the tuner may pick for 2 to 8 rows but that wins by rule at 1)
    tile          its default register block for a GEMM of so many columns on the target
                  (tiling.register_tile's, unless its work-items share data otherwise)
    rows_tile     a default block for a GEMM of so many rows and columns that takes the place
                  of `tile`'s where it gives one (None: none); default_tile gives either
    registers     the SIMD registers a register block of it holds on a CPU (the tuner's space
                  stays within the device's): tiling.registers_used, a GEMM's
    own_default   its variant for a node, spelled out in full, where its block has keys of its
                  own that `tile` cannot give from the columns alone (grad taps' tap vectors
                  per work-item follow the kernel row): the space's default where it is the
                  default, and its entry among the others where not (None: default_tile's)
    """

    op: str
    name: str
    bind: Callable[[Node, BindContext], NodeBinding]
    edges: Callable[[Node, Graph], list[EdgeShape]]
    describe: Callable[[Variant], str]
    gemm: Callable[[Node, BindContext, Variant], Gemm] | None = None
    applies: Callable[[Node, BindContext], bool] = always
    variants: Callable[[Node, BindContext], list[dict[str, Any]]] = no_variants
    forms: Callable[[Node, BindContext], list[dict[str, Any]]] = no_variants
    keys: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    tile_keys: tuple[str, ...] = ()
    error_factor: Callable[[Variant], float] = exact
    family: Callable[[Variant], tuple[Any, ...]] = no_family
    default_where: Callable[[Node, BindContext], bool] = always
    tile: Callable[[int, Target], dict[str, int]] = register_tile
    registers: Callable[[Mapping[str, Any], Target], int] = registers_used
    rows_tile: Callable[[int, int, Target], dict[str, int] | None] = no_rows_tile
    own_default: Callable[[Node, BindContext], dict[str, Any]] | None = None

    def default_tile(self, gemm: Gemm, target: Target) -> dict[str, int]:
        """The block its binder takes for `gemm` without a tuned one."""
        return self.rows_tile(gemm.rows, gemm.cols, target) or self.tile(gemm.cols, target)
