"""Every op on the default device against the NumPy reference, over a table of small networks.

For each case, the forward graph (as loaded, so dropout layers are there) and one training step
(loss, every gradient, the optimizer's updates) run on both backends; every node is compared run
alone on the reference's operands (tolerance: float32, scaled by the square root of the number of
terms summed, see cnnc/crosscheck.py) and the outputs after the whole run.
"""

from __future__ import annotations

import numpy as np
import pytest
from op_cases import CASES, Case

import cnnc
from cnnc.backends.opencl.target import Target
from cnnc.crosscheck import cross_check
from cnnc.ir.activations import ACTIVATIONS, parameters
from cnnc.ir.ops import node_op_names
from cnnc.ir.train_config import TrainConfig, parse_optimizer
from cnnc.passes.pipeline import inference_graph, training_graph
from cnnc.passes.sync_batchnorm import sync_batchnorm


def forward_graph(case: Case):
    return cnnc.load_spec(case.spec())


def train_graph(case: Case):
    config = TrainConfig(loss=case.loss, optimizer=parse_optimizer(case.optimizer))
    # wrt_inputs: the gradient of the input too, so every convolution's input gradient runs
    return training_graph(forward_graph(case), config, seed=7, wrt_inputs=True)


# The device's own tile choices, and a GPU's (local-memory tiles, narrow vectors, split
# reductions) run on whatever device there is, so both code paths are checked on every machine.
TILINGS = ["native", "gpu-tiling"]


def _target(tiling: str, device):
    if tiling == "native":
        return None
    if device.kind == "gpu":
        pytest.skip("the native tiling of a GPU device is the GPU tiling")
    return Target("gpu", device.compute_units, force_local_tiles=True)


@pytest.mark.parametrize("tiling", TILINGS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_forward_matches_numpy(case, tiling, device):
    cross_check(forward_graph(case), case.batch, device=device.index, seed=1,
                target=_target(tiling, device)).passed_kernels()


@pytest.mark.parametrize("tiling", TILINGS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_training_step_matches_numpy(case, tiling, device):
    report = cross_check(
        train_graph(case),
        case.batch,
        device=device.index,
        seed=2,
        step=3,
        target=_target(tiling, device),
    )
    report.passed_kernels()


@pytest.mark.parametrize("step", [0, 1, 977])
def test_dropout_masks_match_exactly(step, backend):
    """The same zeros in the same places, forward and backward, at every step."""
    from cnnc.backends.numpy import NumpyBackend
    from cnnc.crosscheck import random_feeds
    from cnnc.initializers import initial_values

    case = next(c for c in CASES if c.name == "dense_stack_dropout")
    graph = train_graph(case)
    dropouts = [n.name for n in graph.nodes if n.op in ("dropout_train", "dropout_grad")]
    assert len(dropouts) == 4
    state = initial_values(graph.state, 5)
    feeds = random_feeds(graph, 64, 5)
    ref = NumpyBackend()
    ref.init_state(graph.state, state)
    want = ref.compile(graph, 64).run(feeds, dropouts, step=step)
    backend.init_state(graph.state, state)
    got = backend.compile(graph, 64, keep=dropouts).run(feeds, dropouts, step=step)
    for name in dropouts:
        np.testing.assert_array_equal(got[name] == 0, want[name] == 0, err_msg=name)
        assert 0.2 < np.mean(want[name] == 0) < 0.7


def test_the_cases_cover_every_op():
    seen = set()
    for case in CASES:
        seen |= {n.op for n in forward_graph(case).nodes}
        seen |= {n.op for n in train_graph(case).nodes}
        seen |= {n.op for n in sync_batchnorm(train_graph(case)).nodes}  # data parallel
        seen |= {n.op for n in inference_graph(forward_graph(case)).nodes}  # fused ops
    missing = sorted(set(node_op_names()) - seen)
    assert not missing, f"no test case exercises: {', '.join(missing)}"


def test_the_cases_cover_every_activation_by_name_and_with_parameters():
    """Each activation of the table runs on the device and is differentiated there, and so does
    each one that takes parameters (Keras' ReLU), with them."""
    seen = set()
    for case in CASES:
        for node in (*forward_graph(case).nodes, *train_graph(case).nodes):
            if node.op in ("activation", "activation_grad"):
                seen.add((node.op, node.attrs["activation"], bool(parameters(node.attrs))))
    want = {("activation", a.name, False) for a in ACTIVATIONS.values()}
    # softmax's own gradient (softmax.cl) is not asked for here: the cases end it in a loss
    want |= {("activation_grad", a.name, False) for a in ACTIVATIONS.values() if a.elementwise}
    want |= {(op, a.name, True) for a in ACTIVATIONS.values() if a.params
             for op in ("activation", "activation_grad")}
    missing = sorted(want - seen)
    assert not missing, f"no test case exercises: {missing}"


def test_counter_based_uniforms_match_bit_for_bit(device):
    from cnnc import rng as crandom
    from cnnc.backends.opencl.program import program_cache
    from cnnc.backends.opencl.runtime import OpenCLBackend

    cl = pytest.importorskip("pyopencl")
    backend = OpenCLBackend(device)
    n = 10007
    for seed, step in ((0, 0), (1857729756, 12345), (0xFFFFFFFF, 0xFFFFFFFF)):
        kernel = program_cache(device).kernel("random.cl", "uniform", {})
        buf = backend.allocate(4 * n, "uniforms")
        kernel(backend.queue, (n,), None, buf, np.int32(n), np.uint32(seed), np.uint32(step))
        got = np.empty(n, np.float32)
        cl.enqueue_copy(backend.queue, got, buf)
        backend.queue.finish()
        np.testing.assert_array_equal(got, crandom.uniform(seed, step, n))
