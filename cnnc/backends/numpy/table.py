"""The NumPy implementation table: one entry per op of cnnc.ir.OPS, keyed by op name."""

from __future__ import annotations

from cnnc.backends.numpy.act_grad_impls import ACT_GRAD_IMPLS
from cnnc.backends.numpy.avgpool_dense_impls import AVGPOOL_DENSE_IMPLS
from cnnc.backends.numpy.bn_act_grad_impls import BN_ACT_GRAD_IMPLS
from cnnc.backends.numpy.call import Impl
from cnnc.backends.numpy.channel_shuffle_impls import CHANNEL_SHUFFLE_IMPLS
from cnnc.backends.numpy.channel_slice_impls import CHANNEL_SLICE_IMPLS
from cnnc.backends.numpy.clipping_impls import CLIPPING_IMPLS
from cnnc.backends.numpy.conv_concat_impls import CONV_CONCAT_IMPLS
from cnnc.backends.numpy.conv_maxpool_impls import CONV_MAXPOOL_IMPLS
from cnnc.backends.numpy.conv_transpose_impls import CONV_TRANSPOSE_IMPLS
from cnnc.backends.numpy.dense_pair_impls import DENSE_PAIR_IMPLS
from cnnc.backends.numpy.depthwise_layer_norm_impls import DEPTHWISE_LAYER_NORM_IMPLS
from cnnc.backends.numpy.depthwise_pointwise_impls import DEPTHWISE_POINTWISE_IMPLS
from cnnc.backends.numpy.distributed_impls import DISTRIBUTED_IMPLS
from cnnc.backends.numpy.ema_impls import EMA_IMPLS
from cnnc.backends.numpy.fused_impls import FUSED_IMPLS
from cnnc.backends.numpy.gated_impls import GATED_IMPLS
from cnnc.backends.numpy.gathered_impls import GATHERED_IMPLS
from cnnc.backends.numpy.global_maxpool_impls import GLOBAL_MAXPOOL_IMPLS
from cnnc.backends.numpy.gradient_impls import GRADIENT_IMPLS
from cnnc.backends.numpy.layer_impls import LAYER_IMPLS
from cnnc.backends.numpy.layer_norm_impls import LAYER_NORM_IMPLS
from cnnc.backends.numpy.loss_impls import LOSS_IMPLS
from cnnc.backends.numpy.lrn_impls import LRN_IMPLS
from cnnc.backends.numpy.merge_impls import MERGE_IMPLS
from cnnc.backends.numpy.pointwise_avgpool_impls import POINTWISE_AVGPOOL_IMPLS
from cnnc.backends.numpy.pointwise_depthwise_impls import POINTWISE_DEPTHWISE_IMPLS
from cnnc.backends.numpy.pool_concat_impls import POOL_CONCAT_IMPLS
from cnnc.backends.numpy.preprocessing_impls import PREPROCESSING_IMPLS
from cnnc.backends.numpy.regularizer_impls import REGULARIZER_IMPLS
from cnnc.backends.numpy.resample_impls import RESAMPLE_IMPLS
from cnnc.backends.numpy.residual_impls import RESIDUAL_IMPLS
from cnnc.backends.numpy.separable_impls import SEPARABLE_IMPLS
from cnnc.backends.numpy.squeeze_excite_impls import SQUEEZE_EXCITE_IMPLS
from cnnc.backends.numpy.update_impls import UPDATE_IMPLS

IMPLS: dict[str, Impl] = {**LAYER_IMPLS, **GRADIENT_IMPLS, **LOSS_IMPLS, **UPDATE_IMPLS,
                          **DISTRIBUTED_IMPLS, **FUSED_IMPLS, **RESIDUAL_IMPLS,
                          **MERGE_IMPLS, **LAYER_NORM_IMPLS, **GLOBAL_MAXPOOL_IMPLS,
                          **CHANNEL_SHUFFLE_IMPLS, **RESAMPLE_IMPLS, **CONV_TRANSPOSE_IMPLS,
                          **SEPARABLE_IMPLS, **CHANNEL_SLICE_IMPLS,
                          **REGULARIZER_IMPLS, **ACT_GRAD_IMPLS}
IMPLS.update(GATED_IMPLS)
IMPLS.update(GATHERED_IMPLS)
IMPLS.update(PREPROCESSING_IMPLS)
IMPLS.update(CLIPPING_IMPLS)
IMPLS.update(EMA_IMPLS)
IMPLS.update(POINTWISE_AVGPOOL_IMPLS)
IMPLS.update(LRN_IMPLS)
IMPLS.update(BN_ACT_GRAD_IMPLS)
IMPLS.update(DEPTHWISE_POINTWISE_IMPLS)
IMPLS.update(POINTWISE_DEPTHWISE_IMPLS)
IMPLS.update(DEPTHWISE_LAYER_NORM_IMPLS)
IMPLS.update(SQUEEZE_EXCITE_IMPLS)
IMPLS.update(CONV_MAXPOOL_IMPLS)
IMPLS.update(CONV_CONCAT_IMPLS)
IMPLS.update(POOL_CONCAT_IMPLS)
IMPLS.update(AVGPOOL_DENSE_IMPLS)
IMPLS.update(DENSE_PAIR_IMPLS)
