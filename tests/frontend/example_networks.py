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


BUILDERS: dict[str, Callable[[], cnnc.Network]] = {
    "fashion": fashion,
    "fashion-plus": fashion_plus,
    "lenet5": lenet5,
    "resnet_mini": resnet_mini,
    "inception_mini": inception_mini,
    "mobilenet_mini": mobilenet_mini,
}
