"""Binding: each op of the graph to the OpenCL kernels that compute it (third stage of the backend).

`BINDERS` maps every op name in the op table to a function that, given a node with concrete
shapes, returns its launches (launches.py): kernel file, kernel name, -D defines (integers only),
global and local sizes, and arguments. The binders live in bind_layers.py (spec ops) and
bind_train.py (gradients, losses, updates), built from the shared launches of primitives.py and
the tile choices of tiling.py. Nothing here touches a device: the runtime builds and enqueues
what the bindings describe, so `cnnc compile --plan` can print them as they are.

Sizes that shape the arithmetic of compute-bound kernels (convolutions, matrix products, pooling
windows) are -D defines, so the compiler unrolls and folds them. The batch size is always a
kernel argument, never a define: the last partial batch of `predict` and every other batch size
reuse the same programs. Memory-bound kernels take their element counts as arguments too, so one
program serves every shape.
"""

from __future__ import annotations

from collections.abc import Callable

from cnnc.backends.opencl.bind_layers import (
    bind_activation,
    bind_add,
    bind_batchnorm,
    bind_concatenate,
    bind_conv2d,
    bind_dense,
    bind_global_avgpool2d,
    bind_input,
    bind_pool,
    bind_view,
    bind_zero_padding2d,
)
from cnnc.backends.opencl.bind_train import (
    bind_activation_grad,
    bind_avgpool2d_grad,
    bind_batchnorm_grad_gamma,
    bind_batchnorm_grad_input,
    bind_batchnorm_stats,
    bind_batchnorm_train,
    bind_bias_grad,
    bind_conv2d_grad_input,
    bind_conv2d_grad_kernel,
    bind_dense_grad_input,
    bind_dense_grad_kernel,
    bind_dropout_mask,
    bind_global_avgpool2d_grad,
    bind_maxpool2d_grad,
    bind_mean_squared_error_grad,
    bind_moving_average_update,
    bind_optimizer_update,
    bind_row_loss,
    bind_row_loss_grad,
    bind_slice,
)
from cnnc.backends.opencl.launches import BindContext, NodeBinding
from cnnc.errors import InternalError
from cnnc.ir.graph import Node

Binder = Callable[[Node, BindContext], NodeBinding]

BINDERS: dict[str, Binder] = {
    # layers
    "input": bind_input,
    "conv2d": bind_conv2d,
    "maxpool2d": bind_pool,
    "avgpool2d": bind_pool,
    "global_avgpool2d": bind_global_avgpool2d,
    "zero_padding2d": bind_zero_padding2d,
    "dense": bind_dense,
    "flatten": bind_view,
    "dropout": bind_view,
    "batchnorm": bind_batchnorm,
    "activation": bind_activation,
    "add": bind_add,
    "concatenate": bind_concatenate,
    # training
    "activation_grad": bind_activation_grad,
    "conv2d_grad_input": bind_conv2d_grad_input,
    "conv2d_grad_kernel": bind_conv2d_grad_kernel,
    "bias_grad": bind_bias_grad,
    "dense_grad_input": bind_dense_grad_input,
    "dense_grad_kernel": bind_dense_grad_kernel,
    "maxpool2d_grad": bind_maxpool2d_grad,
    "avgpool2d_grad": bind_avgpool2d_grad,
    "global_avgpool2d_grad": bind_global_avgpool2d_grad,
    "reshape": bind_view,
    "slice": bind_slice,
    "dropout_train": bind_dropout_mask,
    "dropout_grad": bind_dropout_mask,
    "batchnorm_stats": bind_batchnorm_stats,
    "batchnorm_train": bind_batchnorm_train,
    "batchnorm_grad_input": bind_batchnorm_grad_input,
    "batchnorm_grad_gamma": bind_batchnorm_grad_gamma,
    # losses
    "softmax_cross_entropy": bind_row_loss,
    "softmax_cross_entropy_grad": bind_row_loss_grad,
    "cross_entropy": bind_row_loss,
    "cross_entropy_grad": bind_row_loss_grad,
    "mean_squared_error": bind_row_loss,
    "mean_squared_error_grad": bind_mean_squared_error_grad,
    # updates
    "moving_average_update": bind_moving_average_update,
    "sgd_update": bind_optimizer_update,
    "adam_update": bind_optimizer_update,
    "nadam_update": bind_optimizer_update,
}


def bind_node(node: Node, ctx: BindContext) -> NodeBinding:
    try:
        binder = BINDERS[node.op]
    except KeyError:
        # tests/opencl/test_bind.py checks that BINDERS covers the op table
        raise InternalError(f"node '{node.name}': no OpenCL binding for op '{node.op}'") from None
    return binder(node, ctx)
