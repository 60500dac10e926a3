"""The data-movement kernels (elementwise.cl's copy_block, concat_rows and pad_rows, resample.cl,
channel_shuffle.cl) against the NumPy reference on the device, forward and gradients:
concatenations of many sources on every axis, channel slices, zero padding, cropping, both
upsamplings and channel shuffles of 2 to 16 groups, with odd sizes, one channel,
batch 1, and the launch cut three ways (the device's own, a GPU's one vector a work-item, and a
CPU's with rows cut into several chunks and several rows a work-item: tiling.run_grid)."""

from __future__ import annotations

import pytest

import cnnc
from cnnc.backends.opencl import tiling
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.ir.train_config import TrainConfig, parse_optimizer
from cnnc.passes.pipeline import training_graph

# (name, input, layers): each ends in layers the training step differentiates through.
NETWORKS = [
    (
        "concatenate_many",
        (5, 3, 2),
        [
            {"conv2d": [1, 1], "name": "a"},
            {"conv2d": [3, 1], "name": "b", "inputs": ["input_layer"]},
            {"conv2d": [7, 1], "name": "c", "inputs": ["input_layer"]},
            {"conv2d": [16, 1], "name": "d", "inputs": ["input_layer"]},
            {"concatenate": None, "inputs": ["a", "b", "input_layer", "c", "d", "a"],
             "name": "cat"},
            {"concatenate": None, "axis": 1, "inputs": ["cat", "cat", "cat"], "name": "rows"},
            {"concatenate": None, "axis": 2, "inputs": ["rows", "rows"], "name": "cols"},
            {"channel_slice": [1, 30], "name": "mid"},
            {"channel_slice": [0, 1], "name": "first", "inputs": ["cols"]},
            {"concatenate": None, "inputs": ["first", "mid"]},
            {"conv2d": [3, 2], "strides": 2},
        ],
    ),
    (
        "padding_cropping",
        (5, 7, 1),
        [
            {"zero_padding2d": [[2, 1], [0, 3]]},
            {"cropping2d": [[1, 3], [2, 1]]},
            {"conv2d": [5, 3], "padding": "same"},
            {"zero_padding2d": [[0, 1], [1, 0]]},
            {"cropping2d": [[0, 2], [3, 0]]},
            {"conv2d": [2, 2]},
        ],
    ),
    (
        "upsampling_nearest",
        (3, 5, 1),
        [
            {"upsampling2d": [2, 3]},
            {"conv2d": [5, 3], "padding": "same"},
            {"upsampling2d": [3, 1]},
            {"conv2d": [16, 1]},
            {"upsampling2d": 2},
            {"conv2d": [2, 3], "strides": 3},
        ],
    ),
    (
        "upsampling_bilinear",
        (3, 4, 1),
        [
            {"upsampling2d": [2, 3], "interpolation": "bilinear"},
            {"conv2d": [5, 3], "padding": "same"},
            {"upsampling2d": [3, 1], "interpolation": "bilinear"},
            {"conv2d": [16, 1]},
            {"upsampling2d": 2, "interpolation": "bilinear"},
            {"conv2d": [2, 3], "strides": 3},
        ],
    ),
]

NETWORKS += [
    (
        "channel_shuffle",
        (3, 2, 4),
        [
            {"conv2d": [32, 1], "name": "pw"},
            {"channel_shuffle": 2},
            {"channel_shuffle": 4},
            {"channel_shuffle": 16},
            {"conv2d": [12, 1]},
            {"channel_shuffle": 3},
            {"conv2d": [2, 2]},
        ],
    ),
]

# How the launches are cut: the device's own; a GPU's; a CPU's with a handful of floats a
# work-item, so that long rows take several chunks and short ones several rows a work-item.
CUTS = ["native", "gpu", "cpu-small-chunks"]


def _target(cut: str, device, monkeypatch):
    if cut == "gpu":
        return Target("gpu", device.compute_units)
    if cut == "cpu-small-chunks":
        if device.kind != "cpu":
            pytest.skip("a CPU's cut of the launches")
        monkeypatch.setattr(tiling, "CPU_RUN_FLOATS", 12)
        return Target("cpu", device.compute_units, native_vector=device.native_vector_width)
    return None


def _graph(name, shape, layers, train):
    graph = cnnc.load_spec({"network": name, "input": list(shape), "layers": layers})
    if not train:
        return graph
    config = TrainConfig(loss="mean_squared_error", optimizer=parse_optimizer("sgd"))
    return training_graph(graph, config, seed=7, wrt_inputs=True)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("net", NETWORKS, ids=[n[0] for n in NETWORKS])
@pytest.mark.parametrize("train", [False, True], ids=["forward", "training"])
def test_data_movement_matches_numpy(net, cut, batch, train, device, monkeypatch):
    target = _target(cut, device, monkeypatch)
    graph = _graph(*net, train)
    ops = {n.op for n in graph.nodes}
    want = {"concatenate_many": {"concatenate", "channel_slice"},
            "padding_cropping": {"zero_padding2d", "cropping2d"},
            "channel_shuffle": {"channel_shuffle"}}.get(net[0], {"upsampling2d"})
    if train:
        want |= {"upsampling2d_grad"} if "upsampling" in net[0] else set()
        want |= {"channel_slice_grad", "slice"} if net[0] == "concatenate_many" else set()
    assert want <= ops, sorted(ops)
    cross_check(graph, batch, device=device.index, seed=batch, step=1,
                target=target).passed_kernels()


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
@pytest.mark.parametrize("run_floats", [12, 2048])
@pytest.mark.parametrize("rows,run,unit", [(1, 1, 1), (7, 5, 1), (3, 4096, 1), (1000, 48, 1),
                                           (5, 37, 16), (2, 3, 1), (9, 130, 3)])
def test_run_grid_covers_each_float_once(kind, run_floats, rows, run, unit, monkeypatch):
    """Walk the work-items as copy_block does: each (row, position) exactly once, chunks whole
    vectors, within the device's work-item counts."""
    monkeypatch.setattr(tiling, "CPU_RUN_FLOATS", run_floats)
    target = Target(kind, 2)
    vw = tiling.run_vector(run, target=target)
    rows_per, chunk, chunks, items = tiling.run_grid(rows, run, vw, target, unit=unit)
    assert chunk % (vw if unit == 1 else 1) == 0
    seen = []
    for t in range(tiling.flat(items)[0]):
        b = t // chunks
        k0, k1 = (t - b * chunks) * chunk, min((t - b * chunks + 1) * chunk, run)
        for r in range(b * rows_per, min((b + 1) * rows_per, rows)):
            seen += [(r, k) for k in range(k0, k1)]
    assert sorted(seen) == [(r, k) for r in range(rows) for k in range(run)]
    if kind == "cpu":
        assert rows_per * chunk * unit <= max(run_floats, unit * chunk)


def test_a_concatenation_of_few_inputs_is_one_launch():
    """2 to CONCAT_MAX_INPUTS inputs: concat_rows, one launch (a small tensor's copies cost
    more in launches than in floats); more: a copy_block each."""
    from cnnc.backends.opencl.plan import make_plan
    from cnnc.backends.opencl.primitives import CONCAT_MAX_INPUTS

    net = next(n for n in NETWORKS if n[0] == "concatenate_many")
    graph = _graph(*net, train=False)
    plan = make_plan(graph, 2, Target("cpu", 2))
    kernels: dict[str, list[str]] = {}
    for node, lau in plan.launches():
        kernels.setdefault(node, []).append(lau.kernel)
    concats = [n for n in graph.nodes if n.op == "concatenate"]
    assert any(len(n.inputs) > CONCAT_MAX_INPUTS for n in concats)
    assert any(len(n.inputs) <= CONCAT_MAX_INPUTS for n in concats)
    for n in concats:
        want = (["concat_rows"] if len(n.inputs) <= CONCAT_MAX_INPUTS
                else ["copy_block"] * len(n.inputs))
        assert kernels[n.name] == want, n.name
