"""The tuner end to end: `cnnc tune` and `--show`, two processes tuning at once, and the
backend's use of the cache (cnnc/tune/tuner.py, cnnc/commands/tune.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from nodes import tiny_training_graph, tunable_nodes, write_spec

from cnnc.backends.opencl.program import ProgramCache
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.tune import cache as tc
from cnnc.tune.tuner import CachedVariants, Tuner, install, node_key


def _cnnc(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cnnc.cli", *args], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_tuning_at_once_leave_a_valid_cache(cache_dir, tmp_path, capsys):
    spec = write_spec(tmp_path)
    procs = [_cnnc("tune", spec, "--train", "--batch", str(b), "--budget", "30") for b in (2, 3)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "tuned in" in out
    path = cache_dir / tc.FILE_NAME
    entries = tc.parse(path.read_text(), str(path))
    assert "warning" not in capsys.readouterr().err  # every entry valid
    batches = {e["key"]["batch"] for e in entries.values()}
    assert batches == {2, 3}, "both processes' tunings are kept"
    assert json.loads(path.read_text())["format"] == tc.FORMAT

    show = subprocess.run([sys.executable, "-m", "cnnc.cli", "tune", "--show"],
                          capture_output=True, text=True, check=True).stdout
    assert f"{len(entries)} entries" in show
    assert "conv2d" in show and "speedup" in show
    rows = [line for line in show.splitlines() if line.rstrip().endswith("x")]
    assert len(rows) == len(entries)

    compare = subprocess.run([sys.executable, "-m", "cnnc.cli", "bench", spec, "--train",
                              "--batch", "2", "--compare", "--runs", "2"],
                             capture_output=True, text=True, check=True).stdout
    assert "tuning cache: " in compare and "whole training step" in compare
    assert "conv2d_grad_kernel" in compare and "GFLOP/s" in compare


def test_tune_leaves_every_program_of_the_graph_built(device, cache_dir, tmp_path):
    """`cnnc tune` builds and runs the graph before its searches and after them, so the first
    run afterwards builds nothing (a cold seed model's run built its untuned launches' programs
    for 32 s before its first step)."""
    if not device.binaries:
        pytest.skip("this driver's binaries are not kept on disk (its qualification)")
    (cache_dir / "opencl").unlink()  # a program cache of its own, empty: a new machine's
    (cache_dir / "opencl").mkdir()
    spec = write_spec(tmp_path)
    run = subprocess.run([sys.executable, "-m", "cnnc.cli", "tune", spec, "--train", "--batch",
                          "2", "--budget", "5"], capture_output=True, text=True, timeout=600,
                         check=False)
    assert run.returncode == 0, run.stderr
    assert "as it binds now built and run once" in run.stdout
    backend = OpenCLBackend(device)
    # a program cache of its own, as a new process has: the device's holds earlier tests' builds
    backend.programs = ProgramCache(backend.device)
    assert install(backend) is not None
    backend.compile(tiny_training_graph(tmp_path), 2)
    built = backend.programs.records
    assert built and [r.file for r in built if not r.from_disk] == []


def test_the_backend_uses_the_cached_variants(device, cache_dir, tmp_path, capsys):
    graph = tiny_training_graph(tmp_path)
    cache = tc.TuningCache.default()
    backend = OpenCLBackend(device)
    node = tunable_nodes(graph, ("conv2d_grad_input",))[0]
    other = tunable_nodes(graph, ("dense",))[0]
    chosen = {"algo": "direct", "MR": 2, "VW": 4, "NV": 2}
    cache.put(tc.make_entry(node_key(backend, graph, node, 3), chosen, 0.001, 0.002))
    # a well-formed entry with a block the space does not hold for this node: not used
    odd = {"algo": "direct", "MR": 16, "VW": 16, "NV": 4}
    cache.put(tc.make_entry(node_key(backend, graph, other, 3), odd, 0.001, 0.002))
    assert install(backend) is not None
    assert backend.choose_variants(graph, 3) == {node.name: chosen}
    assert "not one this version of cnnc generates" in capsys.readouterr().err
    plan = backend.plan(graph, 3)
    defines = [lau.define_map for n, lau in plan.launches() if n == node.name
               and lau.kernel == "conv2d_grad_input"]
    assert defines and (defines[0]["MR"], defines[0]["VW"], defines[0]["NV"]) == (2, 4, 2)


def test_tuning_off_means_defaults_and_no_cache(device, cache_dir, monkeypatch):
    monkeypatch.setenv("CNNC_TUNE", "0")
    backend = OpenCLBackend(device)
    assert install(backend, tune_budget=10) is None
    assert backend.choose_variants(None, 1) == {}
    run = subprocess.run([sys.executable, "-m", "cnnc.cli", "tune", "lenet5"],
                         check=False, capture_output=True, text=True)
    assert run.returncode == 2 and "CNNC_TUNE=0" in run.stderr


def test_first_use_tuning_fills_the_cache_and_is_not_repeated(device, cache_dir, tmp_path):
    graph = tiny_training_graph(tmp_path)
    backend = OpenCLBackend(device)
    chooser = CachedVariants(backend, tune_budget=3, progress=False)
    backend.choose_variants = chooser
    backend.plan(graph, 3)  # tunes on first use, within its budget
    assert chooser._tuner is not None
    tuned = tc.TuningCache.default().entries
    assert tuned, "the tunings are kept in the cache"
    # a later tuner (another process) takes what is cached and tunes it no more, but for the
    # searches the 3 s budget cut short, which it resumes
    again = Tuner(device, tc.TuningCache.default(), budget=60, progress=False)
    for r in again.tune_graph(graph, 3):
        entry = tuned.get(tc.entry_id(node_key(backend, graph, graph.node(r.node), 3)))
        if entry is not None:
            assert r.source in (("tuned", "same key") if "cut" in entry else ("cache",)), r


def test_a_later_run_starts_with_a_partly_tuned_cache(device, cache_dir, tmp_path):
    """Once some of a graph's launches are tuned (a first run's budget ran out before the
    rest), a later run (a new chooser, as in a new process) uses what is cached and tunes
    nothing, so it starts at once; the rest is left to `cnnc tune`."""
    from cnnc.backends.opencl.launches import BindContext
    from cnnc.tune.space import default_variant, tunable

    graph = tiny_training_graph(tmp_path)
    backend = OpenCLBackend(device)
    node = next(n for n in graph.nodes if tunable(n))
    variant = default_variant(node, BindContext(graph, 3, backend.target))
    cache = tc.TuningCache.default()
    cache.put(tc.make_entry(node_key(backend, graph, node, 3), variant, 1.0, 1.0))
    later = CachedVariants(backend, tune_budget=60, progress=False)
    backend.choose_variants = later
    backend.plan(graph, 3)
    assert later._tuner is None, "no tuning once the graph has tuned launches"
    # and with nothing cached, the same graph is tuned on first use
    tc.TuningCache.default().path.unlink()
    first = CachedVariants(backend, tune_budget=0.5, progress=False)
    backend.choose_variants = first
    backend.plan(graph, 3)
    assert first._tuner is not None


def test_another_batch_size_takes_the_tuned_batchs_choices(device, cache_dir, tmp_path):
    """A graph at a batch size not tuned (a run's short last batch, its evaluation batch) is not
    tuned anew: it takes the choices cached for the same launches at the nearest batch size,
    where they are in its own space, and the defaults elsewhere."""
    from cnnc.backends.opencl.launches import BindContext
    from cnnc.tune.space import tunable, variant_space

    graph = tiny_training_graph(tmp_path)
    backend = OpenCLBackend(device)
    ctx = BindContext(graph, 3, backend.target)
    nodes = [n for n in graph.nodes if tunable(n)]
    cache = tc.TuningCache.default()
    picked = {}
    for n in nodes[:2]:  # a variant other than the default, for two launches
        picked[n.name] = variant_space(n, ctx)[1]
        cache.put(tc.make_entry(node_key(backend, graph, n, 3), picked[n.name], 1.0, 2.0))
    cache.put(tc.make_entry(node_key(backend, graph, nodes[0], 40), variant_space(
        nodes[0], BindContext(graph, 40, backend.target))[0], 1.0, 1.0))  # farther: not used
    chooser = CachedVariants(backend, tune_budget=60, progress=False)
    chosen = chooser(graph, 5)
    assert chooser._tuner is None, "no tuning at a batch size whose launches are tuned at another"
    ctx5 = BindContext(graph, 5, backend.target)
    assert chosen == {k: v for k, v in picked.items()
                      if v in variant_space(graph.node(k), ctx5)}
    assert chosen, "the tuned choices hold at batch 5 here"
    assert len(tc.TuningCache.default().entries) == 3, "nothing tuned or stored"


def test_another_batch_sizes_algorithm_yields_to_a_default_it_never_raced(device, cache_dir,
                                                                        tmp_path):
    """A choice tuned at one batch size replaces this batch's default only where the default was
    the same there: a dense layer's direct GEMM tuned at batch 256 raced the direct GEMM's
    default block, not gemv, which is the default at batch 1; at batch 200 (the same default)
    it holds."""
    from cnnc.backends.opencl.launches import BindContext
    from cnnc.tune.space import default_variant, variant_space

    graph = tiny_training_graph(tmp_path)
    backend = OpenCLBackend(device)
    node = tunable_nodes(graph, ("dense",))[0]
    big, one = (BindContext(graph, b, backend.target) for b in (256, 1))
    assert default_variant(node, big)["algo"] == "direct"
    assert default_variant(node, one)["algo"] != "direct"  # gemv, by rule
    # batch 256's choice, a direct block the tuner could pick at batch 1 too
    tuned = default_variant(node, big)
    assert tuned in variant_space(node, one)
    cache = tc.TuningCache.default()
    cache.put(tc.make_entry(node_key(backend, graph, node, 256), tuned, 1.0, 2.0))
    chooser = CachedVariants(backend, progress=False)
    assert node.name not in chooser(graph, 1)
    assert chooser(graph, 200).get(node.name) == tuned


def test_the_nearest_batch_whose_choice_holds_is_taken(device, cache_dir, tmp_path):
    """Where the nearest tuned batch's choice does not hold at this batch size, a farther one's
    that does is taken: a training step's batch 32 keys a forward convolution too, and its
    choice had hidden forward batch 256's Winograd from the seed model's chunks of 64."""
    from cnnc.backends.opencl.launches import BindContext
    from cnnc.tune.space import default_variant, variant_space

    graph = tiny_training_graph(tmp_path)
    backend = OpenCLBackend(device)
    node = tunable_nodes(graph, ("dense",))[0]
    tuned = default_variant(node, BindContext(graph, 256, backend.target))
    odd = {"algo": "direct", "MR": 16, "VW": 16, "NV": 4}  # a block no batch's space holds
    assert odd not in variant_space(node, BindContext(graph, 120, backend.target))
    cache = tc.TuningCache.default()
    cache.put(tc.make_entry(node_key(backend, graph, node, 100), odd, 1.0, 2.0))
    cache.put(tc.make_entry(node_key(backend, graph, node, 256), tuned, 1.0, 2.0))
    assert CachedVariants(backend, progress=False)(graph, 120).get(node.name) == tuned


@pytest.mark.parametrize("budget, tuning", [(60.0, 50.0), (6.0, 5.0), (0.5, 0.5 * 5 / 6)])
def test_first_use_tuning_leaves_part_of_the_budget_for_the_builds(device, cache_dir, tmp_path,
                                                                   monkeypatch, budget, tuning):
    """A run's --tune-budget holds its kernels' builds after the tuning too (the launches no
    search built, the evaluation graph's): the tuner is given all but a sixth of it, at most
    BUILD_SECONDS (a cold first run of the seed model took 69.9 s with all 60 s for tuning)."""
    from cnnc.tune import tuner as tuner_module

    given = []

    class Recording(tuner_module.Tuner):
        def __init__(self, device_, cache, budget_, **kwargs):
            given.append(budget_)
            super().__init__(device_, cache, budget_, **kwargs)

        def tune_graph(self, graph, batch, *, force=False):
            return []

    monkeypatch.setattr(tuner_module, "Tuner", Recording)
    backend = OpenCLBackend(device)
    chooser = CachedVariants(backend, tune_budget=budget, progress=False)
    chooser._tune(tiny_training_graph(tmp_path), 3)
    assert given == [pytest.approx(tuning)]
