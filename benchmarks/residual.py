"""Residual fusion on and off, side by side in one process: the inference pass fuse_residual
(conv2d_bn -> add -> relu as one conv2d_bn_add launch) and, with --train-batch, the training
fusion (batchnorm_train -> add -> relu as one batchnorm_train_add), on specs with residual
blocks, every graph with its tuned kernel variants.

    .venv/bin/python benchmarks/residual.py [--device SEL] [--specs ...] [--batch 256]
        [--train-batch 128] [--rounds 5] [--tune-budget 300]

For each spec: the forward pass at --batch (and the training step at --train-batch), compiled
twice (the pipeline with and without the residual fusion), each graph's launches that the
tuning cache lacks tuned first (`cnnc tune`'s tuner, within --tune-budget seconds for all;
0: the cache's variants or the defaults), then timed in interleaved rounds (median of the
rounds' medians); the ratio is unfused time over fused time (>1: the fusion pays). The machines
these run on are shared: the load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.crosscheck import random_feeds
from cnnc.frontend.spec import load_spec
from cnnc.initializers import initial_values
from cnnc.passes import fuse_training
from cnnc.passes.pipeline import (
    Pass,
    inference_pipeline,
    run_pipeline,
    training_pipeline,
)
from cnnc.passes.rewrite import apply_rules
from cnnc.tune.cache import TuningCache
from cnnc.tune.tuner import Tuner, install


def _graphs(spec, train: bool):
    """(fused, unfused) graphs of `spec`: inference, or the training step."""
    if not train:
        passes = inference_pipeline()
        unfused = [p for p in passes if p.name != "fuse_residual"]
        return run_pipeline(spec, passes), run_pipeline(spec, unfused)
    config = spec.train
    passes = training_pipeline(loss=config.loss, optimizer=config.optimizer, seed=0)
    rules = {k: r for k, r in fuse_training.RULES.items() if "add" not in k}
    no_add = Pass("fuse_batchnorm_activation", lambda g: apply_rules(g, rules), "")
    unfused = [no_add if p.name == no_add.name else p for p in passes]
    return run_pipeline(spec, passes), run_pipeline(spec, unfused)


def _time(exe, feeds, fetch, runs: int) -> float:
    times = []
    for step in range(runs):
        t0 = time.perf_counter()
        exe.run(feeds, fetch, step=step + 1)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--specs", nargs="+", default=["specs/resnet_mini.yaml"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--train-batch", type=int, default=0, help="0: no training step")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per round")
    parser.add_argument("--tune-budget", type=float, default=300.0)
    args = parser.parse_args()
    tuner = None
    for path in args.specs:
        spec = load_spec(path)
        runs = [(False, args.batch)] + ([(True, args.train_batch)] if args.train_batch else [])
        for train, batch in runs:
            graphs = dict(zip(("fused", "unfused"), _graphs(spec, train), strict=True))
            exes = {}
            for name, graph in graphs.items():
                backend = OpenCLBackend(args.device)
                if tuner is None and args.tune_budget > 0:
                    tuner = Tuner(backend.device, TuningCache.default(), args.tune_budget)
                if tuner is not None:
                    tuner.tune_graph(graph, batch)  # what the cache lacks
                install(backend)
                backend.init_state(graph.state, initial_values(graph.state, 0))
                exe = backend.compile(graph, batch)
                feeds = random_feeds(graph, batch, 0)
                fetch = list(graph.outputs[:1])
                exe.run(feeds, fetch, step=0)
                exes[name] = (exe, feeds, fetch)
            rounds: dict[str, list[float]] = {name: [] for name in exes}
            for _ in range(args.rounds):
                for name, (exe, feeds, fetch) in exes.items():
                    rounds[name].append(_time(exe, feeds, fetch, args.runs))
            t = {k: statistics.median(v) for k, v in rounds.items()}
            what = "training step" if train else "forward"
            print(f"{spec.name} {what} batch {batch} on {backend.device.describe()}: "
                  f"fused {t['fused'] * 1e3:.1f} ms ({batch / t['fused']:.0f} img/s), "
                  f"unfused {t['unfused'] * 1e3:.1f} ms ({batch / t['unfused']:.0f} img/s), "
                  f"ratio {t['unfused'] / t['fused']:.2f}x  "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
