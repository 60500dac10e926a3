"""Batch-norm fusion on and off, side by side in one process: the inference fold
(conv2d/dense + batchnorm -> conv2d_bn/dense_bn) and the training fusion (batchnorm_train +
activation), on specs with batch norm.

    .venv/bin/python benchmarks/fusion.py [--device SEL] [--specs ...] [--rounds 5]

For each spec: the forward pass at --forward-batch and the training step at --train-batch, each
compiled twice (the pass pipeline with and without the fusion pass), timed in interleaved rounds
(median of the rounds' medians); the ratio is unfused time over fused time (>1: the fusion
pays). The machines these run on are shared: the load average is printed beside the figures.
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
from cnnc.passes.pipeline import inference_pipeline, run_pipeline, training_pipeline

FUSION_PASSES = {"fold_batchnorm", "fuse_batchnorm_activation"}


def _graphs(spec, train: bool):
    if train:
        config = spec.train
        passes = training_pipeline(loss=config.loss, optimizer=config.optimizer, seed=0)
    else:
        passes = inference_pipeline()
    unfused = [p for p in passes if p.name not in FUSION_PASSES]
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
    parser.add_argument("--specs", nargs="+",
                        default=["specs/fashion-plus.cnn", "specs/resnet_mini.cnn"])
    parser.add_argument("--forward-batch", type=int, default=256)
    parser.add_argument("--train-batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per round")
    args = parser.parse_args()
    for path in args.specs:
        spec = load_spec(path)
        for train, batch in ((False, args.forward_batch), (True, args.train_batch)):
            fused, unfused = _graphs(spec, train)
            backend = OpenCLBackend(args.device)
            exes = {}
            for name, graph in (("fused", fused), ("unfused", unfused)):
                backend.init_state(graph.state, initial_values(graph.state, 0))
                exe = backend.compile(graph, batch)
                feeds = random_feeds(graph, batch, 0)
                fetch = list(graph.outputs[:1])
                exe.run(feeds, fetch, step=0)
                exes[name] = (exe, feeds, fetch)
            rounds: dict[str, list[float]] = {"fused": [], "unfused": []}
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
