"""The YAML front end: the schema, key paths with line and column in errors, safe loading."""

from __future__ import annotations

import pytest
from frontend_helpers import error_of
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnc.errors import CnncError, SpecError
from cnnc.frontend.dsl import load_dsl
from cnnc.frontend.yaml_spec import load_yaml, mapping_to_graph


def test_layer_forms_agree_with_the_dsl():
    text = """
network: forms
input: 28x28x1
layers:
  - {conv2d: [8, 3], activation: relu, padding: same}
  - Conv2D: {filters: 8, kernel_size: [3, 5], strides: 1}
  - conv2d: 8
    kernel_size: 3x3
  - {maxpool2d: [2, 2]}
  - MaxPooling2D
  - Flatten
  - {Dense: 10, activation: softmax, name: out}
"""
    dsl = """
network forms
input 28x28x1
conv2d 8 3 relu same
conv2d 8 3x5
conv2d 8 kernel_size=3
maxpool2d 2
maxpool2d
flatten
out: dense 10 softmax
"""
    assert load_yaml(text) == load_dsl(dsl)


def test_inputs_names_and_outputs():
    graph = load_yaml("""
input: {shape: [8], name: x}
layers:
  - {dense: 4, name: a}
  - {dense: 4, inputs: x, name: b}
  - add: {inputs: [a, b], name: s}
  - {dense: 2, inputs: [s], name: c}
  - {dense: 3, inputs: [s], name: d}
outputs: [c, d]
""")
    assert graph.node("a").inputs == ("x",)
    assert graph.node("s").inputs == ("a", "b")
    assert graph.outputs == ("c", "d")
    assert load_yaml("input: 2\nlayers: [{dense: 1, name: o}]\noutputs: o").outputs == ("o",)


def test_dict_from_python_gives_the_same_graph():
    data = {"network": "n", "input": [4], "layers": [{"dense": 2, "activation": "relu"}],
            "train": {"epochs": 2}}
    assert mapping_to_graph(data) == load_yaml(
        "network: n\ninput: [4]\nlayers: [{dense: 2, activation: relu}]\ntrain: {epochs: 2}")


def test_exponent_floats_are_numbers():
    graph = load_yaml("input: [2, 2, 3]\nlayers:\n  - {batchnorm: null, epsilon: 1e-5}\n"
                      "train: {optimizer: {name: adam, learning_rate: 3E-4}}")
    assert graph.nodes[1].attrs["epsilon"] == 1e-5
    assert graph.train.optimizer.learning_rate == 3e-4


def test_bad_value_error_has_file_line_column_and_key_path():
    text = ("input: [28, 28, 1]\nlayers:\n  - {conv2d: [8, 3]}\n  - {conv2d: [8, 3]}\n"
            "  - {conv2d: [8, 3]}\n  - {conv2d: 8, kernel_size: -1}\n")
    err = error_of(load_yaml, text, file="specs/x.yaml")
    assert isinstance(err, SpecError)
    assert (err.path, err.line, err.column) == ("layers[3].kernel_size", 6, 30)
    assert err.headline() == (
        "specs/x.yaml:6:30: layers[3].kernel_size: Expected a positive integer or a pair of "
        "positive integers. Received kernel_size=-1.")
    assert err.render().splitlines()[1:] == ["      - {conv2d: 8, kernel_size: -1}",
                                             " " * 33 + "^"]


def test_positional_value_errors_have_their_index():
    err = error_of(load_yaml, "input: [8, 8, 1]\nlayers:\n  - {conv2d: [0, 3]}")
    assert err.path == "layers[0].conv2d[0]"
    assert err.message == "Expected a strictly positive integer. Received filters=0."


def test_dict_errors_have_the_key_path_alone():
    err = error_of(mapping_to_graph, {"input": [8], "layers": [{"dense": 4},
                                                               {"dense": 2, "units": 3}]})
    assert err.headline() == "layers[1].units: argument 'units' is given twice (once by position)"
    assert err.span is None


@pytest.mark.parametrize("text,path,message,hint", [
    ("input: [8]\nlayer: [flatten]", "layer", "unknown key 'layer'", "did you mean 'layers'?"),
    ("input: [8]\nlayers:\n  - {dense: 4, unit: 3}", "layers[0].unit",
     "unknown argument 'unit' for dense", "did you mean 'units'?"),
    ("input: [8]\nlayers:\n  - {dense: 4, nmae: x}", "layers[0].nmae",
     "unknown argument 'nmae' for dense", "did you mean 'name'?"),
    ("input: [8]\nlayers:\n  - dens", "layers[0]", "unknown layer 'dens'",
     "did you mean 'dense'?"),
    ("input: [8]\nlayers:\n  - {Dnse: 4}", "layers[0]", "unknown layer 'Dnse'",
     "did you mean 'Dense'?"),
    ("input: [8]\nlayers: [flatten]\ntrain: {epohcs: 2}", "train.epohcs", "unknown key 'epohcs'",
     "did you mean 'epochs'?"),
    ("input: [8]\nlayers: [{dense: 2}]\ntrain: {optimizer: {name: adam, beta1: 0.9}}",
     "train.optimizer.beta1", "unknown key 'beta1'", "did you mean 'beta_1'?"),
])
def test_unknown_keys_get_a_suggestion(text, path, message, hint):
    err = error_of(load_yaml, text, file="k.yaml")
    assert (err.path, err.message, err.hint) == (path, message, hint)
    assert err.span is not None and err.file == "k.yaml"


def test_unknown_key_points_at_the_key():
    err = error_of(load_yaml, "input: [8]\nlayers:\n  - {dense: 4,   unit: 3}")
    assert (err.line, err.column) == (3, 18)


def test_train_value_error_points_at_the_value():
    err = error_of(load_yaml, "input: [8]\nlayers: [{dense: 2}]\ntrain:\n  epochs: 0\n")
    assert (err.path, err.line, err.column) == ("train.epochs", 4, 11)
    assert err.message == "Expected a strictly positive integer. Received epochs=0."


def test_unknown_reference_and_output():
    err = error_of(load_yaml, "input: [8]\nlayers:\n  - {dense: 2, name: a}\n"
                   "  - add: {inputs: [a, b]}\n")
    assert (err.path, err.line, err.column) == ("layers[1].inputs[1]", 4, 23)
    err = error_of(load_yaml, "input: [8]\nlayers: [{dense: 2}]\noutputs: [dens]")
    assert (err.path, err.hint) == ("outputs[0]", "did you mean 'dense'?")


def test_cycle_and_duplicate_name_point_at_the_layer_with_its_key_path():
    err = error_of(load_yaml, "input: [8]\nlayers:\n  - {dense: 4, name: a, inputs: [c]}\n"
                   "  - {dense: 4, name: b, inputs: [a]}\n  - {dense: 4, name: c, inputs: [b]}\n",
                   file="c.yaml")
    assert err.headline() == "c.yaml:3:6: layers[0]: cycle in the layer graph: a -> b -> c -> a"
    err = error_of(load_yaml, "input: [8]\nlayers:\n  - {dense: 4, name: x}\n"
                   "  - {dense: 2, name: x}\n", file="d.yaml")
    assert err.headline() == ("d.yaml:4:22: layers[1].name: duplicate layer name 'x' (first "
                              "defined at d.yaml:3:22)")


def test_duplicate_key_is_an_error_not_a_silent_overwrite():
    err = error_of(load_yaml, "input: [8]\nlayers: [flatten]\ninput: [9]\n")
    assert (err.path, err.line, err.message) == ("input", 3, "duplicate key 'input'")
    err = error_of(load_yaml, "input: [8]\nlayers:\n  - {dense: 2, activation: relu, "
                   "activation: tanh}")
    assert err.path == "layers[0].activation"


def test_key_given_twice_between_the_layer_mapping_and_its_siblings():
    err = error_of(load_yaml, "input: [8]\nlayers:\n  - dense: {units: 2}\n    units: 3\n")
    assert (err.path, err.message) == ("layers[0].units", "'units' is given twice")


def test_yaml_syntax_error_is_located():
    err = error_of(load_yaml, "input: [8]\nlayers:\n  - {dense: 2\n  - flatten\n", file="y.yaml")
    assert err.file == "y.yaml" and err.line is not None
    assert err.message.startswith("invalid YAML: ")


def test_python_tags_are_refused():
    err = error_of(load_yaml, "input: !!python/object/apply:os.system [echo hi]\nlayers: []")
    assert "could not determine a constructor" in err.message
    assert (err.line, err.column) == (1, 8)


@pytest.mark.parametrize("text,message", [
    ("", "the network is empty: the spec has no 'input' and no 'layers'"),
    ("# nothing\n", "the network is empty: the spec has no 'input' and no 'layers'"),
    ("input: [8]\n", "the network is empty: it has an input but no layers"),
    ("input: [8]\nlayers: []\n", "the network is empty: it has an input but no layers"),
    ("- dense\n", "a spec is a mapping with 'layers' (and 'input', 'train', ...), not a list"),
    ("input: [8]\nlayers: flatten\n", "expected a list of layers, such as [flatten, {dense: 10}]"),
    ("input: [8]\nlayers:\n  - 3\n", ("expected a layer: a name such as flatten, or a mapping "
                                      "such as {conv2d: [64, 3], activation: relu}")),
    ("input: [8]\nlayers:\n  - {name: x}\n", ("this item names no layer; write it as "
                                              "{LAYER: ARGUMENTS, ...}")),
    ("input: [8]\nlayers:\n  - {dense: 2, inputs: 3}\n", ("expected a layer name or a list of "
                                                          "layer names")),
    ("network: 3\ninput: [8]\nlayers: [flatten]", "expected the network's name, got 3"),
])
def test_malformed_specs(text, message):
    assert error_of(load_yaml, text).message == message


def test_train_section_may_be_empty():
    from cnnc.ir.train_config import TrainConfig

    assert load_yaml("input: [8]\nlayers: [{dense: 2}]\ntrain:\n").train == TrainConfig()


def test_shape_errors_carry_the_layer_path_and_name():
    err = error_of(load_yaml, "input: [8, 8, 4]\nlayers:\n  - {maxpool2d: 2, name: a}\n"
                   "  - add: {inputs: [input_layer, a]}\n", file="s.yaml")
    assert err.headline().startswith(
        "s.yaml:4:5: layers[1]: add: inputs of shapes (None, 8, 8, 4) and (None, 4, 4, 4) do "
        "not broadcast: axis -3 has sizes 8 and 4.")


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 40), st.floats(-2, 2),
                    st.sampled_from(["relu", "same", "dense", "conv2d", "28x28x1", "x", "",
                                     "input_layer", "adam", "cosine"]))
JUNK = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["name", "inputs", "units", "dense", "conv2d", "strides",
                                     "epochs", "optimizer", 3]), inner, max_size=3)),
    max_leaves=8)
LAYER_ITEMS = st.one_of(
    JUNK,
    st.fixed_dictionaries({"dense": JUNK}),
    st.fixed_dictionaries({"conv2d": JUNK, "padding": JUNK}),
    st.fixed_dictionaries({"add": st.just(None), "inputs": JUNK}),
)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    "network": JUNK, "input": JUNK, "layers": st.lists(LAYER_ITEMS, max_size=4),
    "outputs": JUNK, "train": JUNK, "extra": JUNK}))
def test_any_mapping_gives_a_graph_or_a_cnnc_error(data):
    try:
        mapping_to_graph(data)
    except CnncError as err:
        assert err.render()


# Issue 23: YAML's own mistakes get located messages with a hint.
def test_a_list_item_indented_deeper_is_named_as_such():
    text = "input: [8, 8, 1]\nlayers:\n  - {conv2d: [4, 3]}\n  - batchnorm\n   - relu\n"
    err = error_of(load_yaml, text, file="x.yaml")
    assert (err.path, err.line, err.column) == ("layers[1]", 4, 5)
    assert "'batchnorm - relu' is not a layer" in err.message
    assert "indented deeper" in err.message and "same column" in err.hint


def test_a_tab_in_the_indentation_is_named():
    err = error_of(load_yaml, "input: [8, 8, 1]\nlayers:\n\t- flatten\n", file="x.yaml")
    assert (err.line, err.column) == (3, 1)
    assert err.message == "invalid YAML: a tab character: YAML indents with spaces only"
    assert "spaces" in err.hint and "cannot start any token" not in err.render()


def test_a_mapping_where_the_layer_list_belongs_says_how_to_write_it():
    err = error_of(load_yaml, "input: [8, 8, 1]\nlayers:\n  conv2d: [4, 3]\n  flatten: true\n")
    assert err.path == "layers" and "expected a list of layers" in err.message
    assert "a mapping was given" in err.hint and "'- '" in err.hint


def test_layer_names_with_a_dash_elsewhere_still_read():
    graph = load_yaml("input: [8, 8, 1]\nlayers:\n  - {conv2d: [4, 3], name: my-conv}\n"
                      "  - flatten\n")
    assert "my-conv" in [n.name for n in graph.nodes]
