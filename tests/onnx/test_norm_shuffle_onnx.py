"""ONNX export and import of layer_norm, global_maxpool2d and channel_shuffle: round trips
checked by onnx.checker and onnxruntime, hand-built models of each pattern, and PyTorch's
ConvNeXt block, ShuffleNetV2 unit, channels-first LayerNorm, ChannelShuffle and
AdaptiveMaxPool2d(1) exported by both of its exporters (those parts skipped without torch)."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx_helpers import RTOL, check_against_ort, make_model, nhwc, ort_outputs, relative_error
from onnx_helpers import save as save_model

import cnnc
from cnnc.errors import CnncError

SPEC = """
network norms
input 6x5x8
a: conv2d 8 3 same
ln1: layer_norm
ln2: layer_norm center=false epsilon=0.01
s1: channel_shuffle 2
ln3: layer_norm scale=false
s2: channel_shuffle 4
gm: global_maxpool2d keepdims=true
b: conv2d 6 1
g2: global_maxpool2d
ln4: layer_norm epsilon=0.0001
s3: channel_shuffle 3
d: dense 4
"""

# A layer norm of a flattened NCHW map: ONNX's columns are a permutation of cnnc's, and gamma
# and beta follow it.
FLAT_SPEC = """
network flat_norm
input 4x3x4
conv2d 4 1
flatten
layer_norm
dense 3
"""


def _trained_like(model, seed=3):
    rng = np.random.default_rng(seed)
    weights = model.get_weights()
    for name, value in weights.items():
        if name.endswith(("gamma", "beta", "bias")):
            weights[name] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
    model.set_weights(weights)
    return model


@pytest.mark.parametrize("spec", [SPEC, FLAT_SPEC])
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_round_trip_matches_onnxruntime_and_gives_an_equal_graph(spec, layout, tmp_path):
    graph = cnnc.load_spec(spec)
    model = _trained_like(cnnc.compile(graph, backend="numpy"))
    path = tmp_path / "norms.onnx"
    model.export_onnx(str(path), layout=layout)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    back = cnnc.load_spec(path)
    assert back == graph
    x = np.random.default_rng(0).standard_normal(
        (3, *graph.shape_of(graph.inputs[0])[1:])).astype(np.float32)
    feed = x.transpose(0, 3, 1, 2) if layout == "nchw" else x
    (want,) = ort_outputs(path, {graph.inputs[0]: feed})
    assert relative_error(model.predict(x), want) <= RTOL
    np.testing.assert_array_equal(cnnc.compile(back, backend="numpy").predict(x), model.predict(x))


def test_export_writes_pytorchs_forms(tmp_path):
    graph = cnnc.load_spec(SPEC)
    cnnc.compile(graph, backend="numpy").export_onnx(str(tmp_path / "n.onnx"))
    proto = onnx.load(str(tmp_path / "n.onnx"))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("LayerNormalization") == 4 and ops.count("GlobalMaxPool") == 2
    by_name = {n.name: n for n in proto.graph.node}
    assert [a.ints for a in by_name["s1/transposed"].attribute] == [[0, 2, 1, 3, 4]]
    assert [a.ints for a in by_name["s3/transposed"].attribute] == [[0, 2, 1]]
    assert len(by_name["ln2"].input) == 2  # center=False: no B, ONNX's zeros
    # scale=False: ONNX requires Scale, so ones, and the metadata says there was none
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    np.testing.assert_array_equal(inits[by_name["ln3"].input[1]], np.ones(8, np.float32))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert '"ln3": {"scale": false}' in meta["cnnc.layer_args"]


def test_layer_norm_needs_opset_17(tmp_path):
    model = cnnc.compile(cnnc.load_spec(SPEC), backend="numpy")
    with pytest.raises(CnncError, match=r"ln1: .*LayerNormalization, opset 17 or later; got "
                                        r"opset 13"):
        model.export_onnx(str(tmp_path / "old.onnx"), opset=13)


# ---------------------------------------------------------------- hand-built models


def _const(name, value):
    return helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(
        np.asarray(value), name))


def _shuffle_nodes(src, dst, shape, groups):
    _, c, h, w = shape
    return [
        _const("s_grouped", np.array([-1, groups, c // groups, h, w], np.int64)),
        helper.make_node("Reshape", [src, "s_grouped"], ["grouped"]),
        helper.make_node("Transpose", ["grouped"], ["swapped"], perm=[0, 2, 1, 3, 4]),
        _const("s_back", np.array([0, -1, h, w], np.int64)),
        helper.make_node("Reshape", ["swapped", "s_back"], [dst]),
    ]


def test_channel_shuffle_pattern_with_constant_nodes_between(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), *_shuffle_nodes("r", "y", (2, 6, 3, 4), 3)]
    path = save_model(make_model(nodes, {"x": ["N", 6, 3, 4]}, ["y"]), tmp_path / "s.onnx")
    x = np.random.default_rng(0).standard_normal((2, 6, 3, 4)).astype(np.float32)
    graph = check_against_ort(path, x)
    assert [n.op for n in graph.nodes] == ["input", "activation", "channel_shuffle"]
    assert graph.nodes[-1].attrs["groups"] == 3


def test_a_shuffle_whose_grouped_value_is_read_elsewhere_is_not_matched(tmp_path):
    nodes = [*_shuffle_nodes("x", "y", (2, 6, 3, 4), 2),
             helper.make_node("Relu", ["grouped"], ["z"])]
    path = save_model(make_model(nodes, {"x": ["N", 6, 3, 4]}, ["y", "z"]), tmp_path / "s.onnx")
    with pytest.raises(CnncError, match=r"\(Reshape\): reshaping ONNX shape"):
        cnnc.load_spec(path)


def _layer_norm_2d_nodes(c, eps, gamma=True, beta=True, square="Pow"):
    """ConvNeXt's reference channels-first LayerNorm as PyTorch's exporter writes it."""
    nodes = [
        helper.make_node("ReduceMean", ["x", "axes"], ["u"], keepdims=1),
        helper.make_node("Sub", ["x", "u"], ["d"]),
        (helper.make_node("Pow", ["d", "two"], ["p"]) if square == "Pow"
         else helper.make_node("Mul", ["d", "d"], ["p"])),
        helper.make_node("ReduceMean", ["p", "axes"], ["v"], keepdims=1),
        _const("eps", np.array(eps, np.float32)),
        helper.make_node("Add", ["v", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["s"]),
        helper.make_node("Div", ["d", "s"], ["n" if gamma or beta else "y"]),
    ]
    last = "n"
    if gamma:
        nodes.append(helper.make_node("Mul", ["gamma", last], ["m" if beta else "y"]))
        last = "m"
    if beta:
        nodes.append(helper.make_node("Add", [last, "beta"], ["y"]))
    rng = np.random.default_rng(1)
    inits = {"axes": np.array([1], np.int64), "two": np.array(2.0, np.float32),
             "gamma": rng.uniform(0.5, 1.5, (c, 1, 1)).astype(np.float32),
             "beta": rng.uniform(-1, 1, (c, 1, 1)).astype(np.float32)}
    return nodes, inits


@pytest.mark.parametrize(("gamma", "beta", "square"), [(True, True, "Pow"),
                                                       (False, True, "Mul"),
                                                       (True, False, "Pow")])
def test_channels_first_layer_norm_decomposition_becomes_layer_norm(gamma, beta, square,
                                                                    tmp_path):
    nodes, inits = _layer_norm_2d_nodes(5, 1e-6, gamma, beta, square)
    model = make_model(nodes, {"x": ["N", 5, 3, 4]}, ["y"], inits, opset=18)
    path = save_model(model, tmp_path / "ln.onnx")
    x = (np.random.default_rng(0).standard_normal((2, 5, 3, 4)) * 3 + 7).astype(np.float32)
    graph = check_against_ort(path, x)
    assert [n.op for n in graph.nodes] == ["input", "layer_norm"]
    attrs = graph.nodes[-1].attrs
    assert (attrs["epsilon"], attrs["scale"], attrs["center"]) == (1e-6, gamma, beta)
    if gamma:
        (gamma_name,) = [p for p in graph.nodes[-1].params if p.endswith("/gamma")]
        np.testing.assert_array_equal(graph.given_weights[gamma_name],
                                      inits["gamma"].reshape(-1))


def test_layer_normalization_over_other_axes_is_refused_by_name(tmp_path):
    nodes = [helper.make_node("LayerNormalization", ["x", "g"], ["y"], axis=-1, name="ln")]
    inits = {"g": np.ones(4, np.float32)}
    path = save_model(make_model(nodes, {"x": ["N", 3, 5, 4]}, ["y"], inits), tmp_path / "l.onnx")
    with pytest.raises(CnncError, match=r"node 'ln' \(LayerNormalization\): normalising over "
                                        r"ONNX axis -1 .*channels only \(here ONNX axis 1\)"):
        cnnc.load_spec(path)
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
             helper.make_node("LayerNormalization", ["t", "g"], ["y"], axis=2, name="ln")]
    inits = {"g": np.ones((5, 3), np.float32)}
    path = save_model(make_model(nodes, {"x": ["N", 3, 4, 5]}, ["y"], inits), tmp_path / "l.onnx")
    with pytest.raises(CnncError, match=r"axis=2 normalises ONNX axes 2 to 3 together"):
        cnnc.load_spec(path)


# ---------------------------------------------------------------- PyTorch's exporters


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed (pip install "
                                               "torch==2.13.0 for these tests)")


def _export(module, shape, path, dynamo):
    torch = _torch()
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(module, (torch.randn(2, *shape),), str(path), dynamo=True,
                              input_names=["x"], output_names=["y"], verbose=False)
        else:
            torch.onnx.export(module, (torch.randn(2, *shape),), str(path), dynamo=False,
                              input_names=["x"], output_names=["y"], opset_version=17,
                              dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    return path


def _modules():
    torch = _torch()
    nn = torch.nn

    class ConvNeXtBlock(nn.Module):
        """ConvNeXt's block: 7x7 depthwise conv, LayerNorm on the permuted (channels-last) map,
        Linear 4x, activation (ReLU: GELU is another engineer's), Linear, residual add."""

        def __init__(self, dim):
            super().__init__()
            self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.pwconv1 = nn.Linear(dim, 4 * dim)
            self.act = nn.ReLU()
            self.pwconv2 = nn.Linear(4 * dim, dim)

        def forward(self, x):
            y = self.dwconv(x).permute(0, 2, 3, 1)
            y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
            return x + y.permute(0, 3, 1, 2)

    def shuffle(x, groups):
        n, c, h, w = x.shape
        return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)

    class ShuffleV2Down(nn.Module):
        """ShuffleNetV2's stride-2 unit (torchvision's InvertedResidual, stride 2): two branches
        on the whole input, concatenated, channels shuffled in 2 groups. (The stride-1 unit
        splits the channels with Split/Slice, which cnnc has no layer for.)"""

        def __init__(self, cin, cout):
            super().__init__()
            b = cout // 2
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, 3, 2, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                nn.Conv2d(cin, b, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU())
            self.branch2 = nn.Sequential(
                nn.Conv2d(cin, b, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(),
                nn.Conv2d(b, b, 3, 2, 1, groups=b, bias=False), nn.BatchNorm2d(b),
                nn.Conv2d(b, b, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU())

        def forward(self, x):
            return shuffle(torch.cat((self.branch1(x), self.branch2(x)), dim=1), 2)

    class LayerNorm2d(nn.Module):
        """ConvNeXt's reference LayerNorm, data_format='channels_first'."""

        def __init__(self, c, eps=1e-6):
            super().__init__()
            self.weight = nn.Parameter(torch.rand(c) + 0.5)
            self.bias = nn.Parameter(torch.rand(c) - 0.5)
            self.eps = eps

        def forward(self, x):
            u = x.mean(1, keepdim=True)
            s = (x - u).pow(2).mean(1, keepdim=True)
            x = (x - u) / torch.sqrt(s + self.eps)
            return self.weight[:, None, None] * x + self.bias[:, None, None]

    class ShuffleMax(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(6, 6, 3, padding=1)
            self.shuffle = nn.ChannelShuffle(3)
            self.pool = nn.AdaptiveMaxPool2d(1)

        def forward(self, x):
            return self.pool(self.shuffle(self.conv(x)))

    return {"convnext": (ConvNeXtBlock, (8,), (8, 9, 9)),
            "shufflenet_v2_down": (ShuffleV2Down, (6, 12), (6, 8, 8)),
            "layer_norm_2d": (LayerNorm2d, (5,), (5, 4, 3)),
            "channel_shuffle_max": (ShuffleMax, (), (6, 5, 4))}


def _randomise_batch_norms(module, seed=0):
    torch = _torch()
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)


EXPECTED = {
    "convnext": {"layer_norm": 1, "dense": 2, "depthwise_conv2d|conv2d": 1, "add": 1},
    "shufflenet_v2_down": {"channel_shuffle": 1, "concatenate": 1},
    "layer_norm_2d": {"layer_norm": 1},
    "channel_shuffle_max": {"channel_shuffle": 1, "global_maxpool2d|maxpool2d": 1},
}


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pytorch_exports_match_onnxruntime_and_pytorch(name, dynamo, tmp_path):
    torch = _torch()
    cls, args, shape = _modules()[name]
    torch.manual_seed(0)
    module = cls(*args)
    _randomise_batch_norms(module)
    if name == "channel_shuffle_max" and not dynamo:
        pytest.skip("PyTorch's TorchScript exporter has no aten::channel_shuffle")
    path = _export(module, shape, tmp_path / f"{name}.onnx", dynamo)
    x = (np.random.default_rng(1).standard_normal((2, *shape)) * 2 + 1).astype(np.float32)
    graph = check_against_ort(path, x)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    assert relative_error(cnnc.compile(graph, backend="numpy").predict(nhwc(x)), nhwc(want)) <= RTOL
    ops = [n.op for n in graph.nodes]
    for choice, count in EXPECTED[name].items():
        assert sum(ops.count(op) for op in choice.split("|")) == count, (choice, ops)
    if name == "convnext":
        assert graph.node(next(n.name for n in graph.nodes if n.op == "layer_norm")).attrs[
            "epsilon"] == 1e-6


def test_an_imported_convnext_block_trains(tmp_path):
    torch = _torch()
    cls, args, shape = _modules()["convnext"]
    torch.manual_seed(0)
    path = _export(cls(*args), shape, tmp_path / "convnext.onnx", dynamo=False)
    model = cnnc.compile(cnnc.load_spec(path), backend="numpy", loss="mean_squared_error",
                         optimizer={"name": "sgd", "learning_rate": 0.05})
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 9, 9, 8)).astype(np.float32)
    y = rng.standard_normal((4, 9, 9, 8)).astype(np.float32)
    losses = [model.train_step(x, y) for _ in range(3)]
    assert losses[2] < losses[0]
