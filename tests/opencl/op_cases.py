"""Small networks that together exercise every op of the op table on odd shapes.

Each case is a YAML-style spec mapping plus the loss and optimizer of its training step, so the
forward graph covers the layer ops and the training graph the gradient, loss and update ops.
Shapes are chosen for edge cases: odd sizes, strides 2 and 3, 'same' padding on even inputs
(one more row of padding at the bottom), dilation, groups, widths that allow only narrow
vectors (5, 6, 7 channels), batch sizes that leave a partial row block; convolutions of up to
4 input channels take the im2col path, wider ones the implicit GEMM (bind.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnc.ir.activations import ACTIVATIONS


@dataclass(frozen=True)
class Case:
    name: str
    input: tuple[int, ...]
    layers: list[Any]
    loss: str = "sparse_categorical_crossentropy"
    optimizer: Any = "sgd"
    batch: int = 3
    outputs: list[str] | None = None

    def spec(self) -> dict[str, Any]:
        d = {"network": self.name, "input": list(self.input), "layers": self.layers}
        if self.outputs:
            d["outputs"] = self.outputs
        return d


CASES = [
    Case(
        "conv_same_even",
        (8, 8, 3),
        [{"conv2d": [4, 3], "padding": "same", "activation": "relu"}],
        loss="mean_squared_error",
    ),
    Case(
        "conv_stride2_same_even",
        (8, 6, 5),
        [{"conv2d": [5, 3], "strides": 2, "padding": "same", "activation": "tanh"}],
        optimizer={"name": "sgd", "momentum": 0.9},
    ),
    Case(
        "conv_valid_odd",
        (7, 9, 2),
        [{"conv2d": [6, [3, 2]], "activation": "sigmoid"}],
        loss="mean_squared_error",
        optimizer={"name": "sgd", "momentum": 0.5, "nesterov": True},
    ),
    Case(
        "conv_dilated",
        (9, 9, 6),
        [{"conv2d": [8, 3], "dilation_rate": 2, "padding": "same", "activation": "elu"}],
        optimizer="adam",
        batch=2,
    ),
    Case(
        "conv_dilated_valid",
        (9, 8, 3),
        [{"conv2d": [7, [2, 3]], "dilation_rate": [2, 1], "activation": "leaky_relu"}],
        optimizer="nadam",
    ),
    Case(
        "conv_groups",
        (6, 6, 8),
        [
            {"conv2d": [8, 3], "groups": 4, "padding": "same", "activation": "relu"},
            {"conv2d": [6, 1], "groups": 2, "use_bias": False, "activation": "softmax"},
        ],
        loss="categorical_crossentropy",
        optimizer="adam",
    ),
    Case(
        "conv_stride_3_big_kernel",
        (11, 10, 1),
        [{"conv2d": [16, 5], "strides": [2, 3], "padding": "same", "activation": "leaky_relu"}],
        batch=5,
    ),
    Case(
        "conv_1x1_wide",
        (4, 4, 16),
        [{"conv2d": [32, 1], "use_bias": False}, {"conv2d": [64, 3], "padding": "same"}],
        batch=2,
    ),
    Case(
        "depthwise_same_multiplier2",
        (7, 6, 5),
        [
            {"depthwise_conv2d": 3, "padding": "same", "depth_multiplier": 2,
             "activation": "relu6"},
            {"conv2d": [6, 1], "activation": "relu6"},
        ],
        loss="mean_squared_error",
        optimizer="adam",
    ),
    Case(
        "depthwise_strided_narrow",
        (9, 8, 3),
        [{"depthwise_conv2d": [3, 2], "strides": 2, "use_bias": False}, {"leaky_relu": 0.1}],
        loss="mean_squared_error",
        batch=2,
    ),
    Case(
        "depthwise_dilated_wide",
        (8, 8, 12),
        [{"depthwise_conv2d": 3, "dilation_rate": 2, "padding": "same", "activation": "tanh"},
         {"ReLU": {"max_value": 0.5, "negative_slope": 0.2, "threshold": -0.1}}],
        optimizer="nadam",
    ),
    # The direct depthwise kernel (depthwise.cl) at its edges: 7 channels (no vector wider
    # than 1 divides them), 'valid'; stride 2 with M = 2 and an odd output; M = 3, whose vector
    # lanes straddle input channels, dilated on one axis, with softmax (not an epilogue).
    Case(
        "depthwise_valid_seven_channels",
        (9, 10, 7),
        [{"depthwise_conv2d": [3, 4], "padding": "valid", "activation": "elu"}],
        loss="mean_squared_error",
    ),
    Case(
        "depthwise_stride2_multiplier2",
        (9, 7, 6),
        [{"depthwise_conv2d": 5, "strides": 2, "padding": "same", "depth_multiplier": 2,
          "activation": "hard_swish"}],
        loss="mean_squared_error",
    ),
    Case(
        "depthwise_dilated_multiplier3_softmax",
        (11, 9, 4),
        [{"depthwise_conv2d": 3, "dilation_rate": [2, 1], "depth_multiplier": 3,
          "activation": "softmax"}],
        loss="mean_squared_error",
        batch=2,
    ),
    # The direct depthwise forward at batch 1 (a 13-wide row, 16 channels: one 16-wide vector,
    # 65 pixels: the last block of pixels runs past the end), and M = 4 on 4 channels (16 lanes
    # from 4 input channels), strided with an odd 'same' padding.
    Case(
        "depthwise_batch1_wide_row",
        (5, 13, 16),
        [{"depthwise_conv2d": 3, "padding": "same", "activation": "relu6"}],
        loss="mean_squared_error",
        batch=1,
    ),
    Case(
        "depthwise_multiplier4_shuffle",
        (7, 9, 4),
        [{"depthwise_conv2d": [2, 3], "strides": [1, 2], "padding": "same",
          "depth_multiplier": 4}],
        loss="mean_squared_error",
        batch=2,
    ),
    # Dense layers on one row run gemv.cl (bind_gemv.py): a reduction of 300 split among a
    # work-group (parts of uneven length) and a 48-wide block; 105 inputs and 20 units (4-wide
    # vectors), then softmax after the product (tests/opencl/test_gemv.py: several rows).
    Case(
        "dense_gemv_batch1",
        (2, 5, 30),
        ["flatten", {"dense": 48, "activation": "relu"}, {"dense": 10, "activation": "softmax"}],
        batch=1,
    ),
    Case(
        "dense_gemv_batch1_odd",
        (3, 5, 7),
        ["flatten", {"dense": 20, "activation": "tanh", "use_bias": False},
         {"dense": 6, "activation": "softmax"}],
        batch=1,
    ),
    Case("conv_softmax", (5, 5, 3), [{"conv2d": [3, 2], "activation": "softmax"}]),
    Case(
        "maxpool",
        (7, 7, 3),
        [
            {"conv2d": [4, 1]},
            {"maxpool2d": 2},
            {"maxpool2d": [3, 3], "strides": 2, "padding": "same"},
        ],
    ),
    Case(
        "maxpool_overlapping",
        (6, 7, 2),
        [{"conv2d": [3, 2], "padding": "same"}, {"maxpool2d": 3, "strides": 1}],
        optimizer="nadam",
    ),
    Case(
        "avgpool",
        (7, 6, 2),
        [
            {"conv2d": [4, 1]},
            {"avgpool2d": 2, "padding": "same"},
            {"avgpool2d": [2, 3], "strides": 1},
        ],
        loss="mean_squared_error",
    ),
    # whole 2x2 windows: one conv2d_avgpool node at inference (cnnc/ir/conv_maxpool.py)
    Case(
        "conv_avgpool",
        (8, 6, 2),
        [{"conv2d": [4, 3], "padding": "same", "activation": "tanh"}, {"avgpool2d": 2}],
        loss="mean_squared_error",
    ),
    # a U-Net's skip: one conv2d_concat node at inference, reading the upsampled part and the
    # skip in place (cnnc/ir/conv_concat.py)
    Case(
        "conv_concat",
        (8, 6, 2),
        [
            {"conv2d": [4, 3], "padding": "same", "activation": "relu", "name": "skip"},
            {"maxpool2d": 2},
            {"conv2d": [6, 3], "padding": "same", "activation": "relu"},
            {"upsampling2d": 2, "name": "up"},
            {"concatenate": None, "inputs": ["up", "skip"]},
            {"conv2d": [4, 3], "padding": "same", "activation": "tanh"},
        ],
        loss="mean_squared_error",
    ),
    # an Inception block's pooled output: one maxpool2d_concat node at inference, the pooling
    # reading the branches where they lie (cnnc/ir/pool_concat.py); 3 + 5 channels: 1-wide
    # vectors
    Case(
        "pool_concat",
        (7, 6, 2),
        [
            {"conv2d": [3, 3], "padding": "same", "activation": "relu", "name": "left",
             "inputs": ["input_layer"]},
            {"conv2d": [5, 1], "activation": "tanh", "name": "right", "inputs": ["input_layer"]},
            {"concatenate": None, "inputs": ["left", "right"]},
            {"maxpool2d": 3, "strides": 2, "padding": "same"},
        ],
        loss="mean_squared_error",
    ),
    Case(
        "zero_padding",
        (5, 6, 3),
        [
            {"zero_padding2d": [[1, 0], [2, 1]]},
            {"conv2d": [4, 3], "strides": 2, "activation": "relu"},
            {"zero_padding2d": 1},
            {"maxpool2d": 3, "strides": 2},
        ],
        loss="mean_squared_error",
    ),
    # ---- resampling and transposed convolutions (cnnc/ir/resample.py, conv_transpose.py)
    Case(
        "cropping_upsampling_nearest",
        (6, 7, 3),
        [
            {"cropping2d": [[1, 0], [2, 1]]},
            {"conv2d": [4, 2], "activation": "relu"},
            {"upsampling2d": [2, 3]},
            {"cropping2d": 1},
            {"conv2d": [3, 3], "strides": 2},
        ],
        loss="mean_squared_error",
    ),
    Case(
        "upsampling_bilinear",
        (3, 5, 5),
        [
            {"upsampling2d": 2, "interpolation": "bilinear"},
            {"conv2d": [6, 3], "padding": "same", "activation": "tanh"},
            {"upsampling2d": [3, 1], "interpolation": "bilinear"},
            {"cropping2d": [2, 0]},
            {"conv2d": [4, 3], "strides": 2},
        ],
        loss="mean_squared_error",
        batch=2,
    ),
    Case(
        "conv_transpose_strided",
        (4, 3, 3),
        [
            {"conv2d_transpose": [5, 3], "strides": 2, "padding": "same", "activation": "relu"},
            {"conv2d_transpose": [6, [2, 3]], "strides": [2, 1], "use_bias": False},
            {"conv2d_transpose": [4, 3], "strides": 2, "output_padding": 1,
             "activation": "tanh"},
            {"conv2d": [3, 3], "strides": 3},
        ],
        loss="mean_squared_error",
    ),
    Case(
        "conv_transpose_valid_dilated",
        (3, 4, 6),
        [
            {"conv2d_transpose": [7, 3], "dilation_rate": 2, "activation": "elu"},
            {"conv2d_transpose": [3, 4], "strides": 3, "output_padding": [2, 0],
             "padding": "same"},
            {"conv2d_transpose": [5, 2], "strides": 2, "padding": "same", "output_padding": 0},
            {"conv2d_transpose": [3, 1], "strides": [3, 2]},
            {"conv2d": [2, 3], "strides": 3},
        ],
        optimizer="adam",
        loss="mean_squared_error",
        batch=2,
    ),
    Case(
        "separable",
        (7, 6, 3),
        [
            {"separable_conv2d": [5, 3], "padding": "same", "depth_multiplier": 2,
             "activation": "relu"},
            {"separable_conv2d": [4, [2, 3]], "strides": 2, "use_bias": False},
            {"separable_conv2d": [6, 2], "dilation_rate": 2, "padding": "same",
             "activation": "tanh"},
        ],
        loss="mean_squared_error",
        optimizer="adam",
    ),
    Case(
        "global_avgpool_dense",
        (5, 6, 3),
        [
            {"conv2d": [8, 3], "activation": "relu"},
            "global_avgpool2d",
            {"dense": 7, "activation": "softmax"},
        ],
        optimizer="nadam",
        batch=9,
    ),
    # 32 channels: the forward pool's float16 vectors on an AVX2 CPU (primitives.py:
    # global_pool_defines, wide), 7 positions.
    Case(
        "global_avgpool_wide",
        (7, 3, 2),
        [
            {"conv2d": [32, [1, 3]], "padding": "same", "activation": "relu"},
            "global_avgpool2d",
            {"dense": 5, "activation": "softmax"},
        ],
    ),
    Case(
        "global_avgpool_keepdims",
        (4, 4, 5),
        [{"global_avgpool2d": None, "keepdims": True}, {"conv2d": [3, 1]}],
        loss="mean_squared_error",
    ),
    Case(
        "dense_stack_dropout",
        (6, 6, 2),
        [
            "flatten",
            {"dense": 24, "activation": "relu"},
            {"dropout": 0.3},
            {"dense": 16, "activation": "tanh"},
            {"dropout": 0.5},
            {"dense": 5, "activation": "softmax"},
        ],
        optimizer="nadam",
        batch=11,
    ),
    Case(
        "dense_rank4",
        (3, 3, 4),
        [{"dense": 6, "activation": "elu"}, {"dense": 3}],
        loss="mean_squared_error",
        optimizer="adam",
    ),
    Case(
        "dense_probabilities",
        (4, 4, 1),
        ["flatten", {"dense": 6, "activation": "sigmoid"}],
        loss="categorical_crossentropy",
        optimizer={"name": "sgd", "momentum": 0.9},
    ),
    Case(
        "dense_probabilities_sparse", (4, 4, 1), ["flatten", {"dense": 5, "activation": "sigmoid"}]
    ),
    Case(
        "batchnorm",
        (5, 5, 6),
        [
            {"conv2d": [6, 3], "padding": "same", "use_bias": False},
            "batchnorm",
            {"activation": "relu"},
            {"batchnorm": None, "center": False},
            {"batchnorm": None, "scale": False, "momentum": 0.9, "epsilon": 0.01},
            {"conv2d": [4, 1]},
        ],
        optimizer="adam",
        batch=4,
    ),
    Case(
        # Inference folds these batch norms into the layer before (conv2d_bn, dense_bn).
        "batchnorm_folded",
        (6, 5, 5),
        [
            {"conv2d": [8, 3], "strides": 2, "padding": "same"},
            {"batchnorm": None, "center": False},
            {"conv2d": [6, 2], "groups": 2, "use_bias": False},
            "batchnorm",
            {"activation": "elu"},
            {"depthwise_conv2d": 2, "depth_multiplier": 2, "padding": "same"},
            {"batchnorm": None, "epsilon": 0.01},
            "flatten",
            {"dense": 9, "use_bias": False},
            {"batchnorm": None, "scale": False},
            {"activation": "relu"},
            {"dense": 3},
        ],
        optimizer="adam",
        batch=5,
    ),
    Case(
        # every element-wise activation of the table, a new one included
        "activations",
        (3, 4, 5),
        [
            *({"activation": a.name} for a in ACTIVATIONS.values() if a.elementwise),
            {"conv2d": [4, 1]},
            {"activation": "softmax"},
        ],
        loss="categorical_crossentropy",
        optimizer="nadam",
    ),
    Case(
        # Issue 20's activations, each carried by a conv2d (trained split from it, as their
        # gradients read the pre-activation: passes/training_mode.py), and a separate
        # `activation swish` layer that inference fuses into the linear conv before it.
        "conv_each_new_activation",
        (6, 5, 3),
        [
            {"conv2d": [5, 3], "padding": "same", "activation": "silu"},
            {"conv2d": [6, 3], "padding": "same", "activation": "hard_sigmoid"},
            {"conv2d": [5, 3], "padding": "same", "activation": "hard_swish"},
            {"conv2d": [6, 1], "activation": "gelu"},
            {"conv2d": [7, 3], "padding": "same", "activation": "gelu_tanh"},
            {"conv2d": [5, [2, 3]], "activation": "softplus"},
            {"conv2d": [6, 3], "padding": "same", "activation": "mish"},
            {"conv2d": [4, 1]},
            {"activation": "swish"},
        ],
        loss="mean_squared_error",
        optimizer="adam",
    ),
    Case(
        # ... and on the other fused paths: depthwise, conv + batch norm (folded at inference),
        # a residual add, dense (+ batch norm) with the activation in its epilogue.
        "new_activations_fused_paths",
        (5, 6, 4),
        [
            {"depthwise_conv2d": 3, "padding": "same", "activation": "hard_silu", "name": "dw"},
            {"conv2d": [4, 3], "padding": "same", "use_bias": False, "name": "c1"},
            {"batchnorm": None, "name": "bn1"},
            {"activation": "gelu", "name": "g1"},
            {"conv2d": [4, 1], "name": "c2"},
            {"add": None, "inputs": ["c2", "dw"], "name": "j1"},
            {"activation": "mish", "name": "m1"},
            {"flatten": None, "name": "flat"},
            {"dense": 7, "activation": "softplus", "name": "d1"},
            {"dense": 6, "use_bias": False, "name": "d2"},
            {"batchnorm": None, "name": "bn2"},
            {"activation": "hard_sigmoid", "name": "h2"},
            {"dense": 3, "activation": "gelu_tanh", "name": "d3"},
        ],
        loss="mean_squared_error",
        optimizer={"name": "sgd", "momentum": 0.9},
        batch=4,
    ),
    Case(
        "add_and_concatenate",
        (6, 6, 3),
        [
            {"conv2d": [4, 3], "padding": "same", "name": "a"},
            {"conv2d": [4, 1], "name": "b", "inputs": ["input_layer"]},
            {"conv2d": [4, 3], "padding": "same", "name": "c", "inputs": ["a"]},
            {"add": None, "inputs": ["a", "b", "c"], "name": "sum"},
            {"concatenate": None, "inputs": ["sum", "b"], "name": "cat"},
            {"concatenate": None, "axis": 1, "inputs": ["cat", "cat"], "name": "rows"},
            {"conv2d": [5, 2], "strides": 2},
        ],
        optimizer="adam",
    ),
    Case(
        # Inference fuses each add into the layer before it (conv2d_add on the im2col path,
        # conv2d_bn_add on the implicit GEMM, dense_add, dense_bn_add) and the activation after.
        "residual_joins",
        (7, 5, 3),
        [
            {"conv2d": [3, 3], "padding": "same", "name": "c1"},
            {"add": None, "inputs": ["c1", "input_layer"], "name": "j1"},
            {"activation": "relu", "name": "r1"},
            {"conv2d": [7, 1], "name": "wide"},
            {"conv2d": [7, 3], "padding": "same", "use_bias": False, "name": "c2"},
            {"batchnorm": None, "name": "bn2"},
            {"add": None, "inputs": ["wide", "bn2"], "name": "j2"},
            {"leaky_relu": 0.2, "name": "r2"},
            {"flatten": None, "name": "flat"},
            {"dense": 6, "name": "d1"},
            {"dense": 6, "name": "d2"},
            {"add": None, "inputs": ["d2", "d1"], "name": "j3"},
            {"activation": "tanh", "name": "r3"},
            {"dense": 6, "use_bias": False, "name": "d3"},
            {"batchnorm": None, "center": False, "name": "bn3"},
            {"add": None, "inputs": ["bn3", "r3"], "name": "j4"},
        ],
        loss="mean_squared_error",
        batch=3,
    ),
    # The broadcasting merges and reshape (cnnc/ir/merges.py, reshapes.py): squeeze-and-excite
    # gates (1, 1, C) from a reshaped dense and from 1x1 convolutions, a (C,) vector against a
    # map (NumPy's trailing-axis rule), n-ary maximum, minimum, average and multiply.
    Case(
        "squeeze_excite_merges",
        (5, 6, 7),
        [
            {"conv2d": [7, 3], "padding": "same", "activation": "tanh", "name": "x"},
            {"global_avgpool2d": None, "name": "squeeze"},
            {"reshape": None, "target_shape": [1, 1, 7], "name": "r"},
            {"dense": 3, "activation": "relu", "name": "fc1"},
            {"dense": 7, "activation": "sigmoid", "name": "gate"},
            {"multiply": None, "inputs": ["x", "gate"], "name": "se"},
            {"global_avgpool2d": None, "keepdims": True, "name": "sq2", "inputs": ["se"]},
            {"conv2d": [3, 1], "activation": "relu", "name": "c1"},
            {"conv2d": [7, 1], "activation": "sigmoid", "name": "gate2"},
            {"multiply": None, "inputs": ["gate2", "se", "gate"], "name": "se2"},
            {"dense": 7, "name": "vec", "inputs": ["squeeze"]},
            {"subtract": None, "inputs": ["se2", "vec"], "name": "sub"},
            {"subtract": None, "inputs": ["vec", "x"], "name": "sub2"},
            {"maximum": None, "inputs": ["sub", "gate2", "sub2"], "name": "max"},
            {"minimum": None, "inputs": ["gate", "max"], "name": "min"},
            {"average": None, "inputs": ["min", "vec", "x"], "name": "avg"},
            {"add": None, "inputs": ["gate2", "avg"], "name": "plus"},
            {"reshape": None, "target_shape": [-1], "name": "flat_gate",
             "inputs": ["gate"]},
            {"add": None, "inputs": ["plus", "flat_gate", "x"], "name": "plus3"},
            {"conv2d": [4, 3], "strides": 2, "name": "out"},
        ],
        loss="mean_squared_error",
        batch=3,
    ),
    Case(
        # Inference fuses each merge with the activation after it (cnnc/passes/fuse_merge.py):
        # the gate and the activation in one launch, broadcasting included.
        "merge_activations",
        (4, 5, 6),
        [
            {"conv2d": [6, 1], "name": "x"},
            {"global_avgpool2d": None, "keepdims": True, "name": "g"},
            {"multiply": None, "inputs": ["x", "g"], "name": "se"},
            {"activation": "relu6", "name": "a1"},
            {"add": None, "inputs": ["a1", "x"], "name": "j"},
            {"activation": "relu", "name": "a2"},
            {"add": None, "inputs": ["a2", "g"], "name": "jb"},
            {"activation": "tanh", "name": "a3"},
            {"subtract": None, "inputs": ["a3", "g"], "name": "d"},
            {"activation": "elu", "name": "a4"},
            {"maximum": None, "inputs": ["a4", "g"], "name": "mx"},
            {"activation": "sigmoid", "name": "a5"},
            {"minimum": None, "inputs": ["a5", "x"], "name": "mn"},
            {"leaky_relu": 0.2, "name": "a6"},
            {"average": None, "inputs": ["a6", "g", "x"], "name": "av"},
            {"activation": "tanh", "name": "a7"},
        ],
        loss="mean_squared_error",
        batch=2,
    ),
]

# Layer norm, global max pooling and channel shuffle (cnnc/ir/layer_norm.py, global_maxpool.py,
# channel_shuffle.py): ConvNeXt's and ShuffleNet's layers.
CASES += [
    Case(
        "layer_norm",
        (4, 5, 6),
        [
            {"conv2d": [7, 3], "padding": "same"},
            "layer_norm",
            {"activation": "relu"},
            {"layer_norm": None, "center": False, "epsilon": 0.01},
            {"layer_norm": None, "scale": False},
            "flatten",
            {"dense": 5},
            {"layer_norm": None, "epsilon": 1e-5},
            {"dense": 3},
        ],
        optimizer="adam",
        batch=3,
    ),
    Case(
        "global_maxpool",
        (5, 4, 6),
        [
            {"conv2d": [5, 3], "padding": "same", "activation": "tanh"},
            {"global_maxpool2d": None, "keepdims": True},
            {"conv2d": [4, 1]},
            "global_maxpool2d",
            {"dense": 3, "activation": "softmax"},
        ],
        optimizer="nadam",
        batch=4,
    ),
    Case(
        "channel_shuffle",
        (4, 3, 6),
        [
            {"conv2d": [6, 1], "name": "pw"},
            {"channel_shuffle": 2, "name": "s2"},
            {"conv2d": [12, 3], "padding": "same", "groups": 3, "name": "gc"},
            {"channel_shuffle": 3, "name": "s3"},
            {"channel_shuffle": 4, "name": "s4"},
            {"conv2d": [5, 2], "strides": 2},
        ],
        loss="mean_squared_error",
        batch=3,
    ),
]

# Channel slice (cnnc/ir/channel_slice.py): ShuffleNetV2's split into two halves, one processed
# and concatenated back before a shuffle; an overlapping slice of the same tensor, so its
# gradient adds into channels another slice also fills; a slice of a dense output (rank 2).
CASES += [
    Case(
        "channel_slice",
        (5, 4, 3),
        [
            {"conv2d": [6, 1], "name": "pw"},
            {"channel_slice": [0, 3], "name": "left", "inputs": ["pw"]},
            {"channel_slice": [3, 6], "name": "right", "inputs": ["pw"]},
            {"conv2d": [3, 3], "padding": "same", "activation": "tanh", "name": "branch",
             "inputs": ["right"]},
            {"channel_slice": [1, 5], "name": "mid", "inputs": ["pw"]},
            {"concatenate": None, "inputs": ["left", "branch", "mid"], "name": "cat"},
            {"channel_shuffle": 2, "name": "shuf"},
            "flatten",
            {"dense": 7},
            {"channel_slice": {"start": 2, "stop": 6}},
        ],
        optimizer="adam",
        batch=3,
    ),
]

# Squeeze-excite products folded into the convolution that reads them at inference
# (cnnc/passes/fold_gate.py, cnnc/ir/gated.py): a (1, 1, C) gate before a strided 3x3
# convolution with padding, before a projection + batch norm + residual (gate as the first
# input) and a conv + residual; a product with two readers (not folded); a map-shaped gate
# (H, W, C) before a valid 3x3 convolution + batch norm; a 3-channel map whose convolution takes
# the im2col path. Batch 3 and 6x5 images: row blocks straddle two examples.
CASES += [
    Case(
        "se_gated_convs",
        (6, 5, 7),
        [
            {"conv2d": [8, 3], "padding": "same", "activation": "tanh", "name": "x"},
            {"global_avgpool2d": None, "keepdims": True, "name": "sq"},
            {"conv2d": [3, 1], "activation": "relu", "name": "fc"},
            {"conv2d": [8, 1], "activation": "sigmoid", "name": "gate"},
            {"multiply": None, "inputs": ["x", "gate"], "name": "se"},
            {"conv2d": [5, 3], "strides": 2, "padding": "same", "name": "c_strided"},
            {"global_avgpool2d": None, "name": "p1"},
            {"multiply": None, "inputs": ["gate", "x"], "name": "se_b"},
            {"conv2d": [8, 1], "use_bias": False, "name": "proj"},
            {"batchnorm": None, "name": "proj_bn"},
            {"add": None, "inputs": ["x", "proj_bn"], "name": "join"},
            {"global_avgpool2d": None, "name": "p2"},
            {"multiply": None, "inputs": ["x", "gate"], "name": "se_c"},
            {"conv2d": [8, 1], "name": "pc"},
            {"add": None, "inputs": ["pc", "x"], "name": "join2"},
            {"activation": "relu", "name": "join2_relu"},
            {"global_avgpool2d": None, "name": "p3"},
            {"multiply": None, "inputs": ["x", "gate"], "name": "se_two"},
            {"conv2d": [4, 1], "activation": "relu", "name": "c_two"},
            {"global_avgpool2d": None, "name": "p4"},
            {"global_avgpool2d": None, "name": "p5", "inputs": ["se_two"]},
            {"conv2d": [8, 1], "activation": "sigmoid", "name": "map_gate", "inputs": ["x"]},
            {"multiply": None, "inputs": ["x", "map_gate"], "name": "se_map"},
            {"conv2d": [6, 3], "use_bias": False, "name": "c_map"},
            {"batchnorm": None, "name": "c_map_bn"},
            {"global_avgpool2d": None, "name": "p6"},
            {"conv2d": [3, 1], "name": "narrow", "inputs": ["x"]},
            {"global_avgpool2d": None, "keepdims": True, "name": "nsq"},
            {"activation": "sigmoid", "name": "ngate"},
            {"multiply": None, "inputs": ["narrow", "ngate"], "name": "se_narrow"},
            {"conv2d": [4, [2, 3]], "activation": "elu", "name": "c_narrow"},
            {"global_avgpool2d": None, "name": "p7"},
            {"concatenate": None, "inputs": ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]},
            {"dense": 4, "activation": "softmax"},
        ],
        optimizer="adam",
        batch=3,
    ),
]

# Optimizer settings (cnnc/ir/updates.py): decoupled weight decay on the kernels with the bias
# and batch norm left undecayed (adamw; sgd with Nesterov momentum), and with every parameter
# decayed (nadam with decay_bias_and_norm); L2 kernel regularizers (l2_penalty in the loss, its
# gradient in the update), with and without decay.
CASES += [
    Case(
        "adamw_decay",
        (5, 5, 3),
        [{"conv2d": [4, 3], "padding": "same"}, "batchnorm", {"activation": "relu"},
         "flatten", {"dense": 3, "activation": "softmax"}],
        optimizer={"name": "adamw", "learning_rate": 0.01, "weight_decay": 0.5},
        batch=2,
    ),
    Case(
        "sgd_nesterov_decay",
        (4, 4, 2),
        [{"conv2d": [3, 3], "strides": 2}, "flatten", {"dense": 4}],
        loss="mean_squared_error",
        optimizer={"name": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
        batch=3,
    ),
    Case(
        "nadam_decay_all",
        (4, 4, 2),
        [{"conv2d": [3, 3]}, "batchnorm", "flatten", {"dense": 3, "activation": "softmax"}],
        optimizer={"name": "nadam", "weight_decay": 0.2, "decay_bias_and_norm": True},
        batch=3,
    ),
    Case(
        "kernel_regularizer_l2",
        (5, 4, 3),
        [{"conv2d": [6, 3], "padding": "same", "kernel_regularizer": ["l2", 0.05]},
         {"activation": "relu"}, "flatten",
         {"dense": 4, "activation": "softmax", "kernel_regularizer": 0.2}],
        optimizer={"name": "sgd", "momentum": 0.9, "weight_decay": 0.1},
        batch=2,
    ),
    Case(
        "kernel_regularizer_adam",
        (4, 4, 2),
        [{"conv2d": [3, 3], "kernel_regularizer": "l2"}, "flatten", {"dense": 3}],
        loss="mean_squared_error",
        optimizer="adam",
        batch=3,
    ),
]

# Preprocessing layers (cnnc/ir/preprocessing.py): rescaling and normalization at the input (no
# gradient needed there) and between layers (their input gradients), per channel on a map and
# on a vector; normalization with one value for every channel and with one per channel.
CASES += [
    Case(
        "preprocessing",
        (5, 4, 3),
        [
            {"rescaling": [0.5, -0.25]},
            {"normalization": None, "mean": [0.1, -0.2, 0.3], "variance": [0.5, 2.0, 1.5]},
            {"conv2d": [5, 3], "padding": "same", "activation": "tanh"},
            {"normalization": None, "mean": 0.25, "variance": 4.0},
            {"rescaling": 1.5},
            {"conv2d": [4, 2], "strides": 2},
            "flatten",
            {"normalization": None, "mean": 0.5, "variance": 0.25},
            {"rescaling": [-2.0, 0.5]},
            {"dense": 3},
        ],
        optimizer="adam",
        batch=3,
    ),
]

# An activation's gradient fused into the op that produces its dy (passes/fuse_act_grad.py,
# bind_act_grad.py), each issue-20 activation on each producer: a 1x1 and a 3x3 conv2d input
# gradient (the implicit GEMM's epilogue), a strided one (the phases: the unfused fallback
# through a scratch buffer), a depthwise one, a dense one (matmul), and a two-input add of
# gradients (add_act_grad); relu from y beside them. Odd widths leave partial vectors; batch 1.
CASES += [
    Case(
        "activation_grads_fused",
        (7, 6, 3),
        [
            {"conv2d": [5, 3], "padding": "same", "activation": "silu", "name": "c1"},
            {"conv2d": [7, 3], "strides": 2, "padding": "same", "activation": "gelu",
             "name": "c2"},
            {"conv2d": [6, 1], "activation": "mish", "name": "c3"},
            {"depthwise_conv2d": 3, "padding": "same", "activation": "hard_swish", "name": "dw"},
            {"conv2d": [5, 3], "padding": "same", "activation": "gelu_tanh", "name": "c4"},
            {"conv2d": [9, 1], "activation": "hard_sigmoid", "name": "h"},
            {"conv2d": [4, 1], "name": "p", "inputs": ["h"]},
            {"conv2d": [4, 3], "padding": "same", "name": "q", "inputs": ["h"]},
            {"add": None, "inputs": ["p", "q"], "name": "pq"},
            {"activation": "softplus", "name": "sp"},
            {"conv2d": [3, 1], "activation": "relu", "name": "r"},
            "flatten",
            {"dense": 7, "activation": "silu", "name": "d1"},
            {"dense": 5, "activation": "relu", "name": "d2"},
            {"dense": 3},
        ],
        loss="mean_squared_error",
        optimizer="adam",
        batch=1,
    ),
]

# layer_norm.cl reads a row VW channels at a time (VW: the widest vector dividing the channels):
# 16, 12, 6 and 10 channels take vectors of 16 (8 on a GPU's tiling: 4), 4, 2 and 2 lanes, with
# and without gamma and beta; batch 1.
CASES += [
    Case(
        "layer_norm_vectors",
        (3, 5, 4),
        [
            {"conv2d": [16, 1]},
            {"layer_norm": None, "epsilon": 1e-5},
            {"conv2d": [12, 1], "activation": "gelu"},
            {"layer_norm": None, "center": False},
            {"conv2d": [6, 3], "padding": "same"},
            {"layer_norm": None, "scale": False},
            "flatten",
            {"dense": 10},
            "layer_norm",
            {"dense": 3},
        ],
        optimizer="adam",
        batch=1,
    ),
]

# Gradient clipping by global norm (cnnc/ir/clipping.py, the optimizer's global_clipnorm): a
# bound below the gradients' norm (the coefficient clips) with momentum SGD and the weights'
# moving average (cnnc/ir/ema.py, use_ema), and one far above it (the coefficient is 1) with
# Adam; gradients of odd sizes, a bias among them.
CASES += [
    Case(
        "clip_global_norm",
        (5, 4, 3),
        [
            {"conv2d": [5, 3], "padding": "same", "activation": "relu"},
            "flatten",
            {"dense": 7, "activation": "tanh"},
            {"dense": 3},
        ],
        optimizer={"name": "sgd", "momentum": 0.9, "global_clipnorm": 0.05, "use_ema": True,
                   "ema_momentum": 0.9},
        batch=3,
    ),
    Case(
        "clip_global_norm_loose",
        (7,),
        [{"dense": 5, "activation": "sigmoid"}, {"dense": 4}],
        optimizer={"name": "adam", "global_clipnorm": 1000.0},
        loss="mean_squared_error",
        batch=4,
    ),
]

# Pooling with ONNX's options (cnnc/ir/convpool.py pool_geometry): explicit asymmetric pads,
# ceil_mode keeping a last partial window (one that reaches past the pads), count_include_pad
# both ways, dilations; the disjoint-window max gradient (scatter) and the overlapping and
# dilated one (gather) both appear.
CASES += [
    Case(
        "pool_onnx_pads_ceil",
        (7, 8, 3),
        [
            {"conv2d": [4, 1]},
            {"maxpool2d": 2, "pads": [1, 0, 0, 1], "ceil_mode": True},
            {"avgpool2d": 3, "strides": 2, "pads": [1, 1, 0, 2], "ceil_mode": True,
             "count_include_pad": True},
        ],
        loss="mean_squared_error",
    ),
    Case(
        "pool_onnx_dilated",
        (9, 8, 2),
        [
            {"conv2d": [3, 1]},
            {"maxpool2d": 2, "strides": 1, "dilation_rate": 2, "pads": [1, 1, 1, 0]},
            {"avgpool2d": [3, 2], "strides": 2, "dilation_rate": [2, 1], "pads": [2, 0, 1, 1],
             "ceil_mode": True},
        ],
        loss="mean_squared_error",
        batch=2,
    ),
    Case(
        "avgpool_same_count_pad",
        (6, 7, 5),
        [{"conv2d": [5, 1]}, {"avgpool2d": 3, "strides": 2, "padding": "same",
                              "count_include_pad": True}],
        loss="mean_squared_error",
    ),
]

# Local response normalisation (cnnc/ir/lrn.py): AlexNet's conv -> relu -> lrn, windows of 5, 3
# and 1 channels over 7 (odd; windows clipped at both ends), one wider than the 5 channels it
# spans, and an lrn of a dense layer's rows. Alphas far above AlexNet's 1e-4, so the gradient
# through the divisors is not lost in the direct term.
CASES += [
    Case(
        "lrn",
        (5, 4, 3),
        [
            {"conv2d": [7, 3], "padding": "same", "activation": "relu"},
            {"lrn": 5, "alpha": 2.0, "beta": 0.75, "bias": 1.0},
            {"lrn": 3, "alpha": 0.5, "beta": 1.5, "bias": 2.0},
            {"conv2d": [5, 1], "activation": "tanh"},
            {"lrn": 9, "alpha": 3.0, "beta": 0.5, "bias": 0.5},
            {"lrn": 1, "alpha": 1.0},
            "flatten",
            {"dense": 6},
            {"lrn": 3, "alpha": 1.0, "beta": 0.75},
            {"dense": 3},
        ],
        optimizer="adam",
        batch=2,
    ),
]

# Batch norm's sums shared by its gradients (cnnc/passes/share_bn_sums.py) and its gradient
# through the activation after it (fuse_bn_act_grad.py): a batch norm with neither parameter,
# whose parameters get no gradient (it keeps batchnorm_grad_input, then relu's activation_grad);
# silu, read from its input, after one with both; gelu after one without beta; one without
# gamma and no activation (batchnorm_grad_sums shared with beta only). 9 channels: vectors of 1
# beside the wider ones of 6 and 8.
CASES += [
    Case(
        "batchnorm_shared_sums",
        (4, 3, 5),
        [
            {"conv2d": [8, 3], "padding": "same", "use_bias": False},
            {"batchnorm": None, "center": False, "scale": False},
            {"activation": "relu"},
            {"conv2d": [9, 1], "use_bias": False},
            {"batchnorm": None, "epsilon": 0.01},
            {"activation": "silu"},
            {"conv2d": [8, 1], "use_bias": False},
            {"batchnorm": None, "center": False},
            {"activation": "gelu"},
            {"conv2d": [6, 1]},
            {"batchnorm": None, "scale": False},
        ],
        loss="mean_squared_error",
        optimizer="adam",
        batch=3,
    ),
]

# Issue 20's training fusions (session 5, T): layer norm's gamma and beta gradients as rows of
# one pass's sums (cnnc/passes/share_ln_sums.py) on 12 and 5 channels (vectors of 4 and 1),
# after the input (no input gradient: the sums alone) and with beta alone (unshared); a
# squeeze-and-excitation input's gradient in one node (fuse_excite_grad.py) behind batch norm +
# silu on 16 channels (vectors of 16) and on 6 channels after a plain convolution (vectors of
# 2), the gate from the pooling through two 1x1 convolutions, as in efficientnet_mini.
CASES += [
    Case(
        "layer_norm_shared_sums",
        (3, 4, 12),
        [
            {"layer_norm": None, "name": "first"},
            {"conv2d": [12, 3], "padding": "same"},
            {"layer_norm": None, "epsilon": 1e-5},
            {"conv2d": [5, 1], "activation": "gelu"},
            {"layer_norm": None},
            {"layer_norm": None, "scale": False},
            "flatten",
            {"dense": 3},
        ],
        loss="mean_squared_error",
        optimizer="adam",
        batch=3,
    ),
    Case(
        "excite_grad",
        (5, 3, 4),
        [
            {"conv2d": [16, 3], "padding": "same", "use_bias": False},
            {"batchnorm": None},
            {"activation": "silu", "name": "x"},
            {"global_avgpool2d": None, "keepdims": True},
            {"conv2d": [4, 1], "activation": "silu"},
            {"conv2d": [16, 1], "activation": "sigmoid", "name": "gate"},
            {"multiply": None, "inputs": ["x", "gate"]},
            {"conv2d": [6, 1], "name": "y"},
            {"global_avgpool2d": None},
            {"dense": 6, "activation": "sigmoid", "name": "gate2"},
            {"multiply": None, "inputs": ["gate2", "y"]},
            {"conv2d": [4, 3], "strides": 2},
        ],
        optimizer="adam",
        batch=3,
    ),
]

# ShuffleNetV2's concatenation, shuffle and split as concat_shuffle gathers at inference
# (cnnc/passes/fuse_shuffle.py): two branches of 6 channels shuffled and split in halves (both
# halves gathered straight from the branches, 3 channels a half: vectors of 1), then three
# branches of 6 shuffled in 3 groups and read whole (vectors of 2); b is read by both joins.
CASES += [
    Case(
        "concat_shuffle",
        (5, 3, 4),
        [
            {"conv2d": [5, 1], "name": "x"},
            {"conv2d": [6, 1], "activation": "relu", "name": "a"},
            {"conv2d": [6, 3], "padding": "same", "name": "b", "inputs": ["x"]},
            {"concatenate": None, "inputs": ["a", "b"], "name": "cat"},
            {"channel_shuffle": 2, "name": "sh"},
            {"channel_slice": [0, 6], "name": "keep", "inputs": ["sh"]},
            {"channel_slice": [6, 12], "name": "half", "inputs": ["sh"]},
            {"conv2d": [6, 1], "activation": "tanh", "name": "c", "inputs": ["half"]},
            {"concatenate": None, "inputs": ["keep", "c", "b"], "name": "cat3"},
            {"channel_shuffle": 3, "name": "sh3"},
            {"conv2d": [4, 3], "padding": "same"},
        ],
        loss="mean_squared_error",
        batch=3,
    ),
]

# The 1x1 convolutions reading those gathers in place at inference (cnnc/ir/gathered.py,
# passes/fuse_shuffle.py), batch norms folded: a split half of 3 + 3 channels of two branches
# (runs of stride 2); a three-group shuffle of 4-channel parts split in halves of 6, its second
# half read through the first split's kept gather from four tensors (runs of stride 3 and 6:
# a, b, c, d); the first half joined with the result and shuffled again, read by a 1x1
# convolution that would need five tensors (more than MAX_SOURCES): it reads the last gather as
# it is, and that gather the ones before it. Batch 5 leaves a partial row block.
CASES += [
    Case(
        "conv_gathered",
        (3, 5, 4),
        [
            {"conv2d": [5, 1], "name": "x"},
            {"conv2d": [5, 1], "activation": "relu", "name": "a"},
            {"conv2d": [5, 3], "padding": "same", "name": "b", "inputs": ["x"]},
            {"concatenate": None, "inputs": ["a", "b"]},
            {"channel_shuffle": 2, "name": "sh"},
            {"channel_slice": [0, 4], "name": "keep", "inputs": ["sh"]},
            {"channel_slice": [4, 10], "inputs": ["sh"]},
            {"conv2d": [4, 1], "use_bias": False},
            {"batchnorm": None},
            {"activation": "relu", "name": "c"},
            {"conv2d": [4, 1], "activation": "tanh", "name": "d", "inputs": ["x"]},
            {"concatenate": None, "inputs": ["keep", "c", "d"]},
            {"channel_shuffle": 3, "name": "sh3"},
            {"channel_slice": [0, 6], "name": "k3", "inputs": ["sh3"]},
            {"channel_slice": [6, 12], "inputs": ["sh3"]},
            {"conv2d": [6, 1], "use_bias": False},
            {"batchnorm": None, "name": "e"},
            {"concatenate": None, "inputs": ["k3", "e"]},
            {"channel_shuffle": 2},
            {"conv2d": [3, 1]},
        ],
        loss="mean_squared_error",
        batch=5,
    ),
]

# A depthwise convolution and the 1x1 convolution reading it as one depthwise_pointwise launch
# at inference (cnnc/passes/fuse_depthwise_pointwise.py): batch norms folded into both parts
# and relu6 after the pointwise one (10 depthwise channels: slices of 2; 6 filters: vectors of
# 2, three a block); a strided, biased hard-swish depthwise part before a linear 7-filter one
# (vectors of 1); a dilated 2x3 window before a tanh; batch 3 leaves a partial pixel block.
CASES += [
    Case(
        "depthwise_pointwise",
        (7, 6, 5),
        [
            {"depthwise_conv2d": 3, "padding": "same", "depth_multiplier": 2,
             "use_bias": False},
            {"batchnorm": None},
            {"conv2d": [6, 1], "use_bias": False},
            {"batchnorm": None},
            {"activation": "relu6"},
            {"depthwise_conv2d": 3, "strides": 2, "padding": "same",
             "activation": "hard_swish"},
            {"conv2d": [7, 1]},
            {"depthwise_conv2d": [2, 3], "dilation_rate": 2, "padding": "same"},
            {"conv2d": [4, 1], "activation": "tanh"},
        ],
        loss="mean_squared_error",
        batch=3,
    ),
]

# A depthwise convolution and the layer norm over its channels as one depthwise_layer_norm launch
# at inference (cnnc/passes/fuse_depthwise_layer_norm.py): ConvNeXt's 7x7 block on a 5x6 map of
# 12 channels (vectors of 4), then a strided, biasless gelu 3x3 one of 5 channels (vectors of 1)
# normalised without beta; training runs them as the two layers.
CASES += [
    Case(
        "depthwise_layer_norm",
        (5, 6, 12),
        [
            {"depthwise_conv2d": 7, "padding": "same"},
            {"layer_norm": None, "epsilon": 1e-6},
            {"conv2d": [5, 1], "activation": "gelu"},
            {"depthwise_conv2d": 3, "strides": 2, "padding": "same", "use_bias": False,
             "activation": "gelu"},
            {"layer_norm": None, "center": False},
            "flatten",
            {"dense": 3},
        ],
        optimizer="adam",
        batch=3,
    ),
]

# A 1x1 expansion and the strided depthwise convolution reading it as one pointwise_depthwise
# launch at inference (cnnc/passes/fuse_pointwise_depthwise.py): an MBConv-like 6 -> 24 silu
# expansion and a 3x3 stride-2 silu depthwise on a 7x6 map (vectors of 8 on a CPU, a short
# last column block), then a 5 -> 10 one, biasless, and a 'valid' stride-2 depthwise (vectors of
# 2); training runs them as the two layers.
CASES += [
    Case(
        "pointwise_depthwise",
        (7, 6, 6),
        [
            {"conv2d": [24, 1], "activation": "silu"},
            {"depthwise_conv2d": 3, "strides": 2, "padding": "same", "activation": "silu"},
            {"conv2d": [5, 1]},
            {"conv2d": [10, 1], "use_bias": False, "activation": "relu"},
            {"depthwise_conv2d": 3, "strides": 2, "padding": "valid"},
            "flatten",
            {"dense": 3},
        ],
        optimizer="adam",
        batch=3,
    ),
]

