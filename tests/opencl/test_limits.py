"""Launch geometry and buffer splits against made-up device limits (no device needed).

GPUs cnnc has never run on differ in their work-group sizes, per-dimension limits, local memory
and largest allocation; these tests plan real networks for small, odd and typical limits and
check every launch and buffer stays within them, that large row counts go in launch dimension
0, and that what cannot fit the kernels' 32-bit indices or one buffer is refused with the figures.
"""

from __future__ import annotations

from math import prod

import pytest
from test_bind import GRAPHS

import cnnc
from cnnc.backends.opencl.launches import check_launch, check_scalar, launch
from cnnc.backends.opencl.plan import make_plan
from cnnc.backends.opencl.target import (
    GRID_GROUPS,
    INDEX_MAX,
    Limits,
    Target,
    check_tensor,
)
from cnnc.backends.opencl.tiling import local_tile, local_tile_bytes, register_tile, with_local_tile
from cnnc.errors import DeviceError, InternalError
from cnnc.ir.graph import VerifyError
from cnnc.passes.memplan import Tensor, plan_memory, verify_plan
from cnnc.passes.pipeline import inference_graph, training_graph

KIB = 1024

# Limits of devices cnnc has not run on, as their drivers report them (or made smaller).
DEVICE_LIMITS = {
    "nvidia": Limits(1024, (1024, 1024, 64), 48 * KIB, 35 * 2**30, 140 * 2**30),
    "amd": Limits(256, (1024, 1024, 1024), 64 * KIB, 4 * 2**30, 16 * 2**30),
    "intel": Limits(512, (512, 512, 512), 64 * KIB, 4 * 2**30, 16 * 2**30),
    "mali": Limits(384, (384, 384, 384), 32 * KIB, 2**30, 4 * 2**30),
    "small-group": Limits(64, (64, 64, 64), 16 * KIB, 2**30, 4 * 2**30),
    "odd-dims": Limits(256, (32, 256, 4), 16 * KIB, 2**30, 4 * 2**30),
    "tiny-local": Limits(256, (256, 256, 256), 2 * KIB, 2**30, 4 * 2**30),
    "global-local": Limits(1024, (1024,) * 3, 48 * KIB, 2**30, 4 * 2**30, local_is_global=True),
}


def _launches_within(plan, limits: Limits) -> None:
    for node, lau in plan.launches():
        where = f"{node}: {lau.file}:{lau.kernel} {lau.global_size} / {lau.local_size}"
        check_launch(node, lau, limits)  # raises if not
        if lau.local_size is not None:
            assert prod(lau.local_size) <= limits.max_group, where
            assert all(n <= m for n, m in zip(lau.local_size, limits.max_item_sizes)), where
        defines = lau.define_map
        if defines.get("LOCAL_TILE"):
            assert not limits.local_is_global, where
            assert local_tile_bytes(defines) <= limits.local_memory, where


# Training graphs hold every forward op too.
TRAIN_GRAPHS = [g for g in GRAPHS if g[0].endswith("/train")]


@pytest.mark.parametrize("device", DEVICE_LIMITS)
@pytest.mark.parametrize("name,graph,batch", TRAIN_GRAPHS, ids=[g[0] for g in TRAIN_GRAPHS])
def test_every_launch_fits_the_device(name, graph, batch, device):
    limits = DEVICE_LIMITS[device]
    for kind in ("gpu", "cpu"):
        _launches_within(make_plan(graph, batch, Target(kind, 8, limits)), limits)


@pytest.mark.parametrize(
    "max_group,local_memory,group",
    [
        (1024, 48 * KIB, 256),  # the largest tile: 16 x 16
        (256, 16 * KIB, 256),
        (128, 16 * KIB, 128),  # Oclgrind with OCLGRIND_MAX_WGSIZE=128: 16 x 8
        (100, 16 * KIB, 64),
        (16, 16 * KIB, 16),
        (8, 16 * KIB, None),  # too small for any tile: register blocks only
        (256, 1 * KIB, 64),  # little local memory: a smaller, shallow tile (8 x 8, KT 4)
        (256, 0, None),  # no local memory
    ],
)
def test_local_tiles_fit_the_work_group_and_local_memory(max_group, local_memory, group):
    limits = Limits(max_group, (max_group,) * 3, local_memory)
    target = Target("gpu", 4, limits)
    tile = register_tile(64, target)
    shape = local_tile(tile, target)
    if group is None:
        assert shape is None
        assert with_local_tile(tile, target) == (tile, False)
        return
    assert shape["TX"] * shape["TY"] == group
    assert local_tile_bytes({**tile, **shape}) <= local_memory


def test_no_local_tiles_where_local_memory_is_global_unless_forced():
    """CL_DEVICE_LOCAL_MEM_TYPE GLOBAL (pocl): staging copies only cost. Tests force them to
    run the GPU code paths on such devices too."""
    limits = Limits(1024, (1024,) * 3, 48 * KIB, local_is_global=True)
    tile = register_tile(64, Target("gpu", 4))
    assert local_tile(tile, Target("gpu", 4, limits)) is None
    forced = local_tile(tile, Target("gpu", 4, limits, force_local_tiles=True))
    assert forced == {"TX": 16, "TY": 16, "KT": 16}


def test_per_dimension_limits_bound_the_local_tile():
    """The tile's work-items share launch dimension 0: its per-dimension limit bounds them."""
    target = Target("gpu", 4, Limits(1024, (32, 1024, 64), 48 * KIB))
    shape = local_tile(register_tile(64, target), target)
    assert shape["TX"] * shape["TY"] <= 32


def test_no_local_tiles_on_a_cpu():
    assert local_tile(register_tile(64, Target("cpu", 4)), Target("cpu", 4)) is None


def _wide_conv():
    """224x224 convolutions at batch 128: 6.4 million output rows, 100,352 tiles of 64 rows."""
    net = cnnc.Network("wide", input=(224, 224, 3))
    net.conv2d(8, 3, padding="same", activation="relu")
    net.conv2d(8, 3, padding="same")
    net.global_avgpool2d()
    net.dense(2, activation="softmax")
    return cnnc.load_spec(net)


@pytest.mark.parametrize("kind", ["gpu", "cpu"])
@pytest.mark.parametrize("train", [False, True], ids=["forward", "train"])
def test_more_than_65535_row_tiles_go_in_dimension_0(kind, train):
    spec = _wide_conv()
    graph = training_graph(spec) if train else inference_graph(spec)
    limits = DEVICE_LIMITS["nvidia"]
    plan = make_plan(graph, 128, Target(kind, 132, limits))
    _launches_within(plan, limits)
    big = [
        lau
        for _, lau in plan.launches()
        if lau.kernel in ("conv2d_forward", "conv2d_grad_input", "matmul")
        and lau.global_size[0] // (lau.local_size or (1,))[0] > GRID_GROUPS[1]
    ]
    assert big, "no launch has more than 65,535 row tiles: the test lost its point"
    for _, lau in plan.launches():
        local = lau.local_size or (1, 1, 1)
        for d in range(1, len(lau.global_size)):
            assert lau.global_size[d] <= GRID_GROUPS[d] * local[d], lau


def test_a_grid_too_large_in_dimension_1_or_indices_past_int_are_refused():
    lau = launch("gemm.cl", "matmul", (64, 70000), (), local_size=None)
    with pytest.raises(DeviceError, match="70,000 work-groups in launch dimension 1"):
        check_launch("n", lau, Limits())
    lau = launch("elementwise.cl", "zero", (2**31 + 64,), ())
    with pytest.raises(DeviceError, match="32-bit integers"):
        check_launch("n", lau, Limits())
    lau = launch("gemm.cl", "matmul", (512, 4), (), local_size=(256, 1))
    with pytest.raises(InternalError, match="exceeds the device's limits"):
        check_launch("n", lau, Limits(128, (128, 128, 128)))
    with pytest.raises(DeviceError, match="outside the range of a 32-bit int"):
        check_scalar("n", lau, 2**31)
    check_scalar("n", lau, 2**32 - 1, unsigned=True)


def test_a_tensor_past_32_bit_indices_is_refused_with_its_size_and_a_batch_that_fits():
    net = cnnc.Network("big", input=(224, 224, 3))
    net.conv2d(64, 3, padding="same")
    graph = inference_graph(cnnc.load_spec(net))
    per_image = 224 * 224 * 64
    batch = INDEX_MAX // per_image + 1  # 2^31 or more elements in conv2d's output
    with pytest.raises(DeviceError) as err:
        make_plan(graph, batch, Target("gpu", 132, DEVICE_LIMITS["nvidia"]))
    text = err.value.render()
    assert f"tensor 'conv2d' ({batch}x224x224x64)" in text
    assert f"{batch * per_image:,} elements" in text and "32-bit" in text
    assert f"lower the batch size to at most {INDEX_MAX // per_image:,}" in text
    make_plan(graph, INDEX_MAX // per_image, Target("gpu", 132, DEVICE_LIMITS["nvidia"]))


def test_a_tensor_larger_than_one_buffer_is_refused():
    with pytest.raises(DeviceError, match=r"'x' \(1000x1000\) needs 3.8 MiB in one buffer"):
        check_tensor("x", (1000, 1000), 4 * 10**6, Limits(max_allocation=2**20))


@pytest.mark.parametrize("train", [False, True], ids=["forward", "train"])
def test_the_memory_plan_is_split_into_buffers_within_the_largest_allocation(train):
    spec = cnnc.load_spec("specs/fashion.yaml")
    graph = training_graph(spec) if train else inference_graph(spec)
    whole = make_plan(graph, 32, Target("gpu", 8)).memory
    assert len(whole.sizes) == 1
    largest = max(t.nbytes for t in whole.tensors)
    cap = (largest // 128 + 1) * 128  # just room for the largest tensor
    limits = Limits(max_allocation=cap)
    split = make_plan(graph, 32, Target("gpu", 8, limits)).memory
    verify_plan(split, cap)
    assert len(split.sizes) > 1 and max(split.sizes) <= cap
    assert split.peak <= 2 * whole.peak  # splitting costs some reuse, not much
    # One byte less than the largest tensor: refused, naming it.
    with pytest.raises(DeviceError, match="in one buffer"):
        make_plan(graph, 32, Target("gpu", 8, Limits(max_allocation=largest - 1)))


def test_planner_opens_a_new_arena_only_when_the_tensor_does_not_fit():
    tensors = [
        Tensor("a", 600, 0, 1),
        Tensor("b", 600, 1, 2),  # overlaps a: would end at 1280 > 1024
        Tensor("c", 300, 2, 3),  # a is dead: reuses its place in arena 0
        Tensor("d", 200, 0, 3),
    ]
    plan = plan_memory(tensors, 128, max_arena=1024)
    verify_plan(plan, 1024)
    assert plan.arena_of("a") == 0 and plan.arena_of("b") == 1
    assert plan.arena_of("c") == 0 and plan.offsets["c"] == plan.offsets["a"]
    assert plan.peak == sum(plan.sizes)
    with pytest.raises(VerifyError, match="larger than an arena"):
        plan_memory([Tensor("huge", 2000, 0, 0)], 128, max_arena=1024)
    with pytest.raises(VerifyError, match="more than the 512 allowed"):
        verify_plan(plan, 512)


def test_limits_combine_to_the_tighter():
    a = Limits(1024, (1024, 1024, 64), 48 * KIB, 2**34)
    b = Limits(max_allocation=2**20)
    assert a.tighter(b) == Limits(1024, (1024, 1024, 64), 48 * KIB, 2**20)
    assert a.with_group_limit(128).max_group == 128
    assert a.with_local_memory(-5).local_memory == 0
