"""`cnnc bench SPEC`: time the forward pass or a training step of a spec on an OpenCL device.

Random inputs; the executable is compiled and run once before timing (kernel builds and first
launches are not counted). Prints the median time per run, images per second and the FLOP rate
(from the op table's FLOP counts: forward, or about three times that for a training step), and
with --profile the time of each kernel launch, slowest first. Per-kernel GFLOP/s beside NumPy and
OpenBLAS: benchmarks/kernels.py. The kernels run the tuning cache's variants where it has them
(`cnnc tune`; none with CNNC_TUNE=0), as `cnnc run` does; --compare times them against the
defaults (bench_compare.py).
"""

from __future__ import annotations

import argparse
import statistics
import time

from cnnc.commands.options import add_graph_arguments, positive_int, use_run_folder

HELP = "time a spec's forward pass or training step on an OpenCL device"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_graph_arguments(parser, verb="time", batch=32)
    parser.add_argument(
        "--runs", type=positive_int, default=10, metavar="K", help="timed runs (default 10)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also time every kernel launch on its own"
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="time the tuned kernel variants (the tuning cache's, `cnnc tune`) against the "
        "defaults, per layer and in all",
    )


def _profile(exe, repeat: int = 3, samples: int = 3) -> list[tuple[float, str, str]]:
    """Each launch's time alone: the best of `samples` timings of `repeat` launches, after one
    untimed launch. A single sample charged whatever stall it met to the launch (the plan's
    first, a 20-microsecond batch norm fold, once read 1.2 ms on a shared machine)."""
    import pyopencl as cl

    queue = exe.backend.queue
    rows = []
    for b in exe.bound:
        b.enqueue(cl, queue)
        queue.finish()
        best = float("inf")
        for _ in range(samples):
            start = time.perf_counter()
            for _ in range(repeat):
                b.enqueue(cl, queue)
            queue.finish()
            best = min(best, (time.perf_counter() - start) / repeat)
        rows.append((best, b.node, f"{b.launch.file}:{b.launch.kernel}"))
    return sorted(rows, reverse=True)


def rates(batch: int, seconds: float, flops: float, peak_gflops: float | None = None
          ) -> tuple[float, float, float | None]:
    """(images/s, GFLOP/s, fraction of the peak or None) of `batch` images taking `seconds`
    for `flops` FLOPs in all."""
    gflops = flops / seconds / 1e9
    return batch / seconds, gflops, (gflops / peak_gflops if peak_gflops else None)


def launch_flops(graph, exe, batch: int) -> dict[str, int]:
    """FLOPs of each node that launches kernels, for the whole batch: the op table's count
    (the direct algorithm's, however the kernel computes it: Winograd's saved multiplications
    count as done), else the matrix product a gradient launch computes (the tuner's count)."""
    from cnnc.backends.opencl.launches import BindContext
    from cnnc.ir.cost import node_flops
    from cnnc.tune.space import tunable
    from cnnc.tune.tuner import gemm_flops

    ctx = BindContext(graph, batch, exe.backend.target)
    found = {}
    for name in {b.node for b in exe.bound}:
        node = graph.node(name)
        flops = node_flops(graph, node) * batch
        if not flops and tunable(node):
            flops = gemm_flops(node, ctx)
        if flops:
            found[name] = flops
    return found


def _per_node_table(graph, exe, rows, batch: int, peak: float) -> list[str]:
    from cnnc.commands.table import format_table

    seconds: dict[str, float] = {}
    for t, node, _ in rows:
        seconds[node] = seconds.get(node, 0.0) + t
    flops = launch_flops(graph, exe, batch)
    table = []
    for node in sorted(flops, key=lambda n: -seconds.get(n, 0.0)):
        if seconds.get(node):
            _, gflops, fraction = rates(batch, seconds[node], flops[node], peak)
            table.append([node, graph.node(node).op, f"{seconds[node] * 1e3:.2f}",
                          f"{flops[node] / 1e6:.2f}", f"{gflops:.1f}", f"{100 * fraction:.0f}%"])
    head = ["node", "op", "ms", "MFLOP", "GFLOP/s", "of peak"]
    return ["  " + line for line in format_table(head, table, right={2, 3, 4, 5})]


def run(args: argparse.Namespace) -> int:
    from cnnc.backends.opencl.peak import measured_peak
    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.crosscheck import random_feeds
    from cnnc.frontend.spec import load_spec
    from cnnc.initializers import initial_values
    from cnnc.ir.cost import total_flops
    from cnnc.passes.pipeline import inference_graph, training_graph

    use_run_folder(args, weights=False)  # a run folder stands for its spec.yaml
    spec = load_spec(args.spec)
    graph = training_graph(spec) if args.train else inference_graph(spec)
    if args.compare:
        from cnnc.commands.bench_compare import compare

        return compare(graph, args)
    backend = OpenCLBackend(args.device)
    from cnnc.tune.tuner import install

    install(backend)  # the tuning cache's variants, if any (none with CNNC_TUNE=0)
    backend.init_state(graph.state, initial_values(graph.state, 0))
    start = time.perf_counter()
    # a forward pass runs where a user's would: a small one on the companion (latency.py)
    exe = (backend.compile(graph, args.batch) if args.train
           else backend.compile_inference(graph, args.batch))
    device = exe.backend.device
    feeds = random_feeds(graph, args.batch, 0)
    fetch = list(graph.outputs[:1])
    exe.run(feeds, fetch, step=0)
    warm = time.perf_counter() - start
    times = []
    for step in range(args.runs):
        t0 = time.perf_counter()
        exe.run(feeds, fetch, step=step + 1)
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    flops = total_flops(spec) * (3 if args.train else 1) * args.batch  # spec: the forward pass
    peak = measured_peak(device, refresh=True)  # a probe now: the best rate stands
    images, gflops, fraction = rates(args.batch, t, flops, peak)
    what = "training step" if args.train else "forward pass"
    print(f"{spec.name}: {what} at batch {args.batch} on {device.describe()}")
    print(f"compile and first run: {warm:.2f} s")
    chains = getattr(exe, "_chains", None)
    if chains:  # (chain.py) the run's launches, and how many of them a chain replaced
        print(f"{len(exe._calls)} launch(es) a run: {len(exe.bound)} layer launches, "
              f"{sum(count for _, count, _ in chains)} of them in {len(chains)} chain(s)")
    print(
        f"median of {args.runs} runs: {t * 1e3:.1f} ms, {images:.0f} images/s, "
        f"{gflops:.0f} GFLOP/s (data transfers included), {100 * fraction:.0f}% of the "
        f"device's measured FMA peak ({peak:.0f} GFLOP/s)"
    )
    if args.profile:
        rows = _profile(exe)
        total = sum(r[0] for r in rows)
        print(f"kernel launches, each timed alone ({total * 1e3:.1f} ms in all):")
        for seconds, node, kernel in rows:
            print(f"  {seconds * 1e3:8.2f} ms  {100 * seconds / total:5.1f}%  {node}  {kernel}")
        print(f"layers that compute, their launches together, against the peak "
              f"({peak:.0f} GFLOP/s; FLOPs as the direct algorithm counts them):")
        for line in _per_node_table(graph, exe, rows, args.batch, peak):
            print(line)
    return 0
