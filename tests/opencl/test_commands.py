"""The OpenCL commands: compile --plan/--dump-ir, verify (passing and catching a bad kernel),
bench, devices."""

from __future__ import annotations

import pytest

from cnnc.cli import main


def test_compile_plan_shows_launches_and_memory_reuse(device, capsys, monkeypatch):
    monkeypatch.setenv("CNNC_DEVICE", device.index)
    assert main(["compile", "specs/fashion.yaml", "--plan", "--train", "--batch", "8"]) == 0
    out = capsys.readouterr().out
    assert "conv2d.cl:conv2d_forward  global=" in out
    assert "conv2d.cl:conv2d_grad_kernel" in out and "updates.cl:nadam_update" in out
    assert "<- written by the host" in out and "= view of max_pooling2d_2" in out
    assert " reuses " in out
    assert "planned peak device memory:" in out and "one buffer per tensor would take" in out


def test_compile_builds_every_kernel_and_dump_ir_prints_each_pass(device, capsys, monkeypatch):
    monkeypatch.setenv("CNNC_DEVICE", device.index)
    assert main(["compile", "specs/lenet5.yaml", "--dump-ir", "--batch", "4"]) == 0
    out = capsys.readouterr().out
    assert "== as loaded ==" in out and "== after remove_dropout ==" in out
    assert "== after dead_code_elimination ==" in out
    assert "programs (" in out and "kernel launches" in out


def test_verify_passes_on_the_fashion_training_step(device, capsys):
    assert (
        main(["verify", "specs/fashion.yaml", "--train", "--batch", "2", "--device", device.index])
        == 0
    )
    out = capsys.readouterr().out
    assert "OK: every node within its tolerance" in out
    assert "grad/conv2d/kernel" in out and "update/dense/kernel" in out


def test_verify_names_the_first_wrong_node_and_its_kernel(device, capsys, monkeypatch):
    """A deliberately wrong binding: average pooling computed by the max-pooling kernel."""
    from cnnc.backends.opencl import bind
    from cnnc.backends.opencl.bind_layers import bind_pool
    from cnnc.backends.opencl.launches import Launch, NodeBinding

    def wrong(node, ctx):
        lau = bind_pool(node, ctx).launches[0]
        return NodeBinding(
            (Launch(lau.file, "maxpool2d", lau.defines, lau.global_size, lau.local_size, lau.args),)
        )

    monkeypatch.setitem(bind.BINDERS, "avgpool2d", wrong)
    assert main(["verify", "specs/lenet5.yaml", "--batch", "2", "--device", device.index]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out
    first = out.split("the first in schedule order is ")[1]
    assert first.startswith("'average_pooling2d' (avgpool2d), computed by pool.cl:maxpool2d")


def test_bench_prints_rates_and_a_profile(device, capsys):
    assert (
        main(
            [
                "bench",
                "specs/lenet5.yaml",
                "--batch",
                "4",
                "--runs",
                "2",
                "--train",
                "--profile",
                "--device",
                device.index,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "images/s" in out and "GFLOP/s" in out and "conv2d.cl:conv2d_grad_kernel" in out


def test_a_bad_device_selector_is_a_clean_error(capsys):
    pytest.importorskip("pyopencl")
    assert main(["compile", "specs/lenet5.yaml", "--device", "no-such-device"]) == 2
    err = capsys.readouterr().err
    assert "no OpenCL device matches 'no-such-device'" in err
    assert "Traceback" not in err
