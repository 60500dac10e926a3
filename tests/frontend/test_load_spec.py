"""load_spec: files by extension, text by sniffing, dicts, Networks, Graphs, bundled specs."""

from __future__ import annotations

from pathlib import Path

import pytest
from frontend_helpers import SPECS, error_of

import cnnc
from cnnc.frontend.spec import bundled_specs, load_spec, sniff_format

DSL = "network n\ninput 8\ndense 2 softmax\n"
YAML = "network: n\ninput: [8]\nlayers:\n  - {dense: 2, activation: softmax}\n"


def test_cnnc_load_spec_is_the_front_door():
    assert cnnc.load_spec(SPECS / "fashion.yaml").param_count() == 1_413_834


@pytest.mark.parametrize("name,text", [("a.cnn", DSL), ("a.yaml", YAML), ("a.yml", YAML),
                                       ("a.spec", DSL), ("a.txt", YAML), ("noext", YAML)])
def test_files_by_extension_or_sniffed(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    graph = load_spec(path)
    assert graph == load_spec(str(path)) == load_spec(DSL)
    assert graph.node("dense").span.file == str(path)


def test_text_is_sniffed():
    assert load_spec(DSL) == load_spec(YAML)
    assert sniff_format("# c\n\nnetwork: x\n") == "yaml"
    assert sniff_format("{input: [8], layers: [flatten]}") == "yaml"
    assert sniff_format("# c\nnetwork x\n") == "dsl"
    assert sniff_format("input 8; dense 2") == "dsl"
    assert load_spec("input 8; dense 2").nodes[-1].op == "dense"


def test_dict_network_and_graph():
    graph = load_spec(YAML)
    assert load_spec({"network": "n", "input": [8],
                      "layers": [{"dense": 2, "activation": "softmax"}]}) == graph
    net = cnnc.Network("n", input=8)
    net.dense(2, activation="softmax")
    assert load_spec(net) == graph
    assert load_spec(graph) is graph
    assert load_spec(graph, name="m").name == "m"


def test_missing_file_is_a_clear_error():
    err = error_of(load_spec, "specs/does-not-exist.cnn")
    assert err.message == "no such file: specs/does-not-exist.cnn"
    err = error_of(load_spec, Path("/nowhere/fashon.yaml"))
    assert err.message == "no such file: /nowhere/fashon.yaml"
    assert err.hint == "did you mean 'fashion'?"


def test_directory_binary_and_unknown_inputs(tmp_path):
    assert "is a directory" in error_of(load_spec, tmp_path).message
    binary = tmp_path / "x.cnn"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    err = error_of(load_spec, binary)
    assert err.message == "not a spec: the file is not UTF-8 text" and err.file == str(binary)
    assert "cannot load a spec from a int" in error_of(load_spec, 3).message


def test_bundled_specs_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no specs/ folder here: the packaged copies answer
    assert "fashion.yaml" in bundled_specs() and "fashion.cnn" in bundled_specs()
    expected = load_spec(SPECS / "fashion.yaml")
    assert load_spec("specs/fashion.yaml") == expected
    assert load_spec("fashion") == expected
    assert load_spec("fashion.cnn") == load_spec(SPECS / "fashion.cnn")
    err = error_of(load_spec, "fashon")
    assert (err.message, err.hint) == ("no such file: fashon", "did you mean 'fashion'?")
    # Only a bare name or specs/NAME reaches the bundled copies.
    assert error_of(load_spec, "other/fashion.yaml").message.startswith("no such file")
