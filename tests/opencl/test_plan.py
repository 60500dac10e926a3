"""Scheduling and memory planning (no device needed)."""

from __future__ import annotations

import dataclasses

import pytest

import cnnc
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.target import Target
from cnnc.ir.graph import VerifyError
from cnnc.passes.memplan import MemoryPlan, Tensor, plan_memory, verify_plan
from cnnc.passes.pipeline import inference_graph, training_graph
from cnnc.passes.schedule import check_schedule, schedule

CPU = Target("cpu", 2)


@pytest.fixture(scope="module")
def fashion():
    return cnnc.load_spec("specs/fashion.yaml")


@pytest.mark.parametrize("train", [False, True], ids=["forward", "train"])
@pytest.mark.parametrize("batch", [1, 32, 256])
def test_fashion_plan_reuses_memory_and_verifies(fashion, train, batch):
    graph = training_graph(fashion) if train else inference_graph(fashion)
    plan = make_plan(graph, batch, CPU)
    verify_plan(plan.memory)  # independently of how the offsets were chosen
    assert plan.memory.peak < plan.memory.naive
    if train:  # the saving is large where there is something to reuse
        assert plan.memory.peak < 0.5 * plan.memory.naive


def test_the_verifier_catches_live_tensors_sharing_memory(fashion):
    plan = make_plan(training_graph(fashion), 8, CPU).memory
    a, b = next(
        (a, b)
        for a in plan.tensors
        for b in plan.tensors
        if a is not b and a.overlaps(b) and a.nbytes >= b.nbytes > 0
    )
    broken = dataclasses.replace(plan, offsets={**plan.offsets, b.name: plan.offsets[a.name]})
    with pytest.raises(VerifyError, match="live together and share memory"):
        verify_plan(broken)


def test_the_verifier_catches_misalignment_and_overflow():
    t = Tensor("t", 100, 0, 1)
    with pytest.raises(VerifyError, match="aligned"):
        verify_plan(MemoryPlan((t,), {"t": 4}, 256, 128))
    with pytest.raises(VerifyError, match="past the arena"):
        verify_plan(MemoryPlan((t,), {"t": 0}, 64, 4))


def test_planner_reuses_dead_memory_and_keeps_live_memory_apart():
    tensors = [
        Tensor("a", 1000, 0, 1),
        Tensor("b", 1000, 1, 2),
        Tensor("c", 1000, 2, 3),
        Tensor("d", 500, 3, 3),
    ]
    plan = plan_memory(tensors, 128)
    verify_plan(plan)
    assert plan.offsets["c"] == plan.offsets["a"]  # a is dead when c is born
    assert plan.peak == 2048  # two 1000-byte tensors, aligned, at any time


def test_kept_values_live_to_the_end_and_inputs_from_the_start(fashion):
    graph = training_graph(fashion)
    plan = make_plan(graph, 4, CPU, keep=["conv2d"])
    end = len(plan.schedule)
    mem = plan.memory
    assert mem.tensor("conv2d").end == end
    assert mem.tensor("train/loss").end == end  # a graph output
    assert mem.tensor("input_layer").start == -1


def test_views_share_their_input_storage(fashion):
    plan = make_plan(inference_graph(fashion), 4, CPU)
    assert plan.memory.storage["flatten"] == "max_pooling2d_2"
    assert plan.memory.offset_of("flatten") == plan.memory.offset_of("max_pooling2d_2")
    assert "flatten" not in {t.name for t in plan.memory.tensors}


def test_keep_everything_gives_every_value_its_own_memory(fashion):
    graph = training_graph(fashion)
    plan = make_plan(graph, 2, CPU, keep=["*"])
    values = [t for t in plan.memory.tensors if t.kind != "workspace"]
    for i, a in enumerate(values):
        for b in values[i + 1 :]:
            assert a.overlaps(b)


def test_schedule_hoists_updates_after_every_reader(fashion):
    graph = training_graph(fashion)
    sched = schedule(graph)
    check_schedule(sched)
    pos = sched.position
    for node in graph.nodes:
        if node.opdef.group != "update":
            continue
        param = node.inputs[0]
        readers = [n.name for n in graph.nodes if param in n.operands and n is not node]
        assert all(pos[r] < pos[node.name] for r in readers), node.name
        grad = node.inputs[1]
        # hoisted: it runs right after its gradient (and the readers of its parameter)
        assert pos[node.name] <= max([pos[grad]] + [pos[r] for r in readers]) + 1


def test_schedule_keeps_reads_after_an_update_after_it():
    """A node reading a state after its update (in graph order) must see the new value."""
    from cnnc.ir.args import Attrs
    from cnnc.ir.graph import Graph, Node, StateSpec

    state = (StateSpec("p", (4,)), StateSpec("g", (4,)))
    upd = Node(
        "upd", "sgd_update", ("p", "g"), Attrs(learning_rate=0.1, momentum=0.0, nesterov=False)
    )
    x = Node("x", "input", (), Attrs(shape=(4,), dtype="float32"), shape=(None, 4))
    read = Node("after", "add", ("x", "x"), shape=(None, 4))
    graph = Graph("g", (x, upd, read), ("after",), state)
    check_schedule(schedule(graph))
    bad = dataclasses.replace(schedule(graph), order=("x", "after", "upd"))
    check_schedule(bad)  # 'after' does not read p: any order is fine
    read_p = Node(
        "readp", "sgd_update", ("p", "g"), Attrs(learning_rate=0.1, momentum=0.0, nesterov=False)
    )
    graph2 = Graph("g2", (x, upd, read_p), (), state)
    wrong = dataclasses.replace(schedule(graph2), order=("x", "readp", "upd"))
    with pytest.raises(VerifyError):
        check_schedule(wrong)
