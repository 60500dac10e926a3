"""Optional: the transposed, separable and resampling layers against PyTorch (float64), forward
and one training step's gradients, with the same weights.

Skipped without torch. Mappings: Keras' Conv2DTranspose kernel (kh, kw, filters, in) is
PyTorch's ConvTranspose2d weight (in, filters, kh, kw); PyTorch pads a transposed convolution
symmetrically, so its output is taken with no padding and cut to Keras' window (padding before
from cnnc.ir.conv_transpose.transpose_window, an independent reading of Keras' formulas is the
hand-worked test in test_layer_semantics.py). UpSampling2D is nn.Upsample (nearest; bilinear
with align_corners=False); SeparableConv2D is a grouped conv2d then a 1x1 one.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.ir.conv_transpose import transpose_window
from cnnc.ir.train_config import TrainConfig
from cnnc.passes import names
from cnnc.passes.pipeline import training_graph
from cnnc.testing.gradcheck import random_weights
from cnnc.testing.nets import chain, run

torch = pytest.importorskip("torch", reason="PyTorch is not installed (optional comparison)")
F = torch.nn.functional


def t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=True)


def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


def _step(layer, in_shape, rng, batch=2):
    """cnnc's loss and gradients of one layer under mean squared error, and its inputs."""
    g = chain(in_shape, layer)
    tg = training_graph(g, TrainConfig(loss="mean_squared_error"), optimizer=False,
                        wrt_inputs=True)
    w = random_weights(tg, rng)
    for name in w:  # biases off zero, so that a wrong bias would show
        if name.endswith("bias"):
            w[name] = rng.normal(size=w[name].shape)
    x = rng.normal(size=(batch, *in_shape))
    out = g.outputs[0]
    target = rng.normal(size=(batch, *g.shape_of(out)[1:]))
    grads = [names.grad("input_layer"), *(names.grad(p) for p in g.node(out).params)]
    ours = run(tg, {"input_layer": x, names.TARGET: target}, w, [out, names.LOSS, *grads])
    return g, w, x, target, ours


def _compare(g, ours, y, target, tensors):
    loss = ((y - torch.tensor(target)) ** 2).mean()
    loss.backward()
    out = g.outputs[0]
    np.testing.assert_allclose(ours[out], y.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours[names.LOSS], loss.item(), rtol=1e-10)
    for name, tensor in tensors.items():
        np.testing.assert_allclose(ours[names.grad(name)], tensor.grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=name)


TRANSPOSES = [
    {"strides": 2, "padding": "same"},                          # k 3 s 2: Keras keeps row 0
    {"strides": 2, "padding": "valid"},
    {"strides": (2, 3), "padding": "same", "output_padding": (1, 2)},
    {"strides": 1, "padding": "same", "dilation_rate": 2},
    {"strides": 2, "padding": "same", "output_padding": 0, "kernel": 4},
    {"strides": 3, "padding": "valid", "output_padding": 1, "kernel": 2},
]


@pytest.mark.parametrize("conv", TRANSPOSES, ids=lambda c: str(sorted(c.items())))
def test_conv2d_transpose_matches_conv_transpose2d(conv, rng):
    conv = dict(conv)
    k = conv.pop("kernel", 3)
    g, w, x, target, ours = _step(("conv2d_transpose", 4, k, {**conv, "activation": "tanh"}),
                                  (5, 4, 3), rng)
    node = g.node("conv2d_transpose")
    win = transpose_window(node.attrs, (5, 4))
    tx, tk = t(x), t(w["conv2d_transpose/kernel"])
    tb = t(w["conv2d_transpose/bias"])
    full = F.conv_transpose2d(nchw(tx), tk.permute(3, 2, 0, 1), stride=node.attrs["strides"],
                              dilation=node.attrs["dilation_rate"])
    (oh, ow), (pt, pl) = win.out_hw, win.pad_before
    # Rows past every window (output_padding) are zeros before the bias.
    full = F.pad(full, (0, max(0, pl + ow - full.shape[3]), 0, max(0, pt + oh - full.shape[2])))
    y = torch.tanh(nhwc(full[:, :, pt:pt + oh, pl:pl + ow]) + tb)
    _compare(g, ours, y, target, {"input_layer": tx, "conv2d_transpose/kernel": tk,
                                  "conv2d_transpose/bias": tb})


def test_conv2d_transpose_same_stride2_is_pytorch_padding_1_output_padding_1_for_k4(rng):
    """The U-Net upsampler ConvTranspose2d(k=4, s=2, p=1) is Keras' 'same' exactly."""
    g, w, x, target, ours = _step(("conv2d_transpose", 2, 4, {"strides": 2, "padding": "same"}),
                                  (3, 3, 2), rng)
    tx, tk, tb = t(x), t(w["conv2d_transpose/kernel"]), t(w["conv2d_transpose/bias"])
    y = nhwc(F.conv_transpose2d(nchw(tx), tk.permute(3, 2, 0, 1), tb, stride=2, padding=1))
    _compare(g, ours, y, target, {"input_layer": tx, "conv2d_transpose/kernel": tk,
                                  "conv2d_transpose/bias": tb})


@pytest.mark.parametrize("mode,size", [("nearest", (2, 3)), ("bilinear", (2, 2)),
                                       ("bilinear", (3, 1))])
def test_upsampling2d_matches_upsample(mode, size, rng):
    g, _w, x, target, ours = _step(("upsampling2d", size, {"interpolation": mode}), (4, 3, 2),
                                  rng)
    tx = t(x)
    layer = torch.nn.Upsample(scale_factor=size, mode=mode,
                              **({"align_corners": False} if mode == "bilinear" else {}))
    _compare(g, ours, nhwc(layer(nchw(tx))), target, {"input_layer": tx})


def test_separable_conv2d_is_depthwise_then_pointwise(rng):
    g, w, x, target, ours = _step(("separable_conv2d", 5, 3, {
        "strides": 2, "padding": "valid", "depth_multiplier": 2, "activation": "relu"}),
        (7, 6, 3), rng)
    tx = t(x)
    dk, pk = t(w["separable_conv2d/depthwise_kernel"]), t(w["separable_conv2d/pointwise_kernel"])
    tb = t(w["separable_conv2d/bias"])
    # (kh, kw, C, M) -> (C*M, 1, kh, kw): output channel c*M + m, as Keras.
    depthwise = dk.reshape(3, 3, 6).permute(2, 0, 1).unsqueeze(1)
    h = F.conv2d(nchw(tx), depthwise, stride=2, groups=3)
    y = F.relu(nhwc(F.conv2d(h, pk.permute(3, 2, 0, 1))) + tb)
    _compare(g, ours, y, target, {"input_layer": tx, "separable_conv2d/depthwise_kernel": dk,
                                  "separable_conv2d/pointwise_kernel": pk,
                                  "separable_conv2d/bias": tb})


def test_cropping2d_gradient_is_zero_padding(rng):
    g, _w, x, target, ours = _step(("cropping2d", ((1, 0), (2, 1))), (5, 6, 2), rng)
    tx = t(x)
    _compare(g, ours, tx[:, 1:, 2:5, :], target, {"input_layer": tx})
