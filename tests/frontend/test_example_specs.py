"""Every spec in specs/: DSL, YAML and Python agree, both writers round-trip, summary is right."""

from __future__ import annotations

from pathlib import Path

import pytest
from example_networks import BUILDERS
from frontend_helpers import SPECS, spec_files

from cnnc.frontend.dsl import load_dsl
from cnnc.frontend.spec import load_spec
from cnnc.frontend.writers import to_dsl, to_yaml
from cnnc.frontend.yaml_spec import load_yaml
from cnnc.ir.summary import summary_text

SPECS_FOUND = spec_files()
IDS = [p.name for p in SPECS_FOUND]


def twin_of(path: Path) -> Path | None:
    """The same network in the other format, if specs/ has it."""
    suffixes = (".yaml", ".yml") if path.suffix == ".cnn" else (".cnn",)
    for suffix in suffixes:
        twin = path.with_suffix(suffix)
        if twin.exists():
            return twin
    return None


def test_the_examples_are_all_there():
    stems = {p.stem for p in SPECS_FOUND}
    assert {"fashion", "lenet5", "resnet_mini", "inception_mini"} <= stems
    for stem in BUILDERS:
        assert (SPECS / f"{stem}.cnn").exists() and (SPECS / f"{stem}.yaml").exists()


@pytest.mark.parametrize("path", SPECS_FOUND, ids=IDS)
def test_spec_loads_and_has_training_settings(path):
    graph = load_spec(path)
    assert graph.name
    assert graph.train is not None, "example specs carry their training settings"
    assert len(graph.nodes) >= 3


@pytest.mark.parametrize("path", SPECS_FOUND, ids=IDS)
def test_dsl_and_yaml_twins_agree(path):
    graph = load_spec(path)
    twin = twin_of(path)
    if twin is None:
        # No twin: the network written in the other format stands in for it.
        other = load_dsl(to_dsl(graph)) if path.suffix != ".cnn" else load_yaml(to_yaml(graph))
    else:
        other = load_spec(twin)
    assert other == graph


@pytest.mark.parametrize("path", SPECS_FOUND, ids=IDS)
def test_python_builder_agrees(path):
    assert path.stem in BUILDERS, (
        f"write the Python builder version of {path.name} in tests/frontend/example_networks.py")
    assert BUILDERS[path.stem]().build() == load_spec(path)


@pytest.mark.parametrize("path", SPECS_FOUND, ids=IDS)
def test_writers_round_trip(path):
    graph = load_spec(path)
    dsl, yaml_text = to_dsl(graph), to_yaml(graph)
    assert load_dsl(dsl) == graph
    assert load_yaml(yaml_text) == graph
    # Writing is a fixed point: what was written is written again the same way.
    assert to_dsl(load_dsl(dsl)) == dsl
    assert to_yaml(load_yaml(yaml_text)) == yaml_text


@pytest.mark.parametrize("path", SPECS_FOUND, ids=IDS)
def test_summary_totals_match_the_graph(path):
    graph = load_spec(path)
    text = summary_text(graph)
    assert f"Total params: {graph.param_count():,} " in text
    assert len([n for n in text.splitlines() if " (" in n and ")" in n]) >= len(graph.nodes)


def test_fashion_has_the_keras_figures():
    graph = load_spec(SPECS / "fashion.yaml")
    assert graph.param_count() == 1_413_834
    assert graph.shape_of(graph.outputs[0]) == (None, 10)
    text = summary_text(graph)
    assert "Total params: 1,413,834" in text
    assert "Trainable params: 1,413,834" in text
    assert "Non-trainable params: 0" in text
    last_row = next(line for line in text.splitlines() if line.startswith("dense_2 "))
    assert "(None, 10)" in last_row and "650" in last_row


def test_fashion_training_settings_are_the_seed_recipe():
    train = load_spec(SPECS / "fashion.cnn").train
    assert (train.loss, train.optimizer.name, train.epochs, train.batch_size) == (
        "sparse_categorical_crossentropy", "nadam", 10, 32)
    assert train.validation_size == 5000 and train.validation_split == 0.0


def test_lenet5_parameter_count():
    # Keras' LeNet-5 on 28x28x1 with 'same' padding first: 156 + 2,416 + 48,120 + 10,164 + 850.
    assert load_spec(SPECS / "lenet5.cnn").param_count() == 61_706


def test_resnet_mini_is_a_residual_network():
    graph = load_spec(SPECS / "resnet_mini.cnn")
    ops = [n.op for n in graph.nodes]
    assert ops.count("add") == 2 and "batchnorm" in ops and "global_avgpool2d" in ops
    assert any(n.op == "conv2d" and n.attrs["strides"] == (2, 2) for n in graph.nodes)
    assert graph.node("shortcut").inputs == ("b1_out",)
    # Batch norm's moving statistics are parameters, but not trainable ones.
    assert any(not s.trainable for s in graph.weights)


def test_inception_mini_concatenates_three_branches():
    graph = load_spec(SPECS / "inception_mini.yaml")
    concat = next(n for n in graph.nodes if n.op == "concatenate")
    assert concat.inputs == ("b1", "b2", "b3")
    assert concat.shape == (None, 14, 14, 16 + 24 + 16)


# ---------------------------------------------------------------- issue 20's families


def _ops(stem: str) -> list:
    return list(load_spec(SPECS / f"{stem}.cnn").nodes)


def test_mobilenetv3_and_efficientnet_gate_channels_by_squeeze_excite():
    for stem, gate, act in (("mobilenetv3_mini", "hard_sigmoid", "hard_swish"),
                            ("efficientnet_mini", "sigmoid", "silu")):
        graph = load_spec(SPECS / f"{stem}.cnn")
        muls = [n for n in graph.nodes if n.op == "multiply"]
        assert muls, stem
        for mul in muls:
            x, g = (graph.node(i) for i in mul.inputs)
            # A (1, 1, C) gate times an (H, W, C) map: broadcasting over the spatial axes.
            assert g.shape[1:3] == (1, 1) and g.shape[3] == x.shape[3] and x.shape[1] > 1
            assert g.op == "conv2d" and g.attrs["activation"] == gate
            pool = graph.node(graph.node(g.inputs[0]).inputs[0])
            assert pool.op == "global_avgpool2d" and pool.attrs["keepdims"] is True
        assert any(n.attrs.get("activation") == act for n in graph.nodes), stem
        assert [n.op for n in graph.nodes].count("add") == 2


def test_convnext_blocks():
    graph = load_spec(SPECS / "convnext_mini.cnn")
    dws = [n for n in graph.nodes if n.op == "depthwise_conv2d"]
    assert len(dws) == 3 and all(n.attrs["kernel_size"] == (7, 7) for n in dws)
    for dw in dws:
        ln = next(n for n in graph.nodes if n.inputs == (dw.name,))
        expand = next(n for n in graph.nodes if n.inputs == (ln.name,))
        assert ln.op == "layer_norm" and ln.attrs["epsilon"] == 1e-6
        assert expand.op == "conv2d" and expand.attrs["activation"] == "gelu"
        assert expand.shape[-1] == 4 * dw.shape[-1]  # the inverted bottleneck's 4x
    assert [n.op for n in graph.nodes].count("add") == 3


def test_shufflenet_splits_the_channels_and_shuffles_after_each_unit():
    graph = load_spec(SPECS / "shufflenet_mini.cnn")
    shuffles = [n for n in graph.nodes if n.op == "channel_shuffle"]
    assert len(shuffles) == 3 and all(n.attrs["groups"] == 2 for n in shuffles)
    assert all(graph.node(s.inputs[0]).op == "concatenate" for s in shuffles)
    slices = [n for n in graph.nodes if n.op == "channel_slice"]
    assert [(n.inputs[0], n.attrs["start"], n.attrs["stop"]) for n in slices] == [
        ("u1", 0, 24), ("u1", 24, 48), ("u2", 0, 24), ("u2", 24, 48)]
    concat = [n for n in graph.nodes if n.op == "concatenate"]
    assert [n.inputs for n in concat] == [("u1_left", "u1_right"), ("u2_keep", "u2_branch"),
                                          ("u3_keep", "u3_branch")]
    assert all(n.shape == (None, 7, 7, 48) for n in concat)


def test_unet_is_an_autoencoder_with_skips():
    graph = load_spec(SPECS / "unet_mini.cnn")
    ops = [n.op for n in graph.nodes]
    assert "conv2d_transpose" in ops and "upsampling2d" in ops and ops.count("concatenate") == 2
    assert graph.shape_of(graph.outputs[0]) == graph.shape_of(graph.inputs[0]) == (None, 28, 28, 1)
    assert graph.node("up2").shape == (None, 14, 14, 32)
    assert [graph.node(n).op for n in graph.node("concatenate_1").inputs] == ["upsampling2d",
                                                                            "conv2d"]
    train = graph.train
    assert (train.target, train.loss, train.noise) == ("input", "mean_squared_error", 0.3)
