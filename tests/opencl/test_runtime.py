"""The OpenCL runtime: state kept on the device, one queue, no host round trips inside a run."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cnnc
from cnnc.crosscheck import random_feeds
from cnnc.errors import CnncError, DeviceError, InputError, InternalError
from cnnc.initializers import initial_values
from cnnc.passes.pipeline import inference_graph, training_graph


@pytest.fixture(scope="module")
def lenet():
    return cnnc.load_spec("specs/lenet5.yaml")


def test_a_training_step_is_enqueued_without_host_synchronisation(device, lenet, monkeypatch):
    """Per run: one write per input, one read per fetched value, one wait at the very end (runs
    through copies; test_direct_runs_need_no_copies for the others)."""
    import pyopencl as cl

    from cnnc.backends.opencl.runtime import OpenCLBackend

    backend = OpenCLBackend(device, direct_io=False)
    graph = training_graph(lenet)
    backend.init_state(graph.state, initial_values(graph.state, 0))
    exe = backend.compile(graph, 4)
    feeds = random_feeds(graph, 4, 0)
    exe.run(feeds, ["train/loss"])  # first run: nothing left to compile
    calls = []
    real_copy, real_launch = cl.enqueue_copy, cl.enqueue_nd_range_kernel

    def unwrap(queue):
        return queue._queue if isinstance(queue, Queue) else queue

    def copy(queue, dest, src, **kw):
        calls.append(("copy", kw.get("is_blocking", True)))
        return real_copy(unwrap(queue), dest, src, **kw)

    def launch(queue, *args, **kw):
        calls.append(("launch", False))
        return real_launch(unwrap(queue), *args, **kw)

    class Queue:  # records waits on the queue
        def __init__(self, queue):
            self._queue = queue

        def finish(self):
            calls.append(("finish", True))
            return self._queue.finish()

        def __getattr__(self, name):
            return getattr(self._queue, name)

    monkeypatch.setattr(cl, "enqueue_copy", copy)
    monkeypatch.setattr(cl, "enqueue_nd_range_kernel", launch)
    monkeypatch.setattr(backend, "queue", Queue(backend.queue))
    exe.run(feeds, ["train/loss", graph.outputs[1]], step=1)
    kinds = [c[0] for c in calls]
    # inputs in, the optimizer's per-step scalars in one write, loss and predictions out
    assert kinds.count("copy") == len(feeds) + 1 + 2
    assert kinds.count("launch") == len(exe.bound)
    assert not any(blocking for kind, blocking in calls if kind == "copy")
    assert kinds.count("finish") == 1 and kinds[-1] == "finish"
    first_launch = len(feeds) + 1
    assert all(k == "launch" for k in kinds[first_launch : first_launch + len(exe.bound)])


def test_update_scalars_are_one_table_written_once_per_run(backend, lenet, monkeypatch):
    """No kernel argument is set per step for the optimizer: one table holds each distinct
    set of scalars once (every parameter of one optimizer shares it), written per run with the
    values the update op's rule gives for that step and learning rate."""
    import pyopencl as cl

    graph = training_graph(lenet)
    backend.init_state(graph.state, initial_values(graph.state, 0))
    exe = backend.compile(graph, 2)
    updates = [n for n in graph.nodes if n.op.endswith("_update") and n.opdef.scalars]
    assert len(updates) > 2 and len({n.op for n in updates}) == 1
    assert {exe._scalars_at[n.name] for n in updates} == {0}
    feeds = random_feeds(graph, 2, 0)
    exe.run(feeds, ["train/loss"], step=4, learning_rate=0.25)
    table = np.empty(exe._scalar_count, np.float32)
    cl.enqueue_copy(backend.queue, table, exe.scalar_table, is_blocking=True)
    node = updates[0]
    expected = np.array(node.opdef.scalars(node.attrs, 4, 0.25), np.float32)
    np.testing.assert_array_equal(table, expected)
    set_args = []
    for b in exe.bound:
        monkeypatch.setattr(b, "kernel", _Recording(b.kernel, set_args))
    exe._set_dynamic_args(5)
    assert set_args == [i for b in exe.bound for i, _ in b.dynamic_args]
    assert not [b for b in exe.bound if b.dynamic_args and b.node in exe._scalars_at]


class _Recording:
    """A kernel whose set_arg calls are listed (the argument indices)."""

    def __init__(self, kernel, calls):
        self._kernel, self._calls = kernel, calls

    def set_arg(self, i, value):
        self._calls.append(i)
        return self._kernel.set_arg(i, value)

    def __getattr__(self, name):
        return getattr(self._kernel, name)


def test_state_stays_on_the_device_and_is_read_back_on_request(backend, lenet):
    graph = training_graph(lenet)
    state = initial_values(graph.state, 1)
    backend.init_state(graph.state, state)
    exe = backend.compile(graph, 3)
    feeds = random_feeds(graph, 3, 1)
    exe.run(feeds, ["train/loss"], step=0)
    name = next(s.name for s in graph.state if s.name.endswith("/kernel"))
    after = backend.read_state([name])[name]
    assert not np.array_equal(after, state[name])  # the update ran on the device
    backend.write_state({name: state[name]})
    np.testing.assert_array_equal(backend.read_state([name])[name], state[name])


def test_init_state_again_rebinds_compiled_launches(backend, lenet):
    graph = inference_graph(lenet)
    backend.init_state(graph.state, initial_values(graph.state, 2))
    exe = backend.compile(graph, 2)
    feeds = random_feeds(graph, 2, 2)
    first = exe.run(feeds, list(graph.outputs))
    # replacing state with new shapes' worth of buffers (a different seed) changes the result
    backend.init_state(graph.state, initial_values(graph.state, 3))
    second = exe.run(feeds, list(graph.outputs))
    ref = cnnc.backends.numpy.NumpyBackend()
    ref.init_state(graph.state, initial_values(graph.state, 3))
    want = ref.compile(graph, 2).run(feeds, list(graph.outputs))
    out = graph.outputs[0]
    assert not np.allclose(first[out], second[out])
    np.testing.assert_allclose(second[out], want[out], rtol=1e-4, atol=1e-6)


def test_bad_feeds_and_fetches_are_clear_errors(backend, lenet):
    graph = inference_graph(lenet)
    backend.init_state(graph.state, initial_values(graph.state, 0))
    exe = backend.compile(graph, 2)
    feeds = random_feeds(graph, 2, 0)
    with pytest.raises(InputError, match="must have shape"):
        exe.run({k: v[:1] for k, v in feeds.items()}, list(graph.outputs))
    with pytest.raises(InputError, match="missing"):
        exe.run({}, list(graph.outputs))
    hidden = graph.nodes[1].name
    with pytest.raises(CnncError, match="not kept") as err:
        exe.run(feeds, [hidden])
    assert isinstance(err.value, InternalError)  # cnnc's own code chooses what to fetch
    with pytest.raises(InternalError, match="'no_such_value' is not a value of graph"):
        exe.run(feeds, ["no_such_value"])


def test_each_fetch_list_is_checked_once_and_every_new_one_is_checked(backend, lenet,
                                                                      monkeypatch):
    """A run checks the names it is asked to fetch the first time it sees that list, and only
    then (a batch-1 run after a pause pays microseconds for every call): a list not seen
    before, a wrong one however often asked, and one string still meet check_fetch."""
    from cnnc.backends.opencl import runtime

    graph = inference_graph(lenet)
    backend.init_state(graph.state, initial_values(graph.state, 0))
    exe = backend.compile(graph, 2)
    feeds = random_feeds(graph, 2, 0)
    out = graph.outputs[0]
    checked = []
    real = runtime.check_fetch

    def counting(graph, fetch, **kw):
        checked.append(tuple(fetch))
        return real(graph, fetch, **kw)

    monkeypatch.setattr(runtime, "check_fetch", counting)
    first = exe.run(feeds, [out])[out]
    for fetch in ([out], (out,), [out]):
        np.testing.assert_array_equal(exe.run(feeds, fetch)[out], first)
    assert checked == [(out,)]
    assert exe.run(feeds, []) == {} and checked == [(out,), ()]
    for _ in range(2):
        with pytest.raises(InternalError, match="'no_such_value' is not a value of graph"):
            exe.run(feeds, [out, "no_such_value"])
    with pytest.raises(InternalError, match="not one string"):
        exe.run(feeds, out)


def test_a_feed_must_be_of_its_inputs_kind(backend, lenet):
    """Nothing is converted silently: float labels and integer images are errors, as on the
    NumPy backend (cnnc.backends.base.check_feeds); float64 images are computed in float32."""
    graph = training_graph(lenet)
    backend.init_state(graph.state, initial_values(graph.state, 0))
    exe = backend.compile(graph, 2)
    feeds = random_feeds(graph, 2, 0)
    image, label = (n.name for n in graph.nodes if n.op == "input")
    assert feeds[image].dtype == np.float32 and feeds[label].dtype == np.int32
    with pytest.raises(InputError, match=f"input '{label}' expects integers, received float32"):
        exe.run({**feeds, label: feeds[label].astype(np.float32)}, ["train/loss"])
    with pytest.raises(InputError, match=f"input '{image}' expects floating-point values, "
                                         "received int32"):
        exe.run({**feeds, image: feeds[image].astype(np.int32)}, ["train/loss"])
    state = initial_values(graph.state, 0)
    wide = exe.run({**feeds, image: feeds[image].astype(np.float64)}, ["train/loss"])
    backend.init_state(graph.state, state)  # undo the update of the step before
    narrow = exe.run(feeds, ["train/loss"])
    np.testing.assert_array_equal(wide["train/loss"], narrow["train/loss"])


def test_running_before_the_state_exists_is_a_clear_error(device, lenet):
    from cnnc.backends.opencl.runtime import OpenCLBackend

    graph = inference_graph(lenet)
    exe = OpenCLBackend(device).compile(graph, 2)
    with pytest.raises(CnncError, match="has no value on the device"):
        exe.run(random_feeds(graph, 2, 0), list(graph.outputs))


@pytest.mark.parametrize("general", [False, True])
def test_a_failing_launch_is_named(device, lenet, monkeypatch, general):
    """The run's launch loop (the fast one of a predict, or the general one) names the node
    and kernel of the launch the driver refuses: here the third, given a work-group larger
    than any device takes."""
    import pyopencl as cl

    from cnnc.backends.opencl.runtime import OpenCLBackend

    graph = inference_graph(lenet)
    backend = OpenCLBackend(device)
    backend.init_state(graph.state, initial_values(graph.state, 0))
    exe = backend.compile(graph, 2)
    feeds = random_feeds(graph, 2, 0)
    exe.run(feeds, list(graph.outputs))
    if general:
        exe._calls = None
    bad = exe.bound[2]
    real_launch = cl.enqueue_nd_range_kernel

    def launch(queue, kernel, global_size, local_size, *args, **kw):
        if kernel is bad.kernel:
            global_size, local_size = (1 << 20,) * len(global_size), (1 << 20,) * len(
                global_size)
        return real_launch(queue, kernel, global_size, local_size, *args, **kw)

    monkeypatch.setattr(cl, "enqueue_nd_range_kernel", launch)
    with pytest.raises(DeviceError, match=f"while running node '{bad.node}' "
                                          rf"\({bad.launch.file}:{bad.launch.kernel}\)"):
        exe.run(feeds, list(graph.outputs))


def test_too_large_a_batch_says_to_lower_it(backend):
    graph = inference_graph(cnnc.load_spec("specs/fashion.yaml"))
    # the largest value per example (the stem's 28x28x64 map is pooled as it is stored)
    largest = max(math.prod(n.shape[1:]) for n in graph.nodes if n.shape is not None)
    assert largest == 14 * 14 * 128
    batch = 1 + backend.device.max_allocation // (largest * 4)
    with pytest.raises(DeviceError) as err:
        backend.compile(graph, batch)
    assert "lower the batch size" in err.value.render()


def test_only_float32(device):
    from cnnc.backends.opencl.runtime import OpenCLBackend

    with pytest.raises(CnncError, match="float32"):
        OpenCLBackend(device, dtype="float64")
