"""Fusion passes on and off, side by side in one process: by default batch norm's, the inference
fold (conv2d/dense + batchnorm -> conv2d_bn/dense_bn) and the training fusion (batchnorm_train +
activation), on specs with batch norm; --passes names others (fuse_shuffle: ShuffleNetV2's
concatenation, shuffle and split as gathers, with --no-train: an inference pass).

    .venv/bin/python benchmarks/fusion.py [--device SEL] [--specs ...] [--rounds 5]
                                          [--passes NAME ...] [--no-train]

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


def _graphs(spec, train: bool, fusion_passes=FUSION_PASSES):
    if train:
        config = spec.train
        passes = training_pipeline(loss=config.loss, optimizer=config.optimizer, seed=0)
    else:
        passes = inference_pipeline()
    unfused = [p for p in passes if p.name not in fusion_passes]
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
    parser.add_argument("--passes", nargs="+", default=sorted(FUSION_PASSES),
                        help="the passes left out of the unfused pipeline")
    parser.add_argument("--no-train", action="store_true", help="the forward pass only")
    args = parser.parse_args()
    for path in args.specs:
        spec = load_spec(path)
        runs = [(False, args.forward_batch)]
        if not args.no_train:
            runs.append((True, args.train_batch))
        for train, batch in runs:
            fused, unfused = _graphs(spec, train, set(args.passes))
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
            for r in range(args.rounds):
                # each goes first in every other round: the first of a round was measured
                # slower with the two graphs the same (--passes none: 0.83x, loaded machine)
                for name in (("fused", "unfused") if r % 2 == 0 else ("unfused", "fused")):
                    exe, feeds, fetch = exes[name]
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
