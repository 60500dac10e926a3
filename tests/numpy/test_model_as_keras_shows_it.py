"""The model as a Keras user looks at it (issue 23): summary(), count_params(), a repr naming
the network, backend, device and size, _repr_html_ for notebooks, class_names, and every public
name in dir(cnnc)."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.errors import CnncError

SPEC = """
network: tiny
input: [8, 8, 1]
layers:
  - {conv2d: [4, 3], activation: relu}
  - flatten
  - {dense: 10, activation: softmax}
train: {dataset: fashion_mnist, epochs: 1}
"""


def test_summary_prints_the_cnnc_summary_table(capsys):

    model = cnnc.compile(SPEC, backend="numpy")
    lines = []
    model.summary(print_fn=lines.append)
    assert len(lines) == 1
    model.summary(rf=True)
    printed = capsys.readouterr().out
    assert "RF size" in printed and "RF size" not in lines[0]
    assert lines[0].splitlines()[0] == 'Network: "tiny"'
    # 3x3x1x4 + 4 and (6*6*4)*10 + 10, counted by hand
    assert model.count_params() == 40 + 1450
    assert f"Total params: {40 + 1450:,}" in lines[0]
    assert "Training: fashion_mnist, 1 epoch, batch" in lines[0]  # not "1 epochs"


def test_repr_and_html_name_network_backend_and_size():
    model = cnnc.compile(SPEC, backend="numpy")
    assert repr(model) == "<cnnc.Model 'tiny' on numpy: 1,490 parameters, 0 training steps>"
    page = model._repr_html_()
    assert page.startswith("<div>") and "&#x27;tiny&#x27;" in page and "Total params" in page
    assert "<script" not in page
    model.train_step(np.zeros((2, 8, 8, 1), np.float32), np.array([0, 1]))
    assert repr(model).endswith("1,490 parameters, 1 training step>")  # not "1 training steps"
    assert repr(cnnc.Network("one", input=8)) == "<Network 'one': 1 layer>"


def test_repr_names_the_opencl_device():
    pytest.importorskip("pyopencl")
    from cnnc.backends.opencl.device import select_device
    from cnnc.errors import DeviceError

    try:
        device = select_device(None)
    except DeviceError as err:
        pytest.skip(f"no usable OpenCL device: {err}")
    model = cnnc.compile(SPEC, backend="opencl", device=device.index)
    assert f"on opencl {device.index} {device.name!r}" in repr(model)


def test_class_names_from_the_dataset_or_set():
    model = cnnc.compile(SPEC, backend="numpy")
    assert model.class_names[:2] == ("T-shirt/top", "Trouser") and len(model.class_names) == 10
    model.class_names = [f"c{i}" for i in range(10)]
    assert model.class_names[9] == "c9"
    with pytest.raises(CnncError, match="sequence of strings"):
        model.class_names = "abc"
    no_train = cnnc.compile(SPEC.split("train:")[0], backend="numpy")
    assert no_train.class_names is None


def test_evaluate_on_arrays_labels_the_confusion_matrix_with_the_class_names():
    model = cnnc.compile(SPEC, backend="numpy")
    model.class_names = [f"c{i}" for i in range(10)]
    ev = model.evaluate(np.zeros((3, 8, 8, 1), np.float32), np.array([0, 1, 9]), verbose=0)
    assert ev.class_names == model.class_names
    assert list(ev.to_dict()["per_class_accuracy"])[9] == "c9"


def test_dir_lists_every_public_name():
    names = dir(cnnc)
    for name in cnnc.__all__:
        assert name in names
        getattr(cnnc, name)
    assert {"Network", "CnncError", "compile", "load_spec"} <= set(names)
    # the module's own import helpers are no names of cnnc's for tab completion
    assert "TYPE_CHECKING" not in names and "annotations" not in names
