"""Chains (cnnc/backends/opencl/chain.py): a small forward pass's launches on a CPU device run
as one launch, each layer's kernel compiled as a unit of its own and linked; the results are
the NumPy reference's and the launch-a-layer executable's, whatever the order in which the
chain's work-groups start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cnnc
from cnnc.backends.opencl import chain
from cnnc.backends.opencl.launches import Int, Launch, UInt, Value, Zeros, launch
from cnnc.backends.opencl.program import UnitFailed

SPECS = sorted(p for p in (Path(__file__).parents[2] / "specs").glob("*.yaml"))
# The specs whose whole batch-1 pass is checked in the default run; every spec with -m slow.
QUICK = ("fashion-plus.yaml", "mobilenetv3_mini.yaml", "shufflenet_mini.yaml")


def _pair(spec, device, batch: int, seed: int = 5):
    """The OpenCL model's executable at `batch` (with chains) and the NumPy reference."""
    ocl = cnnc.compile(str(spec), backend="opencl", device=device.index, seed=seed)
    ref = cnnc.compile(str(spec), backend="numpy", seed=seed)
    return ocl, ref


def _inputs(model, batch: int, seed: int = 0) -> np.ndarray:
    shape = model.graph.node(model.input_names[0]).shape[1:]
    return np.random.default_rng(seed).random((batch, *shape), dtype=np.float32)


def _check_spec(spec, device, batch: int) -> None:
    ocl, ref = _pair(spec, device, batch)
    exe = ocl.prepare(batch)
    assert exe._chains, f"{spec.name}: no chain at batch {batch}"
    assert len(exe._calls) < len(exe.bound)
    for seed in (0, 1):  # a second input: the chain reads the new one
        x = _inputs(ref, batch, seed)
        np.testing.assert_allclose(ocl.predict(x, batch_size=batch),
                                   ref.predict(x, batch_size=batch), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec", [p for p in SPECS if p.name in QUICK],
                         ids=[p.name for p in SPECS if p.name in QUICK])
def test_batch_1_passes_in_chains_agree_with_numpy(spec, chains_on):
    _check_spec(spec, chains_on, 1)


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("spec", SPECS, ids=[p.name for p in SPECS])
def test_every_spec_in_chains_agrees_with_numpy(spec, batch, chains_on):
    _check_spec(spec, chains_on, batch)


def test_a_chain_follows_new_weights_and_leaves_training_alone(chains_on):
    spec = Path(__file__).parents[2] / "specs" / "lenet5.yaml"
    ocl, ref = _pair(spec, chains_on, 2)
    x = _inputs(ref, 2)
    assert ocl.prepare(2)._chains
    weights = {k: v * 0.5 + 0.01 for k, v in ocl.get_weights().items()}
    ocl.set_weights(weights)
    ref.set_weights(weights)
    np.testing.assert_allclose(ocl.predict(x), ref.predict(x), rtol=1e-4, atol=1e-5)
    train = ocl.prepare(2, train=True)
    assert not getattr(train, "_chains", None)  # a training step writes state: no chains


def test_no_chains_past_the_batch_limit_or_when_turned_off(chains_on, monkeypatch):
    spec = Path(__file__).parents[2] / "specs" / "lenet5.yaml"
    ocl = cnnc.compile(str(spec), backend="opencl", device=chains_on.index)
    assert not ocl.prepare(chain.MOST_EXAMPLES + 1)._chains
    monkeypatch.setenv("CNNC_CHAINS", "0")
    assert not ocl.prepare(1)._chains


@pytest.mark.parametrize("workers", [1, 3, 4])
def test_any_number_of_work_groups_computes_the_same(chains_on, workers):
    """The chain's claims and waits: one work-group does every layer alone (as when the other
    never starts); more than the device's cores, each finds what is left."""
    spec = Path(__file__).parents[2] / "specs" / "fashion-plus.yaml"
    ocl, ref = _pair(spec, chains_on, 1)
    exe = ocl.prepare(1)
    x = _inputs(ref, 1)
    want = ref.predict(x)
    np.testing.assert_allclose(ocl.predict(x), want, rtol=1e-4, atol=1e-5)
    chained = exe._chains[0][2]
    exe._calls = tuple((k, (workers,) if k is chained else g, lo) for k, g, lo in exe._calls)
    for _ in range(3):  # the counters are zeroed by the last work-group to leave
        np.testing.assert_allclose(ocl.predict(x), want, rtol=1e-4, atol=1e-5)


def test_a_kernel_whose_unit_does_not_compile_runs_alone(chains_on, monkeypatch):
    spec = Path(__file__).parents[2] / "specs" / "fashion-plus.yaml"
    ocl, ref = _pair(spec, chains_on, 1)
    real = chain.unit_source

    def broken(text, link, index):  # the second layer's unit: a helper the chain cannot see
        source = real(text, link, index)
        if link.launch.kernel == "winograd_fused" and index == 1:
            source += "\nstatic int cnnc_broken(void) { return undeclared_name; }\n"
        return source

    monkeypatch.setattr("cnnc.backends.opencl.runtime.unit_source", broken)
    programs = ocl.backend.programs
    monkeypatch.setattr(programs, "unchainable", set())  # this test's failure, not the next's
    exe = ocl.prepare(1)
    alone = [b for b in exe.bound if (b.launch.file, b.launch.kernel) ==
             ("winograd.cl", "winograd_fused")]
    assert exe._chains and len(exe._calls) >= 2
    assert any(call[0] is alone[0].kernel for call in exe._calls)  # the broken one, alone
    x = _inputs(ref, 1)
    np.testing.assert_allclose(ocl.predict(x), ref.predict(x), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ the plan, without a device

def _launch(kernel: str, local=(1,), args: int = 3, file: str = "x.cl") -> Launch:
    return launch(file, kernel, (8,), (Value("a"),) * (args - 1) + (Int(1),), None, local)


SYNCS = """
#ifdef SHARES
__kernel void shares(__global float *x) { __local float t[4]; barrier(CLK_LOCAL_MEM_FENCE); }
#endif
#ifdef ALONE
__kernel void alone(__global float *x) { x[get_global_id(0)] = 0.0f; }
#endif
"""


def test_a_kernel_that_synchronises_chains_only_with_one_work_item_a_group():
    assert chain.chainable(_launch("alone", (4,)), SYNCS, 2)
    assert not chain.chainable(_launch("shares", (4,)), SYNCS, 2)
    assert chain.chainable(_launch("shares", (1,)), SYNCS, 2)
    assert not chain.chainable(_launch("shares", None), SYNCS, 2)


def test_chains_are_cut_at_what_cannot_chain_and_at_the_argument_budget():
    launches = [_launch("alone"), _launch("alone"), _launch("shares", (4,)), _launch("alone"),
                _launch("alone", args=70), _launch("alone", args=70), _launch("alone")]
    plans = chain.plan_chains(launches, [SYNCS] * len(launches), 2, 1024)
    assert [(first, len(links)) for first, links in plans] == [(0, 2), (3, 2), (5, 2)]
    assert [link.base for link in plans[1][1]] == [0, 3]
    skipped = chain.plan_chains(launches, [SYNCS] * len(launches), 2, 1024,
                                skip=lambda lau: lau is launches[1])
    assert [(first, len(links)) for first, links in skipped] == [(3, 2), (5, 2)]


def test_claims_are_few_and_leave_the_busiest_worker_the_least():
    assert chain.claim_size(1, 2) == 1
    assert chain.claim_size(7, 2) == 1  # 4 and 3 work-groups
    assert chain.claim_size(112, 2) == 14  # 8 claims, 4 each
    sizes = {n: chain.claim_size(n, 2) for n in range(1, 300)}
    for n, size in sizes.items():
        claims = -(-n // size)
        assert claims >= min(n, 2 * chain.CLAIMS_PER_WORKER)
        assert -(-claims // 2) * size <= -(-n // 2) + size  # at most a claim over an even split


def test_a_unit_makes_its_kernel_a_function_of_the_chains_ids():
    link = chain.Link(_launch("alone", (4,)), 0, (4, 1, 1))
    unit = chain.unit_source(SYNCS, link, 3)
    assert "cnnc_chain_link_3(" in unit
    assert "#define alone cnnc_chain_layer" in unit
    assert "#define shares(...) cnnc_chain_unused_shares(" in unit  # the file's other kernel
    assert "cnnc_chain_cannot_wait_for_work_items" in unit  # barrier is an error at 4 a group
    serial = chain.unit_source(SYNCS, chain.Link(_launch("shares"), 0, (1, 1, 1)), 0)
    assert "#define barrier(flags) ((void)0)" in serial


def test_routes_pass_each_key_once_integers_as_literals_and_the_arena_once():
    two = [chain.Link(launch("x.cl", "alone", (8,), args, None, (1,)), 0, (1, 1, 1))
           for args in ((Value("a"), Value("b"), Int(-3)), (Value("b"), Value("c"), UInt(7)))]
    plain = chain.route(two)  # a parameter per argument, as each launch has them
    assert plain.params == ("__global void *",) * 2 + ("int",) + ("__global void *",) * 2 + (
        "uint",)
    assert plain.exprs == (("p0", "p1", "p2"), ("p3", "p4", "p5"))
    assert plain.slots == ((0, 1, 2), (3, 4, 5)) and plain.arenas == ()

    def place(j, i, arg):
        if isinstance(arg, (Int, UInt)):
            return arg.value
        return (chain.InArena("arena", 64 * j + 16 * i) if arg.name == "b"
                else chain.Shared(arg.name))
    routes = chain.route(two, place)
    assert routes.params == ("__global void *", "__global char *", "__global void *")
    assert routes.exprs == (("p0", "(__global void *)(p1 + 16UL)", "(-3)"),
                            ("(__global void *)(p1 + 64UL)", "p2", "7u"))
    assert routes.slots == ((0, None, None), (None, 2, None)) and routes.arenas == (("arena", 1),)
    source = chain.chain_source(two, 2, routes)
    assert "__kernel void cnnc_chain(__global void * p0, __global char * p1, __global void * " \
        "p2, __global volatile uint *restrict counts)" in source
    assert "cnnc_chain_link_1(&ids, (__global void *)(p1 + 64UL), p2, 7u);" in source


@pytest.mark.parametrize("arg, value", [(Int(0), 2**31), (UInt(0), -1), (Int(0), True),
                                        (Int(0), 1.0)])
def test_a_literal_is_an_integer_of_its_type_or_nothing(arg, value):
    from cnnc.errors import InternalError

    with pytest.raises(InternalError):
        chain._literal(arg, value)
    assert chain._literal(Int(0), -(2**31)) == "(-2147483647 - 1)"


def test_a_chain_passes_its_buffers_once_and_the_arena_once(chains_on):
    """fashion-best's chain of 21 launches has 105 arguments; its kernel receives the input,
    the output, the state, the zeros and the arena, once each, and the counters."""
    import pyopencl as cl

    spec = Path(__file__).parents[2] / "specs" / "fashion-best.yaml"
    exe = cnnc.compile(str(spec), backend="opencl", device=chains_on.index).prepare(1)
    (first, count, kernel), = exe._chains
    launches = [b.launch for b in exe.bound[first:first + count]]
    storage = exe.plan.memory.storage
    moved = {storage.get(n, n) for n in (*exe.graph.inputs, *exe.graph.outputs)}
    buffers = {("state", a.name) if a.name in exe.graph.state_map else storage.get(a.name, a.name)
               for lau in launches for a in lau.args if isinstance(a, Value)}
    own = {b for b in buffers if b in moved or b[0] == "state"}
    zeros = any(isinstance(a, Zeros) for lau in launches for a in lau.args)
    assert kernel.get_info(cl.kernel_info.NUM_ARGS) == len(own) + zeros + len(exe.arenas) + 1
    assert sum(len(lau.args) for lau in launches) > 3 * (len(own) + zeros + 2)


def test_a_chain_follows_its_inputs_and_outputs_to_the_arena_and_back(chains_on):
    """A run that fetches its input reads the arena, where a predict reads the shared
    allocations (shared_io.py): the chain's parameters for them follow each switch."""
    spec = Path(__file__).parents[2] / "specs" / "fashion-plus.yaml"
    ref = cnnc.compile(str(spec), backend="numpy", seed=5)
    inp, out = ref.graph.inputs[0], ref.graph.outputs[0]
    ocl = cnnc.compile(str(spec), backend="opencl", device=chains_on.index, seed=5)
    exe = ocl.backend.compile(ocl.graph, 1, keep=[inp])  # the model's weights, input kept
    assert exe._chains and exe._shared is not None
    for seed in range(4):
        x = _inputs(ref, 1, seed)
        fetch = [out, inp] if seed % 2 else [out]
        got = exe.run({inp: x}, fetch)
        np.testing.assert_allclose(got[out], ref.predict(x), rtol=1e-4, atol=1e-5)
        assert exe._shared.direct == (seed % 2 == 0)


def test_a_failed_unit_says_which(chains_on):
    from cnnc.backends.opencl.program import link_cached, program_cache

    units = [("void cnnc_chain_link_0(void) {}\n", ()), ("this is not C\n", ())]
    with pytest.raises(UnitFailed) as err:
        link_cached(program_cache(chains_on), units, "__kernel void cnnc_chain(void) {}\n")
    assert err.value.index == 1


HEADS = """
network: heads
input: [1000]
layers:
  - {dense: 64, activation: relu}
  - {dense: UNITS, activation: softmax}
"""


@pytest.mark.parametrize("units", [10, 100])
def test_a_plan_for_chains_gives_the_dense_kernels_one_work_item_a_group(units):
    """gemv's group sums a reduction in parts, dense_softmax's holds a row's logits: in a
    chain each runs a work-item a group (a head too wide for one work-item's registers is
    left to gemv and a softmax launch)."""
    from cnnc.backends.opencl.plan import make_plan
    from cnnc.backends.opencl.target import Target
    from cnnc.frontend.spec import load_spec
    from cnnc.passes.pipeline import inference_graph

    graph = inference_graph(load_spec(HEADS.replace("UNITS", str(units))))
    for serial in (False, True):
        plan = make_plan(graph, 1, Target("cpu", 16), serial=serial)
        kernels = {lau.kernel: lau for _, lau in plan.launches()}
        assert plan.serial is serial
        if serial:
            assert all(chain.serial(lau) for lau in kernels.values()
                       if lau.file == "gemv.cl"), kernels
        else:
            assert not chain.serial(kernels["gemv"])
        assert ("dense_softmax" in kernels) is (units == 10 or not serial)


def test_a_chains_gemv_streams_whole_rows_of_the_weights_in_a_part_per_core():
    from cnnc.backends.opencl.bind_gemv import parts_tile
    from cnnc.backends.opencl.target import Target

    avx512, avx2 = Target("cpu", 2, native_vector=16), Target("cpu", 2, native_vector=8)
    assert parts_tile(256, 1, 1152, avx512) == {"MR": 1, "VW": 16, "NV": 16, "P": 2}
    assert parts_tile(128, 1, 2304, avx512) == {"MR": 1, "VW": 16, "NV": 8, "P": 2}
    assert parts_tile(256, 1, 1152, avx2) == {"MR": 1, "VW": 8, "NV": 8, "P": 1}
    assert parts_tile(10, 3, 40, avx512) == {"MR": 3, "VW": 2, "NV": 5, "P": 1}
    assert parts_tile(24, 8, 300, avx512) == {"MR": 4, "VW": 8, "NV": 3, "P": 1}
    assert parts_tile(24, 1, 300, Target("cpu", 4, native_vector=16))["P"] == 4


DENSE = """
network: dense_chain
input: [5, 5, 12]
layers:
  - flatten
  - {dense: 24, activation: relu, name: d1}
  - {dense: 100, name: d2}
  - {dense: 40, activation: relu, name: d3}
  - {dense: 10, activation: softmax}
"""


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_a_chain_of_dense_layers_in_parts_matches_numpy(batch, chains_on):
    """gemv_parts and gemv_sum in a chain (odd widths, one to four parts, several row blocks)
    against the NumPy reference."""
    from cnnc.backends.numpy.backend import NumpyBackend
    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.crosscheck import random_feeds
    from cnnc.initializers import initial_values
    from cnnc.passes.pipeline import inference_graph

    graph = inference_graph(cnnc.load_spec(DENSE))
    gemv = {n.name: {"algo": "gemv"} for n in graph.nodes if n.op.startswith("dense")}
    state = initial_values(graph.state, 3)
    ocl = OpenCLBackend(chains_on)
    ocl.choose_variants = lambda g, b: gemv
    ocl.init_state(graph.state, state)
    exe = ocl.compile(graph, batch)
    kernels = [lau.kernel for _, lau in exe.plan.launches()]
    assert kernels.count("gemv_parts") >= 2 and exe._chains, kernels
    ref = NumpyBackend()
    ref.init_state(graph.state, state)
    for seed in (0, 1):
        feeds = random_feeds(graph, batch, seed)
        want = ref.compile(graph, batch).run(feeds, graph.outputs)
        got = exe.run(feeds, graph.outputs)
        for name in graph.outputs:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch", [1, chain.MOST_EXAMPLES + 8])
def test_the_tuner_times_a_chained_pass_by_its_launches_device_time(chains_on, batch, tmp_path):
    """A variant of a pass that will run in chains is timed by its launches' events (no fixed
    cost of a launch to count); the tuner's own backend builds no chains."""
    from cnnc.passes.pipeline import inference_graph
    from cnnc.tune.cache import TuningCache
    from cnnc.tune.tuner import Tuner

    graph = inference_graph(cnnc.load_spec(Path(__file__).parents[2] / "specs" / "lenet5.yaml"))
    tuner = Tuner(chains_on, TuningCache(tmp_path / "t.json"), budget=20, progress=False)
    assert tuner.chains and not tuner.backend.chains
    results = tuner.tune_graph(graph, batch)
    assert any(r.source.startswith("tuned") for r in results)
    assert (tuner._profiling is not None) is (batch <= chain.MOST_EXAMPLES)


def test_cnnc_devices_says_whether_chains_are_on(chains_on, capsys, monkeypatch):
    from cnnc.cli import main

    assert main(["devices"]) == 0
    assert "run as one launch (chains: on, CNNC_CHAINS)" in capsys.readouterr().out
    monkeypatch.setenv("CNNC_CHAINS", "0")
    assert main(["devices"]) == 0
    assert "(chains: off, CNNC_CHAINS)" in capsys.readouterr().out


def test_cnnc_bench_says_what_ran_in_chains(chains_on, capsys):
    from cnnc.cli import main

    spec = str(Path(__file__).parents[2] / "specs" / "lenet5.yaml")
    assert main(["bench", spec, "--batch", "2", "--runs", "2", "--device", chains_on.index]) == 0
    assert "1 launch(es) a run: 4 layer launches, 4 of them in 1 chain(s)" in \
        capsys.readouterr().out


class _Event:
    """An event whose status goes through `statuses` (then stays at the last), one a read."""

    def __init__(self, statuses):
        self.statuses, self.reads = list(statuses), 0

    @property
    def command_execution_status(self):
        self.reads += 1
        return self.statuses[min(self.reads, len(self.statuses)) - 1]


def test_the_host_awaits_a_chain_by_asking_until_it_is_done_or_failed():
    done = _Event([2, 1, 1, 1, 0])  # submitted, running..., complete
    chain.await_chain(done)
    assert done.reads == 5
    failed = _Event([1, -5])  # an error status ends the wait too (clFinish reports it)
    chain.await_chain(failed)
    assert failed.reads == 2


def test_the_host_stops_asking_after_a_while():
    import time

    stuck = _Event([1])
    start = time.perf_counter()
    chain.await_chain(stuck, seconds=0.02)
    assert 0.02 <= time.perf_counter() - start < 2.0 and stuck.reads > 1


def test_a_run_that_ends_in_a_chain_is_awaited_by_polling(chains_on, monkeypatch):
    from cnnc.backends.opencl import runtime

    awaited = []
    monkeypatch.setattr(runtime, "await_chain", lambda event: awaited.append(event))
    spec = Path(__file__).parents[2] / "specs" / "fashion-plus.yaml"
    ocl, ref = _pair(spec, chains_on, 1)
    x = _inputs(ref, 1)
    np.testing.assert_allclose(ocl.predict(x), ref.predict(x), rtol=1e-4, atol=1e-5)
    assert len(awaited) == 1 and ocl.prepare(1)._ends_in_chain
    ocl.predict(_inputs(ref, chain.MOST_EXAMPLES + 1), batch_size=chain.MOST_EXAMPLES + 1)
    assert len(awaited) == 1  # no chain, clFinish alone
