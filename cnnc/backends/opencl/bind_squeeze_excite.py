"""Binder of squeeze_excite (cnnc/ir/squeeze_excite.py): node -> one kernels/squeeze_excite.cl
launch, a work-group per example holding its pooled and hidden vectors in local memory.

The group's shape is the device's: on a CPU one work-item (pocl runs a group's work-items as a
loop, so more would only add the barriers' splits; the work-groups, one per example, fill the
cores) whose pool reads vectors up to two registers wide, as global_avgpool2d's forward kernel
does, and whose layers take the widest vectors dividing their units; on a GPU up to GPU_GROUP
work-items over the channel vectors, the positions split into stripes where the channels leave
work-items idle, within the device's work-group size and local memory.
"""

from __future__ import annotations

from cnnc.backends.opencl.launches import NULL, BindContext, NodeBinding, Value, launch
from cnnc.backends.opencl.primitives import global_pool_defines
from cnnc.backends.opencl.target import Target
from cnnc.backends.opencl.tiling import FLOAT_BYTES, vector_width
from cnnc.errors import DeviceError
from cnnc.ir.activations import kernel_defines
from cnnc.ir.graph import Node
from cnnc.ir.squeeze_excite import parts

GPU_GROUP = 128  # work-items per group on a GPU: a few warps over the channel vectors


def group_shape(hw: int, c: int, r: int, target: Target) -> dict[str, int]:
    """LS work-items per group, PS position stripes and the vector widths VW (pool), VR and VG
    (layers) for an (HW, C) map and R hidden units, within the target's limits."""
    limits = target.limits
    pool = global_pool_defines((1, hw, 1, c), target, wide=True)
    vw = pool["VW"]
    if target.kind == "cpu":
        ls, ps = 1, 1
    else:
        cap = min(GPU_GROUP, limits.max_group, limits.max_item_sizes[0])
        ls = 1
        while 2 * ls <= cap and ls < c // vw * hw:  # no work-item without a vector to sum
            ls *= 2
        ps = max(1, min(ls // (c // vw), hw))
        while ps > 1 and (ps * c + r) * FLOAT_BYTES > limits.local_memory:
            ps -= 1
    return {"LS": ls, "PS": ps, "VW": vw}


def bind_squeeze_excite(node: Node, ctx: BindContext) -> NodeBinding:
    x = node.inputs[0]
    _, h, w, c = ctx.shape(x)
    _, hidden, gate = parts(node, ctx.shape(x))
    r, g = hidden.shape[-1], node.shape[-1]
    target = ctx.target
    shape = group_shape(h * w, c, r, target)
    need = (shape["PS"] * c + r) * FLOAT_BYTES
    if need > target.limits.local_memory:
        raise DeviceError(f"node '{node.name}' (squeeze_excite.cl): the pooled and hidden "
                          f"vectors need {need:,} bytes of local memory, the device has "
                          f"{target.limits.local_memory:,}",
                          hint="the block fuses only up to a few thousand channels")
    ls = shape["LS"]
    vr = vector_width(r, target) if ls == 1 else 1
    vg = vector_width(g, target) if ls == 1 else 1
    b1 = Value(hidden.params[1]) if hidden.attrs["use_bias"] else NULL
    b2 = Value(gate.params[1]) if gate.attrs["use_bias"] else NULL
    defines = {"HW": h * w, "C": c, "R": r, "G": g, **shape, "VR": vr, "VG": vg,
               "HAS_B1": int(b1 != NULL), "HAS_B2": int(b2 != NULL),
               "GATE_HARD_SIGMOID": int(gate.attrs["activation"] == "hard_sigmoid"),
               **kernel_defines(hidden.attrs["activation"])}
    args = (Value(x), Value(hidden.params[0]), b1, Value(gate.params[0]), b2, Value(node.name))
    grid = (ctx.batch * ls,)
    return NodeBinding((launch("squeeze_excite.cl", "squeeze_excite", grid, args, defines,
                               (ls,)),))


BINDERS = {"squeeze_excite": bind_squeeze_excite}
