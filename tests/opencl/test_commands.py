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


# LeNet-5's layers with its poolings straight after the input and a dense layer, where no
# fusion takes them into a producer's kernel (a convolution's store averages its own)
POOLED_SPEC = """
network: pooled
input: [28, 28, 1]
layers:
  - {avgpool2d: 2}
  - {conv2d: [6, 5], activation: tanh, padding: same}
  - flatten
  - {dense: 10, activation: softmax}
"""
# LeNet-5's first convolution alone before its head: its FLOPs counted by hand below
STEM_SPEC = """
network: stem
input: [28, 28, 1]
layers:
  - {conv2d: [6, 5], activation: tanh, padding: same}
  - flatten
  - {dense: 10, activation: softmax}
"""


def test_verify_names_the_first_wrong_node_and_its_kernel(device, capsys, monkeypatch, tmp_path):
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
    spec = tmp_path / "pooled.yaml"
    spec.write_text(POOLED_SPEC)
    assert main(["verify", str(spec), "--batch", "2", "--device", device.index]) == 1
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


def test_bench_rates_are_the_figures_divided_out():
    from cnnc.commands.bench import rates

    assert rates(256, 0.5, 100e9, 400.0) == (512.0, 200.0, 0.5)
    assert rates(1, 0.002, 4e6)[:2] == (500.0, 2.0) and rates(1, 0.002, 4e6)[2] is None


def test_bench_figures_follow_from_the_time_the_flops_and_the_peak(device, capsys, monkeypatch,
                                                                   tmp_path):
    """Issue 22/25: the printed images/s, GFLOP/s and fraction of the peak are the median time's,
    and a layer's MFLOP are its FLOPs (lenet5's first convolution, counted by hand: 28x28x6
    outputs of 25 multiply-adds, a bias and a tanh each, a tanh counting 4 FLOPs
    as cnnc/ir/activations.py's table says; alone, as LeNet-5's pooling fuses into it)."""
    import re

    import cnnc
    from cnnc.backends.opencl import peak
    from cnnc.ir.cost import total_flops

    monkeypatch.setattr(peak, "measured_peak", lambda device, **_: 50.0)
    spec = tmp_path / "stem.yaml"
    spec.write_text(STEM_SPEC)
    assert main(["bench", str(spec), "--batch", "4", "--runs", "2", "--profile",
                 "--device", device.index]) == 0
    out = capsys.readouterr().out
    m = re.search(r"median of 2 runs: ([\d.]+) ms, (\d+) images/s, (\d+) GFLOP/s .*, (\d+)% of "
                  r"the device's measured FMA peak \(50 GFLOP/s\)", out)
    assert m, out
    ms, images, gflops, percent = float(m[1]), int(m[2]), int(m[3]), int(m[4])
    # ms is printed to 0.1, so the median time lay within 0.05 ms of it; the rates are rounded
    # to whole numbers
    slow, fast = (ms + 0.05) / 1e3, max(ms - 0.05, 1e-3) / 1e3
    assert 4 / slow - 1 <= images <= 4 / fast + 1
    flops = total_flops(cnnc.load_spec(str(spec))) * 4
    assert flops / slow / 1e9 - 1 <= gflops <= flops / fast / 1e9 + 1
    assert abs(percent - 100 * gflops / 50) <= 2 + 0.06 * percent
    row = next(line.split() for line in out.splitlines() if line.split()[:2] == ["conv2d",
                                                                                  "conv2d"])
    assert float(row[3]) == round(28 * 28 * 6 * (25 * 2 + 1 + 4) * 4 / 1e6, 2)
    # the layer's time is printed to 0.01 ms and its rate to 0.1 GFLOP/s: at 0.06 ms the time's
    # rounding alone moves the quotient by 8%, so the rate must lie between the quotients of the
    # time's two rounding bounds
    layer_ms, mflop, rate = float(row[2]), float(row[3]), float(row[4])
    assert mflop / (layer_ms + 0.005) - 0.05 <= rate <= mflop / max(layer_ms - 0.005, 1e-4) + 0.05
