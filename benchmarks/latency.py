"""Small-batch forward latency of cnnc's OpenCL backend beside onnxruntime, per example spec.

    .venv/bin/python benchmarks/latency.py [SPEC ...] [--batch 1 8] [--runs 50] [--threads 2]
                                           [--tune cached|never|SECONDS] [--device SEL]

For each spec (default: every specs/*.yaml) and batch size, the forward pass (inference mode) of
the same network with the same weights, timed three ways in one process, the three taking turns
run by run so that a change of the shared machine's load touches all alike:
- `predict`: cnnc.compile(spec, backend="opencl") and `model.predict(x, batch_size=batch)`,
  the public API (input checks, upload, the launches, read-back, the finiteness check);
- `exe.run`: the bound executable `model.prepare(batch)` returns, run directly with the input
  and the output fetched (upload, the launches, read-back): the runtime without the API;
- onnxruntime with intra_op_num_threads=--threads (and one inter-op thread) on the model
  `cnnc export` writes for those weights (NCHW).
Before any timing the outputs of the three are compared (max |difference| printed; a spec whose
outputs disagree beyond 1e-3 is reported and not timed). Each figure is the median of --runs runs
after a warm-up, each after a pause (--settle, default 0.1 s) that lets onnxruntime's spinning
threads go idle, as benchmarks/frameworks.py does (pocl's worker threads then sleep too: waking
them is part of cnnc's time; --settle 0 times the calls back to back, but then each system's
call meets the other's threads still spinning from the call before). --warm-calls N makes N
untimed calls of the same task after each pause before the timed one: a stream of requests'
pace, each system with its own threads awake and the other's gone idle (as frameworks.py's
default does at batch 256). Ratios are onnxruntime's time over cnnc's (above 1: cnnc is faster). Also per
spec: the device that ran it ('pthread': pocl's CPU device; 'basic': its one-thread companion,
cnnc/backends/opencl/latency.py), the kernel launches of one forward pass (a chain of layers,
cnnc/backends/opencl/chain.py, counts once; the layers' launches beside), and their fixed cost
(launches x the back-to-back cost of one launch on that device, measured as
benchmarks/launch_overhead.py does) as a share of the executor's time. The CPU's name and the load average come first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from launch_overhead import cpu_name, launch_cost

TOLERANCE = 1e-3
# onnxruntime's pool spins a while after a call, taking the cores from whatever runs next:
# by default every timed call starts after this pause (--settle), so each system finds the cores
# as idle as the others. Then pocl's worker threads have gone to sleep too, and waking them is
# part of cnnc's latency (on a loaded machine, by far the largest part).
SETTLE_SECONDS = 0.1


def _specs(names: list[str]) -> list[str]:
    if not names:
        return sorted(str(p) for p in (ROOT / "specs").glob("*.yaml"))
    out = []
    for name in names:
        path = ROOT / "specs" / f"{name}.yaml"
        out.append(str(path) if path.exists() else name)
    return out


def _session(graph, weights: dict[str, np.ndarray], threads: int):
    import onnxruntime as ort

    from cnnc.export.onnx_export import build_model

    proto = build_model(graph, weights)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def _medians(tasks: dict[str, Callable[[], object]], runs: int, settle: float,
             warm_calls: int = 0) -> dict[str, float]:
    for fn in tasks.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in tasks}
    for _ in range(runs):
        for name, fn in tasks.items():
            time.sleep(settle)
            for _ in range(warm_calls):
                fn()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def measure(spec: str, batch: int, args: argparse.Namespace,
            launch_s: Callable[[object], float]) -> dict | None:
    """One spec at one batch size: its figures, or None where the outputs disagree."""
    import cnnc

    graph = cnnc.load_spec(spec)
    model = cnnc.compile(graph, backend="opencl", device=args.device, seed=0, tune=args.tune)
    session = _session(graph, model.get_weights(), args.threads)
    shape = graph.shape_of(graph.inputs[0])[1:]
    x = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
    x_onnx = np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x
    exe = model.prepare(batch)
    feeds = {graph.inputs[0]: x}
    fetch = [graph.outputs[0]]
    ort_feeds = {session.get_inputs()[0].name: x_onnx}

    got = model.predict(x, batch_size=batch)
    got = got if isinstance(got, np.ndarray) else got[graph.outputs[0]]
    direct = exe.run(feeds, fetch)[graph.outputs[0]]
    want = session.run(None, ort_feeds)[0]
    if want.ndim == 4 and got.ndim == 4:
        want = want.transpose(0, 2, 3, 1)  # the export's NCHW output back to NHWC
    diff = max(float(np.abs(got - want).max()), float(np.abs(direct - want).max()))
    if not diff <= TOLERANCE:
        print(f"{graph.name} batch {batch}: cnnc and onnxruntime disagree (max |diff| {diff:.2e})"
              "; not timed")
        return None
    medians = _medians({
        "predict": lambda: model.predict(x, batch_size=batch),
        "exe.run": lambda: exe.run(feeds, fetch),
        "onnxruntime": lambda: session.run(None, ort_feeds),
    }, args.runs, args.settle, args.warm_calls)
    # what a run enqueues: a chain of layers (cnnc/backends/opencl/chain.py) is one launch
    launches = len(exe._calls) if exe._calls is not None else len(exe.bound)
    ran_on = exe.backend.device  # the device's one-thread companion for a small pass
    return {"name": graph.name, "batch": batch, "diff": diff, "launches": launches,
            "layers": len(exe.bound),
            "on": ran_on.name.split("-")[0],
            "share": launches * launch_s(ran_on) / medians["exe.run"], **medians}


def _tune_choice(text: str) -> str | float:
    if text in ("cached", "never"):
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"cached, never or seconds, got {text!r}") from None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime's intra-op threads")
    parser.add_argument("--tune", default="cached", type=_tune_choice,
                        help="cnnc.compile's tune=: cached (the tuning cache's variants), never, "
                             "or SECONDS (also tune, within that budget, the launches of each "
                             "batch size the cache lacks, as a user's first predict would)")
    parser.add_argument("--settle", type=float, default=SETTLE_SECONDS,
                        help="seconds of pause before each timed call (0: back to back)")
    parser.add_argument("--warm-calls", type=int, default=0,
                        help="untimed calls of the same task after each pause, before the timed "
                             "one (10: the pace of a stream of requests, each system with its own "
                             "threads awake and the other's idle)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)

    from cnnc.backends.opencl.device import select_device

    device = select_device(args.device)
    costs = {device.index: launch_cost(device)[0]}

    def launch_s(on) -> float:
        if on.index not in costs:
            costs[on.index] = launch_cost(on)[0]
        return costs[on.index]

    launch_s_device = costs[device.index]
    print(f"CPU: {cpu_name()}; device {device.describe()}; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; one launch {launch_s_device * 1e6:.1f} us "
          f"back to back; median of {args.runs} interleaved runs; onnxruntime "
          f"{args.threads} threads; tune={args.tune}; {args.settle} s pause before each call"
          + (f", then {args.warm_calls} untimed calls" if args.warm_calls else ""))
    print("| spec | batch | runs on | launches (layers') | cnnc predict ms | cnnc exe.run ms "
          "| onnxruntime ms | ort/predict | ort/exe.run | launch share |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for spec in _specs(args.specs):
        for batch in args.batch:
            r = measure(spec, batch, args, launch_s)
            if r is None:
                continue
            print(f"| {r['name']} | {batch} | {r['on']} | {r['launches']} ({r['layers']}) | "
                  f"{r['predict'] * 1e3:.3f} | "
                  f"{r['exe.run'] * 1e3:.3f} | {r['onnxruntime'] * 1e3:.3f} | "
                  f"{r['onnxruntime'] / r['predict']:.2f} | "
                  f"{r['onnxruntime'] / r['exe.run']:.2f} | {100 * r['share']:.0f}% |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
