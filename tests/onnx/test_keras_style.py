"""A Keras network as tf2onnx writes it, built here with onnx.helper: an NHWC input transposed to
NCHW for the convolutions, transposed back to NHWC before Keras' flatten (a Reshape) or
global pooling (ReduceMean over NHWC's spatial axes), dense layers as MatMul + Add (BiasAdd),
'same' padding as auto_pad SAME_UPPER or as explicit pads, names by Keras layer and TensorFlow
op. The transposes cost nothing in cnnc: they only change how cnnc reads the ONNX axes."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from onnx_helpers import check_against_ort, make_model, randn, save

N = "unk__0"  # tf2onnx's name for the symbolic batch


def _keras_cnn(head: str):
    p = "sequential"
    nodes = [
        helper.make_node("Transpose", ["input_1"], ["t0"], name=f"{p}/conv2d/Conv2D__6",
                         perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["t0", "W1", "B1"], ["c1"], name=f"{p}/conv2d/Conv2D",
                         auto_pad="SAME_UPPER", kernel_shape=[3, 3], strides=[1, 1],
                         dilations=[1, 1], group=1),
        helper.make_node("Relu", ["c1"], ["r1"], name=f"{p}/conv2d/Relu"),
        helper.make_node("MaxPool", ["r1"], ["m1"], name=f"{p}/max_pooling2d/MaxPool",
                         kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0]),
        # Keras Conv2D(8, 3, strides=2, padding='same') on 14x14: TF pads (0, 1), written out.
        helper.make_node("Conv", ["m1", "W2", "B2"], ["c2"], name=f"{p}/conv2d_1/Conv2D",
                         kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name=f"{p}/conv2d_1/Relu"),
        helper.make_node("BatchNormalization", ["r2", "g", "b", "mean", "var"], ["bn"],
                         name=f"{p}/batch_normalization/FusedBatchNormV3", epsilon=1e-3),
        helper.make_node("Transpose", ["bn"], ["t1"], name=f"{p}/conv2d_1/Relu__20",
                         perm=[0, 2, 3, 1]),
    ]
    inits = {
        "W1": randn(6, 1, 3, 3, seed=1, scale=0.5), "B1": randn(6, seed=2, scale=0.1),
        "W2": randn(8, 6, 3, 3, seed=3, scale=0.3), "B2": randn(8, seed=4, scale=0.1),
        "g": randn(8, seed=5) * 0.2 + 1, "b": randn(8, seed=6, scale=0.1),
        "mean": randn(8, seed=7, scale=0.1), "var": np.abs(randn(8, seed=8)) + 0.5,
    }
    if head == "flatten":
        features = 7 * 7 * 8
        nodes.append(helper.make_node("Reshape", ["t1", "shape"], ["f"],
                                      name=f"{p}/flatten/Reshape"))
        inits["shape"] = np.array([-1, features], np.int64)
    else:
        features = 8
        nodes.append(helper.make_node("ReduceMean", ["t1"], ["f"], axes=[1, 2], keepdims=0,
                                      name=f"{p}/global_average_pooling2d/Mean"))
    nodes += [
        helper.make_node("MatMul", ["f", "D1"], ["d1"], name=f"{p}/dense/MatMul"),
        helper.make_node("Add", ["d1", "E1"], ["e1"], name=f"{p}/dense/BiasAdd"),
        helper.make_node("Relu", ["e1"], ["h"], name=f"{p}/dense/Relu"),
        helper.make_node("MatMul", ["h", "D2"], ["d2"], name=f"{p}/dense_1/MatMul"),
        helper.make_node("Add", ["d2", "E2"], ["e2"], name=f"{p}/dense_1/BiasAdd"),
        helper.make_node("Softmax", ["e2"], ["dense_1"], name=f"{p}/dense_1/Softmax", axis=-1),
    ]
    inits.update({"D1": randn(features, 16, seed=9, scale=0.1), "E1": randn(16, seed=10),
                  "D2": randn(16, 10, seed=11, scale=0.3), "E2": randn(10, seed=12)})
    return make_model(nodes, {"input_1": (N, 28, 28, 1)}, ["dense_1"], inits, opset=13,
                      name="sequential")


@pytest.mark.parametrize("head", ["flatten", "global_average_pooling"])
def test_tf2onnx_style_network_matches_onnxruntime(head, backend, tmp_path):
    path = save(_keras_cnn(head), tmp_path / f"keras_{head}.onnx")
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    graph = check_against_ort(path, x, backend=backend, input_layout="nhwc")
    # The NHWC input is cnnc's own layout; the transposes and biases leave no layers behind.
    assert graph.shape_of("input_1") == (None, 28, 28, 1)
    gap = "global_avgpool2d" if head != "flatten" else "flatten"
    assert [n.op for n in graph.nodes] == ["input", "conv2d", "maxpool2d", "conv2d",
                                           "batchnorm", gap, "dense", "dense"]
    assert [n.name for n in graph.nodes if n.op in ("conv2d", "dense")] == [
        "sequential.conv2d", "sequential.conv2d_1", "sequential.dense", "sequential.dense_1"]
    assert graph.node("sequential.conv2d_1").attrs["padding"] == "same"
    assert graph.node("sequential.dense_1").attrs["activation"] == "softmax"
