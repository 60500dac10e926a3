"""The layer a fused op stands for is one field, `OpDef.base` (cnnc/ir/ops.py): the fusion
passes' maps (cnnc/ir/fused.py, residual.py), the backends' fused tables and the tuner read it."""

from __future__ import annotations

from cnnc.ir.fused import BN_FOLD_ARGS, FOLDED_LAYER
from cnnc.ir.gated import GATED_OF, LAYER_OF_GATED
from cnnc.ir.gathered import GATHERED_OF, LAYER_OF_GATHERED
from cnnc.ir.merges import FUSED_MERGE
from cnnc.ir.ops import OPS, layer_of
from cnnc.ir.residual import LAYER_OF, RESIDUAL_OF


def test_every_fused_op_names_the_op_it_stands_for_and_no_other_op_does():
    from cnnc.ir.act_grad_fused import BASE_OF

    for op in OPS.values():
        if op.group == "fused":
            assert op.base in OPS and op.base != op.name, op.name
            assert OPS[layer_of(op.name)].base is None
            assert OPS[layer_of(op.name)].group in ("layer", "gradient"), op.name
        elif op.name in BASE_OF:  # dy's producer (a gradient op, an add) with the derivative
            assert op.group == "gradient" and op.base == BASE_OF[op.name], op.name
            assert OPS[op.base].group in ("gradient", "layer") and OPS[op.base].base is None, op.name
        else:
            assert op.base is None, op.name
            assert layer_of(op.name) == op.name


def test_the_fusion_maps_are_the_bases_and_cover_every_fused_op():
    assert {OPS[op].base: op for op in FOLDED_LAYER.values()} == FOLDED_LAYER
    assert LAYER_OF == {op: OPS[op].base for op in RESIDUAL_OF.values()}
    assert RESIDUAL_OF == {layer: op for op, layer in LAYER_OF.items()}
    fused = {n for n, op in OPS.items() if op.group == "fused"}
    # batchnorm_train_add: training graphs' fusion (passes/fuse_training.py), its own binding
    assert fused == (set(FOLDED_LAYER.values()) | set(LAYER_OF) | {"batchnorm_train_add"}
                     | set(FUSED_MERGE.values()) | set(LAYER_OF_GATED)
                     | {"concat_shuffle"}  # inference's gather (passes/fuse_shuffle.py)
                     | set(LAYER_OF_GATHERED)  # 1x1 convolutions reading gathers in place
                     | {"depthwise_pointwise"}  # passes/fuse_depthwise_pointwise.py
                     | {"depthwise_layer_norm"}  # passes/fuse_depthwise_layer_norm.py
                     | {"pointwise_depthwise"}  # passes/fuse_pointwise_depthwise.py
                     | {"squeeze_excite"}  # passes/fuse_squeeze_excite.py
                     | {"pointwise_avgpool"}  # passes/fuse_pointwise_avgpool.py
                     | {"avgpool_dense"}  # passes/fuse_avgpool_dense.py
                     | {"dense_pair"}  # passes/fuse_dense_pair.py
                     | {"conv2d_maxpool", "conv2d_avgpool"}  # passes/fuse_conv_maxpool.py
                     | {"conv2d_concat"}  # passes/fuse_conv_concat.py
                     | {"maxpool2d_concat"})  # passes/fuse_pool_concat.py
    assert GATED_OF == {OPS[op].base: op for op in LAYER_OF_GATED}
    assert GATHERED_OF == {OPS[op].base: op for op in LAYER_OF_GATHERED}
    assert FUSED_MERGE == {OPS[op].base: op for op in FUSED_MERGE.values()}
    assert OPS["batchnorm_train_add"].base == "batchnorm_train"
    assert OPS["depthwise_pointwise"].base == "separable_conv2d"
    assert OPS["depthwise_layer_norm"].base == "layer_norm"
    assert OPS["pointwise_depthwise"].base == "separable_conv2d"
    assert OPS["squeeze_excite"].base == "global_avgpool2d"
    assert OPS["pointwise_avgpool"].base == "global_avgpool2d"
    assert OPS["avgpool_dense"].base == "global_avgpool2d"
    assert OPS["dense_pair"].base == "dense"
    assert OPS["conv2d_maxpool"].base == "maxpool2d"
    assert OPS["conv2d_avgpool"].base == "avgpool2d"
    assert OPS["conv2d_concat"].base == "conv2d"
    assert OPS["maxpool2d_concat"].base == "maxpool2d"


def test_folded_ops_are_their_layer_with_the_batch_norms_arguments():
    for layer, folded in FOLDED_LAYER.items():
        assert OPS[folded].args == (*OPS[layer].args, *BN_FOLD_ARGS)
        assert OPS[folded].infer is OPS[layer].infer and OPS[folded].flops is OPS[layer].flops


def test_residual_ops_have_their_layers_arguments():
    for residual, layer in LAYER_OF.items():
        assert OPS[residual].args == OPS[layer].args
        assert layer_of(residual) == layer_of(layer)


def test_layer_of_follows_the_chain_to_the_layer():
    assert layer_of("conv2d_bn_add") == "conv2d"
    assert layer_of("dense_bn_add") == "dense"
    assert layer_of("depthwise_conv2d_bn") == "depthwise_conv2d"
    assert layer_of("batchnorm_train_add") == "batchnorm_train"
    assert layer_of("conv2d") == "conv2d"
