"""Test helper for the ONNX import tests: compact PyTorch twins of published classifiers.

torchvision cannot be installed here, so each family's blocks are written out as torchvision
defines them (same modules, same order, same activations and padding), with small widths and
depths so that a model imports and runs in seconds; the block structure is the real one. Every
builder takes a seed and returns a module in eval mode with its batch norms' statistics and
affine parameters randomised (fresh ones would make every batch norm an identity).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """torchvision's _make_divisible: channels rounded to a multiple of 8, never below 90%."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def conv_bn_act(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
                act: Callable[[], nn.Module] | None = nn.ReLU,
                dilation: int = 1) -> nn.Sequential:
    """torchvision's Conv2dNormActivation: conv (no bias, 'same'-style padding), BN, act."""
    padding = (k - 1) // 2 * dilation
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, padding, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation: pool, 1x1 conv, act, 1x1 conv, gate, scale."""

    def __init__(self, channels: int, squeeze: int, act: Callable[[], nn.Module] = nn.ReLU,
                 gate: Callable[[], nn.Module] = nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = act()
        self.scale_activation = gate()

    def forward(self, x):
        s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return s * x


# ---------------------------------------------------------------- MobileNetV3


class MobileNetV3Block(nn.Module):
    """InvertedResidual of torchvision's MobileNetV3: expand, depthwise, SE (hard-sigmoid gate),
    project; a residual where the stride is 1 and the widths agree."""

    def __init__(self, cin, k, exp, cout, se, act, stride):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if exp != cin:
            layers.append(conv_bn_act(cin, exp, 1, act=act))
        layers.append(conv_bn_act(exp, exp, k, stride, groups=exp, act=act))
        if se:
            layers.append(SqueezeExcitation(exp, make_divisible(exp // 4, 8),
                                            gate=nn.Hardsigmoid))
        layers.append(conv_bn_act(exp, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return y + x if self.use_res else y


# (kernel, expanded, out, SE, activation, stride): torchvision's tables.
MOBILENET_V3_SMALL = [
    (3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1), (5, 288, 96, True, "HS", 2),
    (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1)]
MOBILENET_V3_LARGE = [
    (3, 16, 16, False, "RE", 1), (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1), (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2), (5, 960, 160, True, "HS", 1), (5, 960, 160, True, "HS", 1)]


class MobileNetV3(nn.Module):
    def __init__(self, config, last_channel, width=0.25, classes=10):
        super().__init__()
        first = make_divisible(16 * width)
        layers: list[nn.Module] = [conv_bn_act(3, first, 3, 2, act=nn.Hardswish)]
        cin = first
        for k, exp, out, se, act, stride in config:
            exp, out = make_divisible(exp * width), make_divisible(out * width)
            layers.append(MobileNetV3Block(cin, k, exp, out, se,
                                           nn.Hardswish if act == "HS" else nn.ReLU, stride))
            cin = out
        last_conv = 6 * cin
        layers.append(conv_bn_act(cin, last_conv, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        last = make_divisible(last_channel * width)
        self.classifier = nn.Sequential(nn.Linear(last_conv, last), nn.Hardswish(),
                                        nn.Dropout(0.2), nn.Linear(last, classes))

    def forward(self, x):
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


# ---------------------------------------------------------------- EfficientNet-B0


class MBConv(nn.Module):
    """torchvision's MBConv: expand (SiLU), depthwise (SiLU), SE (SiLU, sigmoid, squeeze =
    input channels / 4), project; stochastic depth is the identity in eval mode."""

    def __init__(self, cin, cout, expand, k, stride):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        exp = make_divisible(cin * expand)
        layers: list[nn.Module] = []
        if exp != cin:
            layers.append(conv_bn_act(cin, exp, 1, act=nn.SiLU))
        layers.append(conv_bn_act(exp, exp, k, stride, groups=exp, act=nn.SiLU))
        layers.append(SqueezeExcitation(exp, max(1, cin // 4), act=nn.SiLU))
        layers.append(conv_bn_act(exp, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return y + x if self.use_res else y


# (expand, kernel, stride, in, out, repeats): EfficientNet-B0's stages.
EFFICIENTNET_B0 = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
                   (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
                   (6, 3, 1, 192, 320, 1)]


class EfficientNet(nn.Module):
    def __init__(self, width=0.25, classes=10):
        super().__init__()
        stem = make_divisible(32 * width)
        layers: list[nn.Module] = [conv_bn_act(3, stem, 3, 2, act=nn.SiLU)]
        cin = stem
        for expand, k, stride, _, out, repeats in EFFICIENTNET_B0:
            out = make_divisible(out * width)
            for i in range(repeats):
                layers.append(MBConv(cin, out, expand, k, stride if i == 0 else 1))
                cin = out
        head = make_divisible(1280 * width)
        layers.append(conv_bn_act(cin, head, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(head, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# ---------------------------------------------------------------- ShuffleNetV2


def channel_shuffle(x, groups: int):
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(n, c, h, w)


class ShuffleBlock(nn.Module):
    """torchvision's ShuffleNetV2 InvertedResidual: split (stride 1) or two branches (stride
    2), concatenated, then the channels shuffled in two groups."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        half = cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                nn.Conv2d(cin, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU())
        else:
            self.branch1 = nn.Sequential()
        inner = cin if stride > 1 else half
        self.branch2 = nn.Sequential(
            nn.Conv2d(inner, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
            nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU())

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """x0.5's widths (24, 48, 96, 192, 1024) halved, the real repeats (4, 8, 4)."""

    def __init__(self, repeats=(4, 8, 4), widths=(24, 24, 48, 96, 256), classes=10):
        super().__init__()
        self.conv1 = conv_bn_act(3, widths[0], 3, 2)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = widths[0]
        stages = []
        for n, cout in zip(repeats, widths[1:4]):
            blocks = [ShuffleBlock(cin, cout, 2)] + [ShuffleBlock(cout, cout, 1)
                                                      for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stage2, self.stage3, self.stage4 = stages
        self.conv5 = conv_bn_act(cin, widths[4], 1)
        self.fc = nn.Linear(widths[4], classes)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(x.mean([2, 3]))  # torchvision's global pool


# ---------------------------------------------------------------- RegNetY


class RegNetBottleneck(nn.Module):
    """torchvision's ResBottleneckBlock with SE (RegNetY): 1x1, grouped 3x3, SE (ReLU,
    sigmoid; squeeze = input width / 4), 1x1 without activation, shortcut, ReLU."""

    def __init__(self, cin, cout, stride, group_width=8, se_ratio=0.25):
        super().__init__()
        self.proj = None
        if cin != cout or stride != 1:
            self.proj = conv_bn_act(cin, cout, 1, stride, act=None)
        groups = cout // group_width
        self.a = conv_bn_act(cin, cout, 1)
        self.b = conv_bn_act(cout, cout, 3, stride, groups=groups)
        self.se = SqueezeExcitation(cout, round(se_ratio * cin))
        self.c = conv_bn_act(cout, cout, 1, act=None)
        self.activation = nn.ReLU()

    def forward(self, x):
        shortcut = x if self.proj is None else self.proj(x)
        return self.activation(shortcut + self.c(self.se(self.b(self.a(x)))))


class RegNetY(nn.Module):
    """RegNetY-400MF's layout (stem 32, 4 stages, group width 8, SE 0.25), narrower and
    shallower."""

    def __init__(self, widths=(16, 32, 48, 64), depths=(1, 2, 2, 1), classes=10):
        super().__init__()
        self.stem = conv_bn_act(3, 16, 3, 2)
        cin = 16
        stages = []
        for w, d in zip(widths, depths):
            stages.append(nn.Sequential(*[RegNetBottleneck(cin if i == 0 else w, w,
                                                           2 if i == 0 else 1)
                                          for i in range(d)]))
            cin = w
        self.trunk_output = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.avgpool(self.trunk_output(self.stem(x)))
        return self.fc(x.flatten(start_dim=1))


# ---------------------------------------------------------------- ConvNeXt


class LayerNorm2d(nn.LayerNorm):
    """torchvision's LayerNorm2d: a LayerNorm over the channels, through two permutes."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    """torchvision's ConvNeXt block: 7x7 depthwise, permute, LayerNorm, Linear 4x, GELU,
    Linear, permute back, layer scale, residual."""

    def __init__(self, dim, layer_scale=1e-6):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim),
            Permute((0, 2, 3, 1)), nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, 4 * dim),
            nn.GELU(), nn.Linear(4 * dim, dim), Permute((0, 3, 1, 2)))
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)

    def forward(self, x):
        return self.layer_scale * self.block(x) + x


class Permute(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return torch.permute(x, self.dims)


class ConvNeXt(nn.Module):
    """ConvNeXt-T's layout (4x4/4 stem + LayerNorm2d, stages with LayerNorm2d + 2x2/2
    downsampling, pool, LayerNorm2d, flatten, linear), narrower and shallower."""

    def __init__(self, dims=(16, 32, 48, 64), depths=(1, 1, 2, 1), classes=10):
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, dims[0], 4, 4),
                                                 LayerNorm2d(dims[0], eps=1e-6))]
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            layers.append(nn.Sequential(*[CNBlock(dim) for _ in range(depth)]))
            if i + 1 < len(dims):
                layers.append(nn.Sequential(LayerNorm2d(dim, eps=1e-6),
                                            nn.Conv2d(dim, dims[i + 1], 2, 2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(LayerNorm2d(dims[-1], eps=1e-6), nn.Flatten(1),
                                        nn.Linear(dims[-1], classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


# ---------------------------------------------------------------- DenseNet-121


class DenseLayer(nn.Module):
    """torchvision's _DenseLayer: concatenate every earlier output, BN-ReLU-1x1, BN-ReLU-3x3."""

    def __init__(self, cin, growth, bn_size):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, inputs):
        x = torch.cat(inputs, 1)  # one input for a block's first layer: an identity
        x = self.conv1(self.relu1(self.norm1(x)))
        return self.conv2(self.relu2(self.norm2(x)))


class DenseBlock(nn.ModuleDict):
    def __init__(self, n, cin, growth, bn_size):
        super().__init__()
        for i in range(n):
            self[f"denselayer{i + 1}"] = DenseLayer(cin + i * growth, growth, bn_size)

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False),
                         nn.AvgPool2d(2, 2))


class DenseNet(nn.Module):
    """DenseNet-121's blocks (6, 12, 24, 16 layers) with growth 4 and 16 initial features."""

    def __init__(self, blocks=(6, 12, 24, 16), growth=4, init=16, bn_size=2, classes=10):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, init, 7, 2, 3, bias=False),
                                   nn.BatchNorm2d(init), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        c = init
        for i, n in enumerate(blocks):
            layers.append(DenseBlock(n, c, growth, bn_size))
            c += n * growth
            if i + 1 < len(blocks):
                layers.append(Transition(c, c // 2))
                c //= 2
        layers.append(nn.BatchNorm2d(c))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, classes)

    def forward(self, x):
        x = F.relu(self.features(x))
        x = F.adaptive_avg_pool2d(x, (1, 1))
        return self.classifier(torch.flatten(x, 1))


# ---------------------------------------------------------------- ResNeXt


class ResNeXtBottleneck(nn.Module):
    """torchvision's Bottleneck with groups (ResNeXt): 1x1, grouped 3x3 with the stride,
    1x1 (expansion 4), shortcut, ReLU."""

    def __init__(self, cin, planes, stride, groups, width_per_group):
        super().__init__()
        width = int(planes * (width_per_group / 64.0)) * groups
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNeXt(nn.Module):
    """ResNeXt-50 (32x4d)'s layout with 4 groups of width 16 and fewer blocks."""

    def __init__(self, layers=(1, 2, 2, 1), planes=(16, 32, 64, 128), groups=4,
                 width_per_group=16, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 16
        stages = []
        for i, (n, p) in enumerate(zip(layers, planes)):
            blocks = []
            for j in range(n):
                blocks.append(ResNeXtBottleneck(cin, p, 2 if i > 0 and j == 0 else 1, groups,
                                                width_per_group))
                cin = p * 4
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ---------------------------------------------------------------- building


def randomise(module: nn.Module, seed: int) -> nn.Module:
    """Random batch-norm statistics, norm affine parameters and layer scales; eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            elif isinstance(m, CNBlock):  # 1e-6 would hide the block behind its residual
                m.layer_scale.copy_(torch.rand(m.layer_scale.shape, generator=g) + 0.5)
            elif isinstance(m, nn.LayerNorm) and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
    return module.eval()


TWINS: dict[str, Callable[[], nn.Module]] = {
    "mobilenet_v3_small": partial(MobileNetV3, MOBILENET_V3_SMALL, 1024),
    "mobilenet_v3_large": partial(MobileNetV3, MOBILENET_V3_LARGE, 1280),
    "efficientnet_b0": EfficientNet,
    "shufflenet_v2": ShuffleNetV2,
    "regnet_y": RegNetY,
    "convnext": ConvNeXt,
    "densenet121": DenseNet,
    "resnext": ResNeXt,
}


def build(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return randomise(TWINS[name](), seed)


__all__ = ["TWINS", "build", "channel_shuffle", "make_divisible", "randomise"]
