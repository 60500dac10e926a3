"""What a binding says: kernel launches, their arguments, and the context a binder reads.

A binder (bind.py) turns one node into `Launch`es: kernel file and name, -D defines, global and
local work sizes, and arguments. Arguments name what the runtime passes: a graph value or state
tensor, one of the node's workspaces, the zeros buffer, a scalar, or a scalar the runtime sets
before each run (the step counter, the first example's index), or the table of optimizers'
per-step scalars the runtime writes before each run and where a node's start in it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from math import prod
from typing import Any

from cnnc.backends.opencl.target import GRID_GROUPS, INDEX_MAX, Limits, Target
from cnnc.backends.opencl.tiling import elements_per_item, flat
from cnnc.errors import DeviceError, InternalError
from cnnc.intmath import ceil_div
from cnnc.ir.graph import Graph, Node


@dataclass(frozen=True)
class Value:
    """A graph value or state tensor, by name."""

    name: str


@dataclass(frozen=True)
class Workspace:
    """The node's i-th scratch buffer (planned like any other tensor, live only at this node)."""

    index: int


@dataclass(frozen=True)
class Zeros:
    """A read-only buffer of zeros that padding taps read instead of branching."""


# Scalar arguments, one class per C type (int, uint, float): the runtime passes each at its width.
@dataclass(frozen=True)
class Int:
    value: int


@dataclass(frozen=True)
class UInt:
    value: int


@dataclass(frozen=True)
class Float:
    value: float


@dataclass(frozen=True)
class Step:
    """The run's step counter (uint), set before each run."""


@dataclass(frozen=True)
class FirstIndex:
    """The flat index (uint) of the value's first element within the whole global batch: the
    run's first example times `per_example` elements, set before each run (0 on one device; a
    data-parallel rank's offset otherwise, so that counter-based masks match one device's)."""

    per_example: int


@dataclass(frozen=True)
class UpdateScalars:
    """The update op's per-step scalars (OpDef.scalars), as a pointer to a table of floats the
    runtime writes once before each run for every update node at once: one small copy per step
    instead of a kernel argument per scalar per parameter (host time that grows with the
    number of parameters)."""


@dataclass(frozen=True)
class ScalarsAt:
    """Where the node's scalars start in that table (int), fixed when the graph is bound."""


@dataclass(frozen=True)
class Null:
    """An unused pointer argument (a kernel variant that does not read it)."""


Arg = (Value | Workspace | Zeros | Int | UInt | Float | Step | FirstIndex | UpdateScalars
       | ScalarsAt | Null)
ZEROS, STEP, NULL = Zeros(), Step(), Null()
UPDATE_SCALARS, SCALARS_AT = UpdateScalars(), ScalarsAt()


@dataclass(frozen=True)
class Launch:
    file: str
    kernel: str
    defines: tuple[tuple[str, int], ...]
    global_size: tuple[int, ...]
    local_size: tuple[int, ...] | None
    args: tuple[Arg, ...]
    # Reads only state (and the node's constant workspaces) and writes only the node's constant
    # workspaces: a graph that writes no state runs it once per change of the weights, not
    # every run (a folded batch norm's kernel, a Winograd filter transform).
    once: bool = False

    @property
    def define_map(self) -> dict[str, int]:
        return dict(self.defines)


@dataclass(frozen=True)
class NodeBinding:
    launches: tuple[Launch, ...] = ()
    workspaces: tuple[int, ...] = ()  # floats in each scratch buffer
    view_of: str | None = None  # the output is this input's storage, under another shape
    zeros: int = 0  # floats of zeros the launches may read
    fed: bool = False  # the value is written by the host (input nodes)
    # The workspaces the `once` launches write: kept from one run to the next, where the plan
    # hoists those launches out of the run (plan.py).
    constants: tuple[int, ...] = ()


def redirect(lau: Launch, names: Mapping[Arg, Arg]) -> Launch:
    """`lau` with its arguments renamed by `names` (a fused node's inner binding pointed at its
    workspaces): the same object where none is renamed."""
    args = tuple(names.get(a, a) for a in lau.args)
    return lau if args == lau.args else replace(lau, args=args)


def launch(
    file: str,
    kernel: str,
    global_size: tuple[int, ...],
    args: tuple[Arg, ...],
    defines: Mapping[str, int] | None = None,
    local_size: tuple[int, ...] | None = None,
    *,
    once: bool = False,
) -> Launch:
    return Launch(
        file,
        kernel,
        tuple(sorted((defines or {}).items())),
        tuple(global_size),
        local_size,
        tuple(args),
        once,
    )


def elementwise_launch(
    file: str,
    kernel: str,
    n: int,
    args: tuple[Arg, ...],
    target: Target,
    defines: Mapping[str, int] | None = None,
) -> Launch:
    """A launch of an element-wise kernel (one written with common.h's FOR_ELEMENTS) over n
    elements: ceil(n / ELEMS) work-items of ELEMS elements each."""
    per = elements_per_item(target)
    grid = flat(ceil_div(n, per))
    return launch(file, kernel, grid, args, {**(defines or {}), "ELEMS": per})


@dataclass
class BindContext:
    graph: Graph
    batch: int
    target: Target = field(default_factory=Target)
    # Chosen kernel variants by node name (the tuner's choices, cnnc/tune/); a node not named,
    # or a key a variant leaves out, gets the defaults the binders derive from `target`.
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The launches run inside a chain (chain.py): a kernel whose work-items wait for each
    # other (barriers, local memory) gets work-groups of one work-item, the only ones a chain
    # can run.
    serial: bool = False

    def variant(self, node: Node) -> Mapping[str, Any]:
        return self.variants.get(node.name, {})

    def shape(self, value: str) -> tuple[int, ...]:
        return self.graph.concrete_shape(value, self.batch)

    def numel(self, value: str) -> int:
        return prod(self.shape(value))

    def rows_cols(self, value: str) -> tuple[int, int]:
        """The value seen as a matrix: (product of the leading dimensions, the last one)."""
        shape = self.shape(value)
        return prod(shape[:-1]), shape[-1]


Binder = Callable[[Node, BindContext], NodeBinding]
"""What each op's entry in the binder tables is (bind.py merges the tables of the op groups)."""


def bind_view(node: Node, ctx: BindContext) -> NodeBinding:
    """Same bytes, another shape (flatten, reshape) or the identity (dropout at inference)."""
    return NodeBinding(view_of=node.inputs[0])


def check_launch(node: str, launch: Launch, limits: Limits) -> None:
    """Raise if `launch` (a launches.Launch of `node`) is outside what the device or the kernels'
    int indices allow. The binders stay within these limits; this says so before a run."""
    where = f"node '{node}' ({launch.file}:{launch.kernel})"
    glob, local = launch.global_size, launch.local_size
    for d, n in enumerate(glob):
        if n > INDEX_MAX:
            raise DeviceError(
                f"{where} needs {n:,} work-items in launch dimension {d}, more than the "
                f"{INDEX_MAX:,} cnnc's kernels can index with 32-bit integers",
                hint="lower the batch size (--batch)",
            )
    if local is not None:
        if len(local) != len(glob) or any(g % k for g, k in zip(glob, local)):
            raise InternalError(f"{where}: work-group {local} does not divide the grid {glob}")
        if not limits.group_fits(local):
            raise InternalError(
                f"{where}: work-group {local} exceeds the device's limits (at most "
                f"{limits.max_group} work-items, {limits.max_item_sizes} per dimension)"
            )
    for d, n in enumerate(glob):
        # Without a work-group the driver chooses one: assume the smallest, one work-item.
        groups = ceil_div(n, local[d]) if local is not None else n
        if d > 0 and groups > GRID_GROUPS[d]:
            raise DeviceError(
                f"{where} needs {groups:,} work-groups in launch dimension {d}; some drivers "
                f"allow at most {GRID_GROUPS[d]:,} there",
                hint="this shape is beyond what cnnc's kernels can launch portably",
            )


def check_scalar(node: str, launch: Launch, value: int, unsigned: bool = False) -> None:
    """An integer kernel argument must fit its C type (int, or uint for unsigned)."""
    low, high = (0, 2**32 - 1) if unsigned else (-(2**31), INDEX_MAX)
    if not low <= value <= high:
        raise DeviceError(
            f"node '{node}' ({launch.file}:{launch.kernel}) would pass {value:,} to the kernel, "
            f"outside the range of a 32-bit {'uint' if unsigned else 'int'}",
            hint="lower the batch size (--batch)",
        )
