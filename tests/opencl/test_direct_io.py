"""Direct runs (cnnc/backends/opencl/shared_io.py): inputs and outputs in memory the host shares
with the device, no copy commands; every result as the runs through copies give it."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.shared_io import shares_host_memory
from cnnc.backends.step_figures import Record
from cnnc.crosscheck import random_feeds
from cnnc.initializers import initial_values
from cnnc.passes import names
from cnnc.passes.pipeline import inference_graph, training_graph


@pytest.fixture(scope="module")
def lenet():
    return cnnc.load_spec("specs/lenet5.yaml")


@pytest.fixture
def shared_device(device):
    if not shares_host_memory(device):
        pytest.skip(f"{device.describe()} has no fine-grained SVM on the host's memory")
    return device


def _pair(device, graph, batch, **options):
    """The same graph and weights bound with direct runs and with copies."""
    exes = []
    for direct in (True, False):
        backend = OpenCLBackend(device, direct_io=direct)
        backend.init_state(graph.state, initial_values(graph.state, 0))
        exes.append(backend.compile(graph, batch, **options))
    assert exes[0]._shared is not None and exes[1]._shared is None
    return exes


def _count_copies(monkeypatch):
    import pyopencl as cl

    calls = []
    real = cl.enqueue_copy

    def copy(*args, **kw):
        calls.append(args[1:3])
        return real(*args, **kw)

    monkeypatch.setattr(cl, "enqueue_copy", copy)
    return calls


@pytest.mark.parametrize("batch", [1, 7])
def test_a_direct_forward_run_copies_nothing_and_matches_the_copies(shared_device, lenet, batch,
                                                                   monkeypatch):
    graph = inference_graph(lenet)
    direct, copies = _pair(shared_device, graph, batch)
    fetch = list(graph.outputs)
    results = []
    for seed in range(3):  # each run's outputs are the caller's: a later run changes none
        feeds = random_feeds(graph, batch, seed)
        want = copies.run(feeds, fetch)
        calls = _count_copies(monkeypatch)
        got = direct.run(feeds, fetch)
        monkeypatch.undo()
        assert calls == []
        for name in fetch:
            np.testing.assert_array_equal(got[name], want[name])
        results.append((got, want))
    for got, want in results:
        for name in fetch:
            np.testing.assert_array_equal(got[name], want[name])
    assert results[0][0][fetch[0]] is not results[1][0][fetch[0]]


def test_fetching_an_input_goes_through_copies(shared_device, lenet):
    """The arena does not receive a direct run's inputs: a run that returns one (or a view of
    one) takes the copies' way."""
    graph = inference_graph(lenet)
    name = graph.inputs[0]
    direct, _ = _pair(shared_device, graph, 2, keep=(name,))
    feeds = random_feeds(graph, 2, 0)
    out = direct.run(feeds, [name, graph.outputs[0]])
    np.testing.assert_array_equal(out[name], feeds[name])
    direct.run(random_feeds(graph, 2, 1), [graph.outputs[0]])  # direct again
    again = direct.run(feeds, [name])
    np.testing.assert_array_equal(again[name], feeds[name])


def test_training_steps_direct_queued_and_direct_again_match_the_copies(shared_device, lenet):
    """A training graph's runs in turn: direct (loss and predictions fetched), queued (inputs
    from the pinned sets, figures recorded), direct again; the arguments are pointed back and
    forth and every figure and weight is the copies' own."""
    graph = training_graph(lenet)
    direct, copies = _pair(shared_device, graph, 4, keep=(names.TARGET,))
    pred = graph.outputs[1]
    record = Record(names.LOSS, pred, names.TARGET)
    for step in range(4):
        feeds = random_feeds(graph, 4, step)
        if step == 2:
            for exe in (direct, copies):
                assert exe.run(feeds, [], step=step, record=record) == {}
            got, want = (exe.backend.read_step_figures() for exe in (direct, copies))
            assert got == want
            continue
        got = direct.run(feeds, [names.LOSS, pred], step=step)
        want = copies.run(feeds, [names.LOSS, pred], step=step)
        for name in (names.LOSS, pred):
            np.testing.assert_array_equal(got[name], want[name])
    weights = [s.name for s in graph.state if s.role == "param"]
    got, want = (exe.backend.read_state(weights) for exe in (direct, copies))
    for name in weights:
        np.testing.assert_array_equal(got[name], want[name])
