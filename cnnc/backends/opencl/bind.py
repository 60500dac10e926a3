"""Binding: each op of the graph to the OpenCL kernels that compute it (third stage of the backend).

`BINDERS` maps every op name in the op table to a function that, given a node with concrete
shapes, returns its launches (launches.py): kernel file, kernel name, -D defines (integers only),
global and local sizes, and arguments. The binders live in one module per op group
(bind_layers.py, bind_gradients.py, bind_losses.py, bind_updates.py, and bind_distributed.py for
data-parallel training); the ops with several algorithms are bound by algorithms.py, which
registers each (op, algorithm) once (depthwise convolutions' and their gradients' among them,
bind_depthwise_direct.py and bind_depthwise.py). All are built from the
shared launches of primitives.py and the tile choices of tiling.py. Nothing here touches a device: the runtime builds and enqueues what the
bindings describe, so `cnnc compile --plan` can print them as they are.

Sizes that shape the arithmetic of compute-bound kernels (convolutions, matrix products, pooling
windows) are -D defines, so the compiler unrolls and folds them. The batch size is always a
kernel argument, never a define: the last partial batch of `predict` and every other batch size
reuse the same programs. Memory-bound kernels take their element counts as arguments too, so one
program serves every shape.
"""

from __future__ import annotations

from cnnc.backends.opencl import (
    algorithms,
    bind_act_grad,
    bind_avgpool_dense,
    bind_bn_act_grad,
    bind_channel_shuffle,
    bind_channel_slice,
    bind_clipping,
    bind_conv_concat,
    bind_conv_maxpool,
    bind_dense_pair,
    bind_depthwise_layer_norm,
    bind_distributed,
    bind_ema,
    bind_fused,
    bind_gated,
    bind_gathered,
    bind_global_maxpool,
    bind_gradients,
    bind_layer_norm,
    bind_layers,
    bind_losses,
    bind_lrn,
    bind_merges,
    bind_pointwise_depthwise,
    bind_pool_concat,
    bind_preprocessing,
    bind_regularizers,
    bind_resample,
    bind_residual,
    bind_separable,
    bind_squeeze_excite,
    bind_updates,
)
from cnnc.backends.opencl.launches import BindContext, Binder, NodeBinding
from cnnc.errors import InternalError
from cnnc.ir.graph import Node

# One table per op group, as in cnnc/ir/ and the NumPy backend; tests/opencl/test_bind.py checks
# that together they cover the op table.
BINDERS: dict[str, Binder] = {
    **bind_layers.BINDERS,
    **bind_gradients.BINDERS,
    **algorithms.BINDERS,
    **bind_losses.BINDERS,
    **bind_updates.BINDERS,
    **bind_regularizers.BINDERS,
    **bind_distributed.BINDERS,
    **bind_fused.BINDERS,
    **bind_residual.BINDERS,
    **bind_merges.BINDERS,
    **bind_resample.BINDERS,
    **bind_separable.BINDERS,
}
BINDERS.update({**bind_layer_norm.BINDERS, **bind_global_maxpool.BINDERS,
                **bind_channel_shuffle.BINDERS})
BINDERS.update(bind_channel_slice.BINDERS)
BINDERS.update(bind_gated.BINDERS)
BINDERS.update(bind_depthwise_layer_norm.BINDERS)
BINDERS.update(bind_pointwise_depthwise.BINDERS)
BINDERS.update(bind_gathered.BINDERS)
BINDERS.update(bind_act_grad.BINDERS)
BINDERS.update(bind_preprocessing.BINDERS)
BINDERS.update(bind_clipping.BINDERS)
BINDERS.update(bind_ema.BINDERS)
BINDERS.update(bind_lrn.BINDERS)
BINDERS.update(bind_bn_act_grad.BINDERS)
BINDERS.update(bind_squeeze_excite.BINDERS)
BINDERS.update(bind_conv_maxpool.BINDERS)
BINDERS.update(bind_conv_concat.BINDERS)
BINDERS.update(bind_avgpool_dense.BINDERS)
BINDERS.update(bind_dense_pair.BINDERS)
BINDERS.update(bind_pool_concat.BINDERS)


def bind_node(node: Node, ctx: BindContext) -> NodeBinding:
    try:
        binder = BINDERS[node.op]
    except KeyError:
        # tests/opencl/test_bind.py checks that BINDERS covers the op table
        raise InternalError(f"node '{node.name}': no OpenCL binding for op '{node.op}'") from None
    return binder(node, ctx)
