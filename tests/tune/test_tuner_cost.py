"""What tuning costs: only the winners' programs are written to the disk cache, the budget
bounds the tuner's time (a fake clock: no timed assertions), and the search is cut where its
measurements are decisive (cnnc/tune/tuner.py, cnnc/backends/opencl/program.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from nodes import tiny_training_graph, tunable_nodes

from cnnc.backends.opencl import program as program_module
from cnnc.backends.opencl.launches import BindContext
from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.tune import tuner as tuner_module
from cnnc.tune.cache import TuningCache
from cnnc.tune.gate import Verdict
from cnnc.tune.space import as_layer, variant_space
from cnnc.tune.tuner import CachedVariants, Timed, Tuner, process_age


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    return tiny_training_graph(tmp_path_factory.mktemp("spec"))


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """An empty cache folder (tuning file and built programs), and no program built in this
    process yet (the in-memory cache is per process)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CNNC_CACHE_DIR", str(folder))
    monkeypatch.setenv("CNNC_TUNE", "1")
    monkeypatch.setattr(program_module, "_CACHES", {})
    return folder


# ---------------------------------------------------------------- the disk cache


def test_a_deferred_program_reaches_the_disk_only_when_stored(device, empty_caches):
    cache = program_module.program_cache(device)
    with cache.deferred_writes(), cache.recording() as used:
        cache.program("elementwise.cl", "zero", {"VW": 1})
        cache.program("elementwise.cl", "zero", {"VW": 2})
    assert len(used) == 2
    kept, lost = sorted(used)
    assert not cache.paths[kept].exists() and not cache.paths[lost].exists()
    assert cache.store([kept]) == 1
    assert cache.paths[kept].exists() and not cache.paths[lost].exists()
    assert cache.store([kept]) == 0, "a program is stored once"
    cache.program("elementwise.cl", "zero", {"VW": 4})  # outside: written as it is built
    assert len(list((empty_caches / "opencl").glob("*.bin"))) == 2


def test_prebuilt_programs_are_the_ones_used(device, empty_caches):
    cache = program_module.program_cache(device)
    if "portable computing language" not in device.platform_name.lower():
        pytest.skip("programs are built at once only on pocl")
    requests = [("elementwise.cl", "zero", {"VW": vw}) for vw in (1, 2, 4)]
    with cache.deferred_writes():
        cache.prebuild(requests)
    assert len(cache.records) == 3 and len(cache.unstored) == 3
    for file, kernel, defines in requests:
        cache.kernel(file, kernel, defines)
    assert len(cache.records) == 3, "no program built twice"


def test_only_the_winners_binaries_are_written(device, empty_caches, graph, monkeypatch):
    """A variant made to lose (its times inflated) leaves no binary on disk; the winners' are
    there, and a later process (a new program cache) loads them from the disk."""
    node = tunable_nodes(graph, ("conv2d_grad_input",))[0]
    real_space = tuner_module.variant_space

    def two_variants(n, ctx):
        space = real_space(n, ctx)
        if n.name != node.name:
            return space[:1]
        other = next(v for v in space[1:] if v.get("algo", "direct") == "direct")
        return [space[0], other]

    timed: dict[str, list[Timed]] = {}
    real_time = Tuner._time

    def losing_second(self, graph_, name, batch, values, variant, index, best=None):
        t = real_time(self, graph_, name, batch, values, variant, index, best)
        if index == 1:
            again = t.again
            t = replace(t, seconds=t.seconds * 10, again=lambda: again() * 10)
        timed.setdefault(name, []).append(t)
        return t

    monkeypatch.setattr(tuner_module, "variant_space", two_variants)
    monkeypatch.setattr(Tuner, "_time", losing_second)
    tuner = Tuner(device, TuningCache.default(), budget=600, progress=False)
    results = {r.node: r for r in tuner.tune_graph(graph, 3)}
    assert results[node.name].tried == 2
    programs = tuner.backend.programs
    default_keys = timed[node.name][0].programs
    loser_only = timed[node.name][1].programs - default_keys
    assert loser_only, "the two variants build different programs"
    for key in loser_only:
        assert not programs.paths[key].exists(), f"a losing variant's {key[0]} was written"
    winners = set().union(*(ts[0].programs for ts in timed.values()))
    for key in winners:
        assert programs.paths[key].exists(), f"a winner's {key[0]} is not on disk"
    assert results[node.name].variant == results[node.name].default

    # A later run (a fresh program cache, as in a new process) finds the winners on disk.
    monkeypatch.setattr(program_module, "_CACHES", {})
    backend = OpenCLBackend(device)
    backend.choose_variants = CachedVariants(backend, progress=False)
    backend.compile(graph, 3)
    records = {(r.file, r.options): r.from_disk for r in backend.programs.records}
    assert all(records[key] for key in winners if key in records)
    assert any(key in records for key in winners)


# ---------------------------------------------------------------- the budget


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fake_device_work(monkeypatch, clock: FakeClock, *, cost: float, gate: float,
                      seconds=None) -> list[tuple[str, int]]:
    """Replace the device work of a tuner by the fake clock's advancing: each variant's setup
    and timing costs `cost` s, each gate `gate` s, a run `seconds(variant, index)`.
    Returns the (node, index) of each variant timed."""
    timed: list[tuple[str, int]] = []
    seconds = seconds or (lambda v, i: 0.01)

    def fake_time(self, graph_, name, batch, values, variant, index, best=None):
        clock.now += cost
        timed.append((name, index))
        run = seconds(variant, index)

        def again() -> float:
            clock.now += run
            return run

        return Timed(index, run, again, set(), cost, 3)

    class FakeGate:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def check(self, variant) -> Verdict:
            clock.now += gate
            return Verdict(True)

    def fake_prebuild(backend, jobs) -> None:
        clock.now += cost

    monkeypatch.setattr(Tuner, "_time", fake_time)
    monkeypatch.setattr(tuner_module, "prebuild", fake_prebuild)
    monkeypatch.setattr(tuner_module, "Gate", FakeGate)
    return timed


def _faster_than_default(variant, index: int) -> float:
    """Every variant but the default is 20% faster, so each node ends in a gate check."""
    return 0.01 if index == 0 else 0.008


@pytest.mark.parametrize("budget", [1.5, 2.5, 4.0, 7.0, 12.0, 20.0, 60.0])
def test_the_budget_bounds_the_whole_tuning(device, graph, tmp_path, monkeypatch, budget):
    """Including the last node's side-by-side timing and gate, and time already spent (once
    the first node's default is timed: before that, nothing is measured to go by)."""
    clock = FakeClock()
    _fake_device_work(monkeypatch, clock, cost=0.5, gate=1.0, seconds=_faster_than_default)
    start = clock.now
    tuner = Tuner(device, TuningCache(tmp_path / "t.json"), budget, progress=False,
                  spent=0.4, clock=clock)
    results = tuner.tune_graph(graph, 3)
    assert clock.now - start <= budget - 0.4 + 1e-9
    if budget >= 60:
        assert all(r.source != "no budget" for r in results)


def test_a_generous_budget_is_not_all_used(device, graph, tmp_path, monkeypatch):
    """The search of each node stops by its own measurements, not by the budget."""
    clock = FakeClock()
    timed = _fake_device_work(monkeypatch, clock, cost=0.5, gate=1.0)
    start = clock.now
    tuner = Tuner(device, TuningCache(tmp_path / "t.json"), 600, progress=False, clock=clock)
    results = tuner.tune_graph(graph, 3)
    assert clock.now - start < 100
    tuned = [r for r in results if r.source == "tuned"]
    assert tuned and all(r.tried <= 1 + tuner_module.PATIENCE for r in tuned)
    assert len(timed) == sum(r.tried for r in tuned)


@pytest.mark.parametrize("budget", [4.0, 600.0])
def test_an_extending_tuner_spends_what_is_left_on_the_stopped_searches(
        device, graph, tmp_path, monkeypatch, budget):
    """PATIENCE ends each search two variants after its last gain; a tuner given `extend`
    (`cnnc tune`, Model.tune) times the rest of those spaces with what is left of its budget,
    but for the seconds it keeps, and finds the faster tile that comes late; one without it
    (a run's first use) stops where the first search stopped."""
    space = [{"algo": "direct", "MR": mr, "VW": 4, "NV": 1} for mr in (2, 3, 4, 5, 6, 7)]
    monkeypatch.setattr(tuner_module, "variant_space", lambda n, ctx: space)
    times = {0: 0.02, 1: 0.01, 2: 0.01, 3: 0.01, 4: 0.01, 5: 0.005}
    found = {}
    for extend in (None, 2.0):
        clock = FakeClock()
        timed = _fake_device_work(monkeypatch, clock, cost=0.5, gate=1.0,
                                  seconds=lambda v, i: times[i])
        start = clock.now
        tuner = Tuner(device, TuningCache(tmp_path / f"t{extend}.json"), budget,
                      progress=False, clock=clock, extend=extend)
        results = [r for r in tuner.tune_graph(graph, 3) if r.source == "tuned"]
        assert clock.now - start <= budget + 1e-9
        found[extend] = {r.node: r for r in results}, timed, clock.now - start
    plain, plain_timed, _ = found[None]
    extended, extended_timed, spent = found[2.0]
    if budget < 100:  # the budget, not patience, ends the first searches: nothing to extend
        assert plain_timed == extended_timed
        return
    stopped = {n for n, r in plain.items() if r.stale}  # by PATIENCE (small launches: cut)
    assert len(stopped) >= 5 and all(r.variant == space[1] for r in plain.values())
    assert 5 not in {i for _, i in plain_timed}
    assert spent <= budget - 2.0
    for node in stopped:  # each searched to its end (the default and the winner timed again
        # beside the variants not yet timed), the late tile found
        order = [i for n, i in extended_timed if n == node]
        assert order[-3:-1] == [0, 1] and order[-1] == 5 and order.count(5) == 1, (node, order)
        assert extended[node].variant == space[5], node
    assert all(extended[n].variant == space[1] for n in set(plain) - stopped)


def test_a_family_far_slower_than_the_best_is_left(device, graph, tmp_path, monkeypatch):
    """Where Winograd is 3x faster than the default, no other direct tile is timed; a Winograd
    tile that lost on the first nodes of an op is not timed on its later ones, and is on the
    first node of another op (a kernel gradient's Winograd is not the forward pass's)."""
    clock = FakeClock()
    m4, m2 = {"algo": "winograd", "wino_m": 4}, {"algo": "winograd", "wino_m": 2}
    tiles = [{"algo": "direct", "MR": mr, "VW": 4, "NV": 1} for mr in (2, 4, 8)]
    space = [{"algo": "direct", "MR": 4, "VW": 8, "NV": 1}, m4, m2, *tiles]
    monkeypatch.setattr(tuner_module, "variant_space", lambda n, ctx: space)

    def seconds(variant, index: int) -> float:
        if variant.get("algo") == "winograd":
            return 0.01 if variant["wino_m"] == 4 else 0.02
        return 0.03

    timed = _fake_device_work(monkeypatch, clock, cost=0.5, gate=1.0, seconds=seconds)
    monkeypatch.setattr(tuner_module, "LOST_NODES", 1)
    tuner = Tuner(device, TuningCache(tmp_path / "t.json"), 600, progress=False, clock=clock)
    results = [r for r in tuner.tune_graph(graph, 3) if r.source == "tuned"]
    assert len(results) >= 2
    order = list(dict.fromkeys(name for name, _ in timed))  # the order they were tuned in
    per_node = [[i for name, i in timed if name == node] for node in order]
    assert per_node[0] == [0, 1, 2], "the direct tiles left: their default is 3x slower"
    op_of = {r.node: as_layer(graph.node(r.node)).op for r in results}
    seen = set()
    for node, indices in zip(order, per_node, strict=True):
        # m=2 lost on the op's first node: not timed again on that op
        assert indices == ([0, 1] if op_of[node] in seen else [0, 1, 2]), node
        seen.add(op_of[node])
    assert len(seen) >= 2 and len(order) > len(seen)
    assert all(r.variant == m4 for r in results)


# ---------------------------------------------------------------- timing runs


def test_a_variant_far_slower_than_the_best_is_timed_once(device, graph, tmp_path):
    from cnnc.crosscheck import single_node_graph
    from cnnc.tune.gate import random_values

    node = tunable_nodes(graph, ("conv2d",))[0]
    tuner = Tuner(device, TuningCache(tmp_path / "t.json"), 60, progress=False)
    g1 = single_node_graph(graph, node, 3)
    values = random_values(g1, 3)
    variant = variant_space(node, BindContext(graph, 3, tuner.backend.target))[0]
    full = tuner._time(g1, node.name, 3, values, variant, 0)
    assert full.runs >= 2 and full.programs
    cut = tuner._time(g1, node.name, 3, values, variant, 0, best=full.seconds * 1e-6)
    assert cut.runs == 1


def test_the_process_age_is_counted():
    age = process_age()
    assert 0 <= age < 7 * 86400


def test_cnnc_tune_s_budget_counts_the_process_age_but_not_a_qualification():
    from cnnc.commands.tune import EXIT_SECONDS, spent_before

    assert spent_before(5.0, 0.0) == 5.0 + EXIT_SECONDS
    assert spent_before(70.0, 62.0) == 8.0 + EXIT_SECONDS  # 62 s qualifying: not tuning
    assert spent_before(1.0, 3.0) == EXIT_SECONDS


REPEATED_SPEC = """
network: tiny_repeated
input: [6, 5, 8]
layers:
  - {conv2d: [8, 3], padding: same, activation: relu}
  - {conv2d: [8, 3], padding: same, activation: relu}
  - {conv2d: [8, 3], padding: same, activation: relu}
  - flatten
  - {dense: 3, activation: softmax}
"""


@pytest.mark.parametrize("budget", [0.0, 1.5, 60.0])
def test_launches_sharing_a_key_with_one_not_reached(device, tmp_path, monkeypatch, budget):
    """Three convolutions of one shape share a cache key and one search; where the budget does
    not reach it, all three say so (none is left out of the table, nothing fails)."""
    from cnnc.frontend.spec import load_spec
    from cnnc.passes.pipeline import inference_graph

    path = tmp_path / "repeated.yaml"
    path.write_text(REPEATED_SPEC)
    graph = inference_graph(load_spec(str(path)))
    clock = FakeClock()
    _fake_device_work(monkeypatch, clock, cost=0.5, gate=1.0, seconds=_faster_than_default)
    tuner = Tuner(device, TuningCache(tmp_path / "t.json"), budget, progress=False,
                  clock=clock)
    results = {r.node: r for r in tuner.tune_graph(graph, 3)}
    convs = [n.name for n in graph.nodes if n.op == "conv2d"]
    assert len(convs) == 3 and all(c in results for c in convs)
    sources = {results[c].source for c in convs}
    if budget == 0:
        assert sources == {"no budget"}
    if budget >= 60:
        assert sources == {"tuned", "same key"}


# ---------------------------------------------------------------- two passes


def _two_pass_space(monkeypatch):
    """A space whose likeliest variants (the first pass's) halve the default's time and whose
    fifth, timed only when a search is resumed, is faster still."""
    space = [{"algo": "direct", "MR": mr, "VW": 4, "NV": 1} for mr in (2, 3, 4, 5, 6)]
    monkeypatch.setattr(tuner_module, "variant_space", lambda n, ctx: space)
    times = {0: 0.02, 1: 0.01, 2: 0.01, 3: 0.01, 4: 0.005}
    return space, lambda variant, index: times[index]


def test_every_node_gets_its_likeliest_gain_before_any_search_goes_on(device, graph, tmp_path,
                                                                      monkeypatch):
    """With a budget that cannot hold every node's whole search, each node is tuned from its
    first variants before any node times a later one; with time left, the cut searches resume
    and find the later, faster variant (its gate run, the first pass's winner's not again)."""
    space, seconds = _two_pass_space(monkeypatch)
    n_tunable = len({n.name for n in graph.nodes if tuner_module.tunable(n)})
    results_by_budget = {}
    for budget in (6.0 * n_tunable, 600.0):
        clock = FakeClock()
        timed = _fake_device_work(monkeypatch, clock, cost=0.5, gate=1.0, seconds=seconds)
        tuner = Tuner(device, TuningCache(tmp_path / f"t{budget}.json"), budget, progress=False,
                      clock=clock)
        results = [r for r in tuner.tune_graph(graph, 3) if r.source == "tuned"]
        results_by_budget[budget] = results
        assert len(results) >= 2
        firsts = [k for k, (_, i) in enumerate(timed) if i >= 3]
        nodes_started = {name for name, i in timed[:firsts[0]]} if firsts else set()
        # (launches of few FLOPs come after both passes)
        ctx = BindContext(graph, 3, tuner.backend.target)
        flops = {n.name: tuner_module.gemm_flops(n, ctx) for n in graph.nodes
                 if tuner_module.tunable(n)}
        big = {r.node for r in results
               if flops[r.node] >= tuner_module.SMALL_SHARE * sum(flops.values())}
        assert big and nodes_started >= big, \
            "a later variant was timed before every node had its first ones"
    short, long = ([r for r in rs if r.node in big] for rs in results_by_budget.values())
    assert all(r.variant in (space[1], space[4]) for r in short)
    assert all(r.variant == space[4] for r in long), [r.variant for r in long]
    assert all(r.tried == 5 for r in long)


def test_a_search_cut_by_the_budget_is_resumed_by_the_next_tuning(device, graph, tmp_path,
                                                                 monkeypatch):
    """A budget that ends a node's search with variants left to time caches its best so far
    marked cut; the next tuning of the graph (no --force) resumes those searches, finds the
    later, faster variant and clears the mark; a third tunes nothing."""
    space, seconds = _two_pass_space(monkeypatch)
    cache = TuningCache(tmp_path / "t.json")
    n_tunable = len({n.name for n in graph.nodes if tuner_module.tunable(n)})
    runs = []
    for budget in (4.0 * n_tunable, 600.0, 600.0):
        clock = FakeClock()
        timed = _fake_device_work(monkeypatch, clock, cost=0.5, gate=1.0, seconds=seconds)
        tuner = Tuner(device, TuningCache(cache.path), budget, progress=False, clock=clock)
        runs.append(({r.node: r for r in tuner.tune_graph(graph, 3)}, list(timed)))
    (first, _), (second, timed_second), (third, timed_third) = runs
    cut = [name for name, r in first.items() if r.cut]
    assert cut, "the short budget cut no search"
    keys = {n.name: tuner_module.node_key(tuner.backend, graph, n, 3) for n in graph.nodes
            if n.name in first}
    for name in cut:
        assert second[name].variant == space[4] and not second[name].cut, name
        assert "cut" not in TuningCache(cache.path).get(keys[name])
    assert {name for name, _ in timed_second} >= {first[n].node for n in cut}
    # The third resumes only what the second left cut (launches of few FLOPs get small shares).
    assert {name for name, _ in timed_third} <= {n for n, r in second.items() if r.cut}
    assert not {name for name, _ in timed_third} & set(cut)
    assert all(third[name].source == "cache" for name in cut)


def test_a_resumed_search_keeps_the_first_pass_winner_when_time_runs_out(device, graph,
                                                                          tmp_path,
                                                                          monkeypatch):
    """The second pass never leaves a node worse than the first left it: where its budget ends
    before the first pass's winner is timed again, that winner stays."""
    space, seconds = _two_pass_space(monkeypatch)
    clock = FakeClock()
    _fake_device_work(monkeypatch, clock, cost=0.5, gate=1.0, seconds=seconds)
    tuner = Tuner(device, TuningCache(tmp_path / "t.json"), 600, progress=False, clock=clock)
    node = tunable_nodes(graph, ("conv2d",))[0]
    key = tuner_module.node_key(tuner.backend, graph, node, 3)
    first = tuner.tune_node(graph, node, 3, 600, key, first_only=True)
    assert first.cut and first.variant == space[1] and first.timed == [0, 1, 2]
    tuner.deadline = clock() + 0.6  # the default timed again, then nothing more fits
    again = tuner.tune_node(graph, node, 3, 600, key, prior=first)
    assert again.variant == space[1]


SMALL_HEAD_SPEC = """
network: tiny_small_head
input: [8, 8, 16]
layers:
  - {conv2d: [32, 3], padding: same, activation: relu}
  - global_avgpool2d
  - {dense: 3, activation: softmax}
"""


@pytest.mark.parametrize("budget", [4.0, 600.0])
def test_launches_of_few_flops_are_tuned_last_with_what_is_left(device, tmp_path, monkeypatch,
                                                                budget):
    """The dense head (well under SMALL_SHARE of the FLOPs) is tuned only after the
    convolution, and only where the budget has time left; else it keeps its default."""
    from cnnc.frontend.spec import load_spec
    from cnnc.passes.pipeline import inference_graph
    from cnnc.tune.space import tuning_graph

    path = tmp_path / "small_head.yaml"
    path.write_text(SMALL_HEAD_SPEC)
    graph = inference_graph(load_spec(str(path)))
    clock = FakeClock()
    timed = _fake_device_work(monkeypatch, clock, cost=0.5, gate=1.0,
                              seconds=_faster_than_default)
    tuner = Tuner(device, TuningCache(tmp_path / "t.json"), budget, progress=False,
                  clock=clock)
    results = {r.node: r.source for r in tuner.tune_graph(graph, 3)}
    # the head is an avgpool_dense node, tuned as its dense part (space.tuning_graph)
    kinds = {n.name: n.op for n in tuning_graph(graph).nodes}
    heads = [n for n in results if kinds[n] == "dense"]
    convs = [n for n in results if kinds[n] != "dense"]
    assert heads and convs and all(results[c] == "tuned" for c in convs)
    order = list(dict.fromkeys(name for name, _ in timed))
    if budget >= 600:
        assert all(results[h] == "tuned" for h in heads)
        assert order.index(heads[0]) > max(order.index(c) for c in convs)
    else:
        assert all(results[h] == "small" for h in heads) and heads[0] not in order


# ---------------------------------------------------------------- a burst during a timing


def _burst_on(monkeypatch, nodes: set[str], slow: float):
    """The fake device's first timing of Winograd m=4 on `nodes` `slow` s (a neighbour's burst
    during its timed runs), its later runs at its real speed; returns the re-timed runs."""
    fake = Tuner._time
    again_runs: list[str] = []

    def bursty(self, graph_, name, batch, values, variant, index, best=None):
        t = fake(self, graph_, name, batch, values, variant, index, best)
        if variant.get("wino_m") != 4:
            return t
        real = t.again

        def again() -> float:
            again_runs.append(name)
            return real()

        return replace(t, seconds=slow if name in nodes else t.seconds, again=again)

    monkeypatch.setattr(Tuner, "_time", bursty)
    return again_runs


def _winograd_wins(monkeypatch):
    m4 = {"algo": "winograd", "wino_m": 4}
    tiles = [{"algo": "direct", "MR": mr, "VW": 4, "NV": 1} for mr in (2, 8)]
    space = [{"algo": "direct", "MR": 4, "VW": 8, "NV": 1}, m4, *tiles]
    monkeypatch.setattr(tuner_module, "variant_space", lambda n, ctx: space)
    return m4, lambda variant, index: 0.01 if variant.get("algo") == "winograd" else 0.03


def test_a_family_that_won_is_timed_again_where_a_burst_hid_it(device, graph, tmp_path,
                                                              monkeypatch):
    """Winograd won on the first node; on a later one of the same op its first timing came in
    slower than the default (a burst): it is timed again side by side with the best, and wins there too
    (without that, the two variants after it end the search and the default stays)."""
    m4, seconds = _winograd_wins(monkeypatch)
    clock = FakeClock()
    probe = _fake_device_work(monkeypatch, clock, cost=0.5, gate=1.0, seconds=seconds)
    Tuner(device, TuningCache(tmp_path / "probe.json"), 600, progress=False,
          clock=clock).tune_graph(graph, 3)
    order = list(dict.fromkeys(name for name, _ in probe))  # the order the nodes are tuned in
    tg = tuner_module.tuning_graph(graph)
    op = {name: as_layer(tg.node(name)).op for name in order}  # families are kept per op
    first, second = next((a, b) for k, a in enumerate(order) for b in order[k + 1:]
                         if op[a] == op[b])
    retimed = _burst_on(monkeypatch, {second}, 0.05)
    clock = FakeClock()
    tuner = Tuner(device, TuningCache(tmp_path / "t.json"), 600, progress=False, clock=clock)
    results = {r.node: r for r in tuner.tune_graph(graph, 3)}
    assert results[first].variant == m4
    assert results[second].variant == m4, "the burst's timing ended the search"
    assert second in retimed and first in retimed  # (first: its side-by-side decision)


def test_a_family_that_never_won_is_not_timed_again(device, graph, tmp_path, monkeypatch):
    """The first node's burst: Winograd has won nothing yet in this run, so its slow first
    timing stands (re-timing every losing variant would double the tuner's time)."""
    m4, seconds = _winograd_wins(monkeypatch)
    clock = FakeClock()
    _fake_device_work(monkeypatch, clock, cost=0.5, gate=1.0, seconds=seconds)
    nodes = {n.name for n in graph.nodes if tuner_module.tunable(n)}
    retimed = _burst_on(monkeypatch, nodes, 0.05)
    tuner = Tuner(device, TuningCache(tmp_path / "t.json"), 600, progress=False, clock=clock)
    results = [r for r in tuner.tune_graph(graph, 3) if r.source == "tuned"]
    assert results and all(r.variant != m4 for r in results)
    assert retimed == []


# ---------------------------------------------------------------- the finalists


def _finalists_case(device, graph, tmp_path, monkeypatch, finalists: int):
    """Two variants ahead of the default by their own timings, the faster one by a fluke of its
    moment; side by side (with the default, in interleaved rounds) the other is the faster.
    Returns the tuned results and the indices of the side-by-side runs in order."""
    monkeypatch.setattr(tuner_module, "FINALISTS", finalists)
    space = [{"algo": "direct", "MR": 4, "VW": 8, "NV": 1},
             {"algo": "direct", "MR": 2, "VW": 4, "NV": 1},
             {"algo": "direct", "MR": 8, "VW": 4, "NV": 1}]
    monkeypatch.setattr(tuner_module, "variant_space", lambda n, ctx: space)
    own = {0: 0.010, 1: 0.008, 2: 0.0085}  # each variant's runs at its own moment
    side = {0: 0.010, 1: 0.0095, 2: 0.006}  # the same launches, run side by side
    clock = FakeClock()
    _fake_device_work(monkeypatch, clock, cost=0.5, gate=1.0,
                      seconds=lambda variant, index: own[index])
    fake = Tuner._time
    rounds: list[int] = []

    def as_side_by_side(self, graph_, name, batch, values, variant, index, best=None):
        t = fake(self, graph_, name, batch, values, variant, index, best)

        def again() -> float:
            rounds.append(index)
            clock.now += side[index]
            return side[index]

        return replace(t, again=again)

    monkeypatch.setattr(Tuner, "_time", as_side_by_side)
    tuner = Tuner(device, TuningCache(tmp_path / "t.json"), 600, progress=False, clock=clock)
    tuned = [r for r in tuner.tune_graph(graph, 3) if r.source == "tuned"]
    assert tuned
    return space, side, tuned, rounds


def test_the_finalists_are_ranked_side_by_side_not_by_their_own_runs(device, graph, tmp_path,
                                                                     monkeypatch):
    """The variant that is faster side by side is kept, with its side-by-side times."""
    space, side, tuned, rounds = _finalists_case(device, graph, tmp_path, monkeypatch, 3)
    assert all(r.variant == space[2] for r in tuned)
    assert all(r.seconds == side[2] and r.default_seconds == side[0] for r in tuned)
    # interleaved: the default and both finalists in each round
    assert rounds[:3 * tuner_module.ROUNDS] == [0, 1, 2] * tuner_module.ROUNDS


def test_with_one_finalist_the_fluke_wins(device, graph, tmp_path, monkeypatch):
    """The test above bites: with one finalist (the decision before finalists), the variant
    whose own runs were fastest is kept, though it is the slower side by side."""
    space, _side, tuned, rounds = _finalists_case(device, graph, tmp_path, monkeypatch, 1)
    assert all(r.variant == space[1] for r in tuned)
    assert 2 not in rounds


def test_a_resumed_search_keeps_its_winner_when_a_burst_hides_it(device, graph, tmp_path,
                                                                 monkeypatch):
    """The first passes find Winograd faster side by side; the extending pass times it again
    during a neighbour's burst, and nothing else beats the default: the first passes' winner
    stays (not the default, which that pass's rounds alone would keep)."""
    m4 = {"algo": "winograd", "wino_m": 4}
    tiles = [{"algo": "direct", "MR": mr, "VW": 4, "NV": 1} for mr in (1, 2, 8, 16)]
    space = [{"algo": "direct", "MR": 4, "VW": 8, "NV": 1}, m4, *tiles]
    monkeypatch.setattr(tuner_module, "variant_space", lambda n, ctx: space)
    clock = FakeClock()
    _fake_device_work(monkeypatch, clock, cost=0.5, gate=1.0,
                      seconds=lambda v, i: 0.02 if v.get("algo") == "winograd" else 0.03)
    fake = Tuner._time
    timings: dict[str, int] = {}

    def third_in_a_burst(self, graph_, name, batch, values, variant, index, best=None):
        t = fake(self, graph_, name, batch, values, variant, index, best)
        if variant != m4:
            return t
        timings[name] = timings.get(name, 0) + 1
        if timings[name] < 3:
            return t

        def again() -> float:
            clock.now += 0.05
            return 0.05

        return replace(t, seconds=0.05, again=again)

    monkeypatch.setattr(Tuner, "_time", third_in_a_burst)
    tuner = Tuner(device, TuningCache(tmp_path / "t.json"), 600, progress=False, clock=clock,
                  extend=0.0)
    tuned = [r for r in tuner.tune_graph(graph, 3) if r.source == "tuned"]
    assert tuned and any(timings.get(r.node, 0) >= 3 for r in tuned), "no burst was timed"
    assert all(r.variant == m4 for r in tuned)
    assert all(r.seconds == pytest.approx(0.02) for r in tuned)


def test_rounds_that_disagree_are_taken_again(device, graph, tmp_path, monkeypatch):
    """A variant 3x faster than the default, whose first two side-by-side rounds fall in a
    burst (slower than the default there): more rounds, and it wins; with ROUNDS rounds alone
    it would lose."""
    space = [{"algo": "direct", "MR": 4, "VW": 8, "NV": 1},
             {"algo": "direct", "MR": 2, "VW": 4, "NV": 1}]
    monkeypatch.setattr(tuner_module, "variant_space", lambda n, ctx: space)
    clock = FakeClock()
    _fake_device_work(monkeypatch, clock, cost=0.5, gate=1.0,
                      seconds=lambda v, i: 0.03 if i == 0 else 0.01)
    fake = Tuner._time
    rounds: dict[str, int] = {}

    def burst_in_its_first_rounds(self, graph_, name, batch, values, variant, index,
                                  best=None):
        t = fake(self, graph_, name, batch, values, variant, index, best)
        if index == 0:
            return t

        def again() -> float:
            rounds[name] = rounds.get(name, 0) + 1
            run = 0.04 if rounds[name] <= 2 else 0.01
            clock.now += run
            return run

        return replace(t, again=again)

    monkeypatch.setattr(Tuner, "_time", burst_in_its_first_rounds)
    tuner = Tuner(device, TuningCache(tmp_path / "t.json"), 600, progress=False, clock=clock)
    tuned = [r for r in tuner.tune_graph(graph, 3) if r.source == "tuned"]
    assert tuned and all(r.variant == space[1] for r in tuned)
    assert all(3 < rounds[r.node] <= tuner_module.MORE_ROUNDS for r in tuned)
