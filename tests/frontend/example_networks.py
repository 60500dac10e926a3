"""The example specs of specs/ written with the Python builder, for the three-way agreement test.

Each function returns the cnnc.Network for the spec of the same stem (BUILDERS maps the stems);
test_example_specs.py requires one for every spec in specs/.
"""

from __future__ import annotations

from collections.abc import Callable

import cnnc


def fashion() -> cnnc.Network:
    net = cnnc.Network("fashion", input=(28, 28, 1))
    net.conv2d(64, 7, activation="relu", padding="same")
    net.maxpool2d(2)
    for filters in (128, 256):
        for _ in range(2):
            net.conv2d(filters, 3, activation="relu", padding="same")
        net.maxpool2d(2)
    net.flatten()
    net.dense(128, activation="relu")
    net.dropout(0.5)
    net.dense(64, activation="relu")
    net.dropout(0.5)
    net.dense(10, activation="softmax")
    net.train(dataset="fashion_mnist", epochs=10, batch_size=32, optimizer="nadam",
              loss="sparse_categorical_crossentropy", validation_size=5000)
    return net


def fashion_plus() -> cnnc.Network:
    net = cnnc.Network("fashion_plus", input=(28, 28, 1))

    def conv_bn_relu(filters: int) -> None:
        # No bias: batch normalisation's beta replaces it.
        net.conv2d(filters, 3, padding="same", use_bias=False)
        net.batchnorm()
        net.activation("relu")

    for filters in (32, 64):
        conv_bn_relu(filters)
        conv_bn_relu(filters)
        net.maxpool2d(2)
    conv_bn_relu(128)
    net.maxpool2d(2)
    net.flatten()
    net.dense(256, use_bias=False)
    net.batchnorm()
    net.activation("relu")
    net.dropout(0.3)
    net.dense(10, activation="softmax")
    net.train(dataset="fashion_mnist", epochs=15, batch_size=128,
              optimizer={"name": "adam", "learning_rate": 0.002},
              loss="sparse_categorical_crossentropy",
              schedule={"name": "cosine", "warmup_epochs": 1},
              augment={"shift": 2, "flip": True}, validation_size=5000, seed=0)
    return net


def lenet5() -> cnnc.Network:
    net = cnnc.Network("lenet5", input=(28, 28, 1))
    net.Conv2D(filters=6, kernel_size=5, activation="tanh", padding="same")
    net.AveragePooling2D(pool_size=2)
    net.Conv2D(filters=16, kernel_size=(5, 5), activation="tanh")
    net.AveragePooling2D(pool_size=(2, 2))
    net.Flatten()
    net.Dense(120, activation="tanh")
    net.Dense(84, activation="tanh")
    net.Dense(10, activation="softmax")
    net.train(dataset="fashion_mnist", epochs=10, batch_size=64,
              optimizer={"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
              loss="sparse_categorical_crossentropy", validation_split=0.1)
    return net


def resnet_mini() -> cnnc.Network:
    net = cnnc.Network("resnet_mini", input=(28, 28, 1))
    net.conv2d(16, 3, padding="same", use_bias=False, name="stem")
    net.batchnorm()
    stem = net.activation("relu", name="stem_out")
    net.conv2d(16, 3, padding="same", use_bias=False)
    net.batchnorm()
    net.activation("relu")
    net.conv2d(16, 3, padding="same", use_bias=False)
    main = net.batchnorm(name="b1_bn")
    net.add(stem, main)
    block1 = net.activation("relu", name="b1_out")
    net.conv2d(32, 3, strides=2, padding="same", use_bias=False)
    net.batchnorm()
    net.activation("relu")
    net.conv2d(32, 3, padding="same", use_bias=False)
    main = net.batchnorm(name="b2_bn")
    net.conv2d(block1, 32, 1, strides=2, use_bias=False, name="shortcut")
    shortcut = net.batchnorm(name="shortcut_bn")
    net.add(main, shortcut)
    net.activation("relu")
    net.global_avgpool2d()
    net.dense(10, activation="softmax")
    net.train(dataset="fashion_mnist", epochs=12, batch_size=64,
              optimizer={"name": "adam", "learning_rate": 0.002},
              loss="sparse_categorical_crossentropy", validation_size=5000,
              schedule={"name": "cosine", "warmup_epochs": 1},
              augment={"shift": 2, "flip": True}, seed=1)
    return net


def fashion_best() -> cnnc.Network:
    net = cnnc.Network("fashion_best", input=(28, 28, 1))
    net.conv2d(32, 3, padding="same", use_bias=False, name="stem")
    net.batchnorm()
    stem = net.activation("relu", name="stem_out")
    net.conv2d(32, 3, padding="same", use_bias=False)
    net.batchnorm()
    net.activation("relu")
    net.conv2d(32, 3, padding="same", use_bias=False)
    main = net.batchnorm(name="b1_bn")
    net.add(stem, main)
    block = net.activation("relu", name="b1_out")
    for stage, filters in ((2, 64), (4, 128)):
        net.conv2d(filters, 3, strides=2, padding="same", use_bias=False)
        net.batchnorm()
        net.activation("relu")
        net.conv2d(filters, 3, padding="same", use_bias=False)
        main = net.batchnorm(name=f"b{stage}_bn")
        net.conv2d(block, filters, 1, strides=2, use_bias=False, name=f"b{stage}_shortcut")
        shortcut = net.batchnorm(name=f"b{stage}_shortcut_bn")
        net.add(main, shortcut)
        block = net.activation("relu", name=f"b{stage}_out")
        net.conv2d(filters, 3, padding="same", use_bias=False)
        net.batchnorm()
        net.activation("relu")
        net.conv2d(filters, 3, padding="same", use_bias=False)
        main = net.batchnorm(name=f"b{stage + 1}_bn")
        net.add(block, main)
        block = net.activation("relu", name=f"b{stage + 1}_out" if stage == 2 else None)
    net.global_avgpool2d()
    net.dense(10, activation="softmax")
    net.train(dataset="fashion_mnist", epochs=25, batch_size=128,
              optimizer={"name": "adamw", "learning_rate": 0.004, "weight_decay": 0.05},
              loss="sparse_categorical_crossentropy", label_smoothing=0.1,
              schedule={"name": "one_cycle", "max_lr": 0.004, "pct_start": 0.25},
              augment={"crop": 2, "flip": True, "erase": 0.5}, seed=0, tta="flip")
    return net


def inception_mini() -> cnnc.Network:
    net = cnnc.Network("inception_mini", input=(28, 28, 1))
    net.conv2d(32, 3, activation="relu", padding="same")
    stem = net.maxpool2d(2, name="stem")
    b1 = net.conv2d(stem, 16, 1, activation="relu", name="b1")
    net.conv2d(stem, 16, 1, activation="relu")
    b2 = net.conv2d(24, 3, activation="relu", padding="same", name="b2")
    net.maxpool2d(stem, 3, strides=1, padding="same")
    b3 = net.conv2d(16, 1, activation="relu", name="b3")
    net.concatenate(b1, b2, b3, axis=-1)
    net.maxpool2d(2)
    net.flatten()
    net.dense(64, activation="relu")
    net.dropout(0.3)
    net.dense(10, activation="softmax")
    net.train(dataset="fashion_mnist", epochs=8, batch_size=64,
              optimizer={"name": "nadam", "learning_rate": 0.002},
              loss="sparse_categorical_crossentropy", validation_size=5000)
    return net


def mobilenet_mini() -> cnnc.Network:
    net = cnnc.Network("mobilenet_mini", input=(28, 28, 1))
    net.conv2d(16, 3, strides=2, padding="same", use_bias=False)
    net.batchnorm()
    net.relu(max_value=6)

    def separable(filters: int, **depthwise) -> None:
        net.depthwise_conv2d(3, padding="same", use_bias=False, **depthwise)
        net.batchnorm()
        if depthwise:
            net.leaky_relu(0.1)
        else:
            net.activation("relu6")
        net.conv2d(filters, 1, use_bias=False)
        net.batchnorm()
        net.activation("relu6")

    separable(32)
    separable(32)
    separable(64, strides=2, depth_multiplier=2)
    net.global_avgpool2d()
    net.dropout(0.2)
    net.dense(10, activation="softmax")
    net.train(dataset="fashion_mnist", epochs=10, batch_size=128,
              optimizer={"name": "adam", "learning_rate": 0.002},
              loss="sparse_categorical_crossentropy", validation_size=5000,
              schedule="cosine", seed=0)
    return net


# ---------------------------------------------------------------- issue 20's families


def _squeeze_excite(net: cnnc.Network, x, reduced: int, channels: int, activation: str,
                    gate: str, name: str):
    """Global average pooling (1x1 kept), 1x1 reduce, 1x1 expand to a gate, times x."""
    net.global_avgpool2d(keepdims=True)
    net.conv2d(reduced, 1, activation=activation)
    g = net.conv2d(channels, 1, activation=gate, name=name)
    return net.multiply(x, g)


def mobilenetv3_mini() -> cnnc.Network:
    net = cnnc.Network("mobilenetv3_mini", input=(28, 28, 1))
    net.conv2d(16, 3, strides=2, padding="same", use_bias=False)
    net.batchnorm()
    stem = net.activation("hard_swish", name="stem")
    net.depthwise_conv2d(3, padding="same", use_bias=False)
    net.batchnorm()
    dw = net.activation("relu", name="b1_dw")
    _squeeze_excite(net, dw, 8, 16, "relu", "hard_sigmoid", "b1_gate")
    net.conv2d(16, 1, use_bias=False)
    proj = net.batchnorm(name="b1_proj")
    net.add(stem, proj, name="b1_out")
    net.conv2d(48, 1, use_bias=False)
    net.batchnorm()
    net.activation("relu")
    net.depthwise_conv2d(3, strides=2, padding="same", use_bias=False)
    net.batchnorm()
    net.activation("relu")
    net.conv2d(24, 1, use_bias=False)
    b2 = net.batchnorm(name="b2_out")
    net.conv2d(72, 1, use_bias=False)
    net.batchnorm()
    net.activation("hard_swish")
    net.depthwise_conv2d(5, padding="same", use_bias=False)
    net.batchnorm()
    dw = net.activation("hard_swish", name="b3_dw")
    _squeeze_excite(net, dw, 24, 72, "relu", "hard_sigmoid", "b3_gate")
    net.conv2d(24, 1, use_bias=False)
    proj = net.batchnorm(name="b3_proj")
    net.add(b2, proj)
    net.conv2d(96, 1, use_bias=False)
    net.batchnorm()
    net.activation("hard_swish")
    net.global_avgpool2d()
    net.dense(128, activation="hard_swish")
    net.dropout(0.2)
    net.dense(10, activation="softmax")
    net.train(dataset="fashion_mnist", epochs=8, batch_size=128,
              optimizer={"name": "adam", "learning_rate": 0.003},
              loss="sparse_categorical_crossentropy", validation_size=5000,
              schedule="cosine", seed=0)
    return net


def efficientnet_mini() -> cnnc.Network:
    net = cnnc.Network("efficientnet_mini", input=(28, 28, 1))
    net.conv2d(16, 3, strides=2, padding="same", use_bias=False)
    net.batchnorm()
    stem = net.activation("silu", name="stem")
    net.depthwise_conv2d(3, padding="same", use_bias=False)
    net.batchnorm()
    dw = net.activation("silu", name="b1_dw")
    _squeeze_excite(net, dw, 4, 16, "silu", "sigmoid", "b1_gate")
    net.conv2d(16, 1, use_bias=False)
    proj = net.batchnorm(name="b1_proj")
    net.add(stem, proj)

    def expand_depthwise(expanded: int, kernel: int, strides: int, name: str):
        net.conv2d(expanded, 1, use_bias=False)
        net.batchnorm()
        net.activation("silu")
        net.depthwise_conv2d(kernel, strides=strides, padding="same", use_bias=False)
        net.batchnorm()
        return net.activation("silu", name=name)

    dw = expand_depthwise(96, 3, 2, "b2_dw")
    _squeeze_excite(net, dw, 4, 96, "silu", "sigmoid", "b2_gate")
    net.conv2d(24, 1, use_bias=False)
    b2 = net.batchnorm(name="b2_out")
    dw = expand_depthwise(144, 5, 1, "b3_dw")
    _squeeze_excite(net, dw, 6, 144, "silu", "sigmoid", "b3_gate")
    net.conv2d(24, 1, use_bias=False)
    proj = net.batchnorm(name="b3_proj")
    net.add(b2, proj)
    net.conv2d(128, 1, use_bias=False)
    net.batchnorm()
    net.activation("silu")
    net.global_avgpool2d()
    net.dropout(0.2)
    net.dense(10, activation="softmax")
    net.train(dataset="fashion_mnist", epochs=8, batch_size=128,
              optimizer={"name": "adam", "learning_rate": 0.003},
              loss="sparse_categorical_crossentropy", validation_size=5000,
              schedule="cosine", seed=0)
    return net


def convnext_mini() -> cnnc.Network:
    net = cnnc.Network("convnext_mini", input=(28, 28, 1))

    def block(x, width: int, proj: str, out: str | None = None):
        net.depthwise_conv2d(7, padding="same")
        net.layer_norm(epsilon=1e-6)
        net.conv2d(4 * width, 1, activation="gelu")
        return net.add(x, net.conv2d(width, 1, name=proj), name=out)

    net.conv2d(32, 4, strides=4)
    stem = net.layer_norm(epsilon=1e-6, name="stem")
    b1 = block(stem, 32, "b1_proj", "b1_out")
    block(b1, 32, "b2_proj")
    net.layer_norm(epsilon=1e-6)
    down = net.conv2d(64, 2, strides=2, name="down")
    block(down, 64, "b3_proj")
    net.layer_norm(epsilon=1e-6)
    net.global_avgpool2d()
    net.dense(10, activation="softmax")
    net.train(dataset="fashion_mnist", epochs=8, batch_size=128,
              optimizer={"name": "adam", "learning_rate": 0.002},
              loss="sparse_categorical_crossentropy", validation_size=5000,
              schedule={"name": "cosine", "warmup_epochs": 1}, seed=0)
    return net


def shufflenet_mini() -> cnnc.Network:
    net = cnnc.Network("shufflenet_mini", input=(28, 28, 1))

    def conv_bn(*x, name=None):  # x: the input layer, where it is not the previous one
        net.conv2d(*x, 24, 1, use_bias=False)
        net.batchnorm()
        return net.activation("relu", name=name)

    def depthwise_bn(*x, strides=1):
        net.depthwise_conv2d(*x, 3, strides=strides, padding="same", use_bias=False)
        return net.batchnorm()

    def stride_one_unit(x, n):
        keep = net.channel_slice(x, 0, 24, name=f"u{n}_keep")
        net.channel_slice(x, 24, 48)
        conv_bn()
        depthwise_bn()
        branch = conv_bn(name=f"u{n}_branch")
        net.concatenate(keep, branch)

    net.conv2d(24, 3, strides=2, padding="same", use_bias=False)
    net.batchnorm()
    stem = net.activation("relu", name="stem")
    depthwise_bn(stem, strides=2)
    left = conv_bn(name="u1_left")
    conv_bn(stem)
    depthwise_bn(strides=2)
    right = conv_bn(name="u1_right")
    net.concatenate(left, right)
    u1 = net.channel_shuffle(2, name="u1")
    stride_one_unit(u1, 2)
    u2 = net.channel_shuffle(2, name="u2")
    stride_one_unit(u2, 3)
    net.channel_shuffle(2)
    net.conv2d(128, 1, use_bias=False)
    net.batchnorm()
    net.activation("relu")
    net.global_avgpool2d()
    net.dense(10, activation="softmax")
    net.train(dataset="fashion_mnist", epochs=8, batch_size=128,
              optimizer={"name": "adam", "learning_rate": 0.003},
              loss="sparse_categorical_crossentropy", validation_size=5000,
              schedule="cosine", seed=0)
    return net


def unet_mini() -> cnnc.Network:
    net = cnnc.Network("unet_mini", input=(28, 28, 1))
    net.conv2d(16, 3, padding="same", activation="relu")
    e1 = net.conv2d(16, 3, padding="same", activation="relu", name="e1")
    net.maxpool2d(2)
    net.conv2d(32, 3, padding="same", activation="relu")
    e2 = net.conv2d(32, 3, padding="same", activation="relu", name="e2")
    net.maxpool2d(2)
    net.conv2d(64, 3, padding="same", activation="relu")
    up2 = net.conv2d_transpose(32, 3, strides=2, padding="same", activation="relu", name="up2")
    net.concatenate(up2, e2)
    net.conv2d(32, 3, padding="same", activation="relu")
    up1 = net.upsampling2d(name="up1")
    net.concatenate(up1, e1)
    net.conv2d(16, 3, padding="same", activation="relu")
    net.conv2d(1, 1, activation="sigmoid")
    net.train(dataset="fashion_mnist", target="input", noise=0.3, loss="mse", epochs=3,
              batch_size=64, optimizer={"name": "adam", "learning_rate": 0.002},
              validation_size=5000, seed=0)
    return net


BUILDERS: dict[str, Callable[[], cnnc.Network]] = {
    "fashion": fashion,
    "fashion-plus": fashion_plus,
    "fashion-best": fashion_best,
    "lenet5": lenet5,
    "resnet_mini": resnet_mini,
    "inception_mini": inception_mini,
    "mobilenet_mini": mobilenet_mini,
    "mobilenetv3_mini": mobilenetv3_mini,
    "efficientnet_mini": efficientnet_mini,
    "convnext_mini": convnext_mini,
    "shufflenet_mini": shufflenet_mini,
    "unet_mini": unet_mini,
}
