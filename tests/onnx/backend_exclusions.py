"""The reviewed list of ONNX node cases that cnnc's backend does not run, each with its reason.

ONNX's node cases (onnx.backend.test.case.node) exercise an operator on arbitrary tensors; cnnc
compiles CNN graphs: float32 values of shape (batch, features) or (batch, C, H, W), whose first
axis is the batch, computed by layers. A case of an operator cnnc claims (onnx_ops.RULES) is
excluded here only for one of these reasons, and test_onnx_backend_suite.py runs every other one,
which must pass:

- SHAPE: its data is 1-D, 3-D or 5-D for an operator that reads axes (1-D/3-D convolution and
  pooling, softmax, concatenation, reshapes), or its result is not a value cnnc computes (a
  constant, an input); element-wise graphs run on any rank (cnnc.onnx_backend folds them);
- BATCH: it computes across the batch axis (concatenates, flattens, transposes or broadcasts
  along it), which a network does not;
- DTYPE: it computes in a type cnnc does not (integers, float16/64, bfloat16, float8/4, bool);
- ATTRIBUTE: an attribute, mode or operand form outside cnnc's layers (cubic resampling,
  constant padding other than 0, transposed convolution with groups, Elu's alpha other than 1,
  a quotient of two computed tensors, ...), refused by the importer with that reason.

Cases that another branch makes pass (ONNX pooling semantics: explicit pads, dilations) are in
EXPECTED_FAILURES instead, so that they fail loudly as unexpected successes once it merges.
Patterns are regular expressions searched in the case's name (`test_<case>_cpu`).
"""

from __future__ import annotations

SHAPE = "a shape cnnc does not take"
BATCH = "computes across the batch axis"
DTYPE = "a dtype cnnc does not compute (cnnc computes float32)"
ATTRIBUTE = "an attribute outside cnnc's model"

EXCLUSIONS: dict[str, str] = {
    # ---------------------------------------------------------------- DTYPE
    r"^test_cast(like)?_": f"{DTYPE}: every Cast case converts to or from a type other than "
                          "float32 (cnnc's float32 -> float32 Cast is the identity)",
    r"^test_(add|sub|mul|div|max|min)_u?int(8|16|32|64)(_|$)": f"{DTYPE}: integer arithmetic",
    r"^test_div_int32_trunc": f"{DTYPE}: integer division",
    r"^test_(max|min)_float(16|64)_": f"{DTYPE}: float16/float64 inputs",
    r"^test_clip_default_int8_": f"{DTYPE}: int8 inputs",
    r"^test_maxpool_2d_uint8": f"{DTYPE}: uint8 inputs",
    r"^test_(edge|reflect|wrap)_pad_": f"{DTYPE}: int32 inputs (and non-constant pad modes)",
    r"^test_training_dropout": f"{DTYPE}: a bool training_mode input: training-mode dropout "
                               "draws random masks, which no reference output can state",
    r"^test_dropout_default_mask": f"{DTYPE}: the bool mask output is read",
    # ---------------------------------------------------------------- SHAPE
    r"^test_(max|min|mean|sum)_one_input_": f"{SHAPE}: of one input the output is the input "
                                            "itself; cnnc outputs computed values",
    r"^test_clip_default_inbounds(_expanded)?_cpu": f"{SHAPE}: Clip without bounds is the "
                                                    "identity: the output is the input itself",
    r"^test_concat_(1d|3d)_": f"{SHAPE}: 1-D/3-D operands",
    r"^test_(averagepool|maxpool)_1d_": f"{SHAPE}: 1-D pooling",
    r"^test_(averagepool|maxpool)_3d_": f"{SHAPE}: 3-D (volumetric) pooling",
    r"^test_convtranspose_(1d|3d)_": f"{SHAPE}: 1-D/3-D transposed convolution",
    r"^test_matmul_(1d_1d|1d_3d|3d)_": f"{SHAPE}: 1-D/3-D products",
    r"^test_softmax_(axis_[012]|default_axis|negative_axis)_": f"{SHAPE}: 3-D data",
    r"^test_split_(1d|equal_parts_1d|equal_parts_default_axis|variable_parts_1d"
    r"|variable_parts_default_axis|zero_size_splits)": f"{SHAPE}: 1-D data",
    r"^test_reduce_mean_": f"{SHAPE}: 3-D data",
    r"^test_reduce_max_(keepdims|do_not|default|negative)": f"{SHAPE}: 3-D data",
    r"^test_reduce_max_empty_set_cpu": f"{SHAPE}: 3-D data with an empty axis",
    r"^test_reduce_max_(bool_inputs|empty_set_bool)": f"{DTYPE}: bool inputs",
    r"^test_layer_normalization_\dd_|^test_layer_normalization_default_axis_cpu":
        f"{SHAPE}: every case also outputs Mean and InvStdDev, statistics a network's "
        "LayerNormalization does not use and cnnc does not compute (cnnc takes Y alone)",
    r"^test_reshape_": f"{SHAPE}: 3-D data",
    r"^test_slice": f"{SHAPE}: 3-D data",
    r"^test_transpose_": f"{SHAPE}: 3-D data",
    r"^test_gather_": f"{SHAPE}: gathering rows of a tensor (or 1-D data); cnnc gathers "
                      "constants only",
    r"^test_shape": f"{SHAPE}: Shape's result is an int64 constant (3-D data for most); cnnc "
                    "outputs computed float tensors",
    r"^test_identity_cpu": f"{SHAPE}: the output is the input itself; cnnc outputs computed "
                           "values",
    r"^test_identity_(opt|sequence)_": f"{SHAPE}: optional and sequence values",
    r"^test_matmul_(4d|4d_1d|bcast)_": f"{SHAPE}: batched 4-D products (cnnc's products are "
                                       "(batch, features) x (features, units))",
    # ---------------------------------------------------------------- BATCH
    r"^test_concat_2d_axis_(0|negative_2)_": f"{BATCH}: concatenation along axis 0",
    r"^test_flatten_(axis0|negative_axis4)_": f"{BATCH}: flattening the batch axis into one row",
    r"^test_flatten_(axis2|axis3|negative_axis1|negative_axis2)_":
        f"{BATCH}: axis >= 2 keeps channels in the batch dimension",
    r"^test_gemm_(all_attributes|transposeA)_": f"{BATCH}: transA=1 reduces over the batch",
    r"^test_gemm_default_matrix_bias_": f"{BATCH}: a (batch, units) bias",
    # ---------------------------------------------------------------- ATTRIBUTE
    r"^test_batchnorm_\w*training_mode": f"{ATTRIBUTE}: batch normalisation in training mode "
                                         "(cnnc imports it for inference)",
    r"^test_constant_pad": f"{ATTRIBUTE}: padding with a constant other than 0",
    r"^test_clip(_default_max|_example|_inbounds|_min_greater_than_max|_outbounds|_splitbounds)?"
    r"_cpu": f"{ATTRIBUTE}: bounds other than (0, max) (cnnc's Clip is a capped relu)",
    r"^test_div(_bcast|_example)?_cpu": f"{ATTRIBUTE}: a quotient of two computed tensors (cnnc "
                                        "divides by constants only)",
    r"^test_elu(_example)?_cpu": f"{ATTRIBUTE}: alpha other than 1 (Keras' elu)",
    r"^test_convtranspose_group_2": f"{ATTRIBUTE}: grouped transposed convolution",
    r"^test_convtranspose_output_shape_": f"{ATTRIBUTE}: an output_shape larger than the windows "
                                          "reach (negative total padding)",
    r"^test_maxpool_with_argmax_": f"{ATTRIBUTE}: MaxPool's Indices output",
    r"^test_resize_\w*cubic": f"{ATTRIBUTE}: cubic resampling",
    r"^test_resize_downsample_": f"{ATTRIBUTE}: downsampling (cnnc's upsampling2d enlarges by "
                                 "whole factors)",
    r"^test_resize_tf_crop_and_resize": f"{ATTRIBUTE}: crop-and-resize to non-integer factors",
    r"^test_resize_upsample_sizes_nearest(_axes_2_3|_axes_3_2)?_cpu":
        f"{ATTRIBUTE}: non-integer enlargement factors",
    r"^test_resize_upsample_sizes_nearest_(not_larger|not_smaller)":
        f"{ATTRIBUTE}: keep_aspect_ratio_policy other than 'stretch'",
    r"^test_resize_upsample_sizes_nearest_(ceil_half_pixel|floor_align_corners"
    r"|round_prefer_ceil_asymmetric)": f"{ATTRIBUTE}: nearest modes that do not repeat pixels",
    r"^test_resize_upsample_scales_linear_align_corners": f"{ATTRIBUTE}: align_corners "
                                                          "(cnnc's bilinear has half-pixel "
                                                          "centres)",
    r"^test_resize_upsample_scales_linear_half_pixel_symmetric":
        f"{ATTRIBUTE}: non-integer enlargement factors",
}

# Cases that fail on this branch and pass once another lands; unittest's expectedFailure
# turns them into unexpected successes (failures) then, to be moved back into the suite.
EXPECTED_FAILURES: dict[str, str] = {}
