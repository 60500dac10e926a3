"""The training step's wait on its data with and without the prefetch queue: one process.

    python benchmarks/prefetch.py [--backend opencl] [--batch 64] [--examples 2048] [--rounds 3]

Trains a small CIFAR-sized network (32x32x3 inputs) for one epoch per run with heavy host-side
augmentation (random crop 4 + flip + erasing 0.5), through the training loop itself
(cnnc/train/loop.py's Trainer), with `prefetch` 0 (each batch prepared in the loop) and 2 (a
worker thread two batches ahead), in interleaved rounds, after one warm-up run. Prints per run the epoch's wall time,
examples/s and the loop's total wait on data (preparing the batch itself, or blocked on the
queue), then the medians. Random inputs; the weights' equality is tests/train/test_prefetch.py's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import cnnc
from cnnc.train.loop import LabelledData, Trainer

SPEC = """\
network: cifar_small
input: [32, 32, 3]
layers:
  - {conv2d: [32, 3], padding: same, activation: relu}
  - {conv2d: [32, 3], padding: same, activation: relu}
  - {maxpool2d: 2}
  - {conv2d: [64, 3], padding: same, activation: relu}
  - {maxpool2d: 2}
  - global_avgpool2d
  - {dense: 10, activation: softmax}
train:
  epochs: 1
  optimizer: {name: adamw, learning_rate: 0.003}
  augment: {crop: 4, flip: true, erase: 0.5}
  seed: 1
"""


class TimedTrainer(Trainer):
    """The loop with its wait on each batch's data added up (the rest of _queue_batch as is)."""

    waited = 0.0

    def _queue_batch(self, idx, start, aug, lr):
        t = time.perf_counter()
        if self._prefetcher is not None:
            xb, yb = self._prefetcher.get(start)
        else:
            xb, yb = self._batch_data(idx, start, aug, self._epoch_now)
        self.waited += time.perf_counter() - t
        self.model.queue_train_step(xb, yb, learning_rate=lr, momentum=self._momentum_now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="opencl")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--examples", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--affine", action="store_true",
                        help="add rotate 15 + translate 0.1 (bilinear: the heaviest transforms)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.examples, 32, 32, 3), dtype=np.float32)
    data = LabelledData(x, rng.integers(0, 10, args.examples))
    model = cnnc.compile(SPEC, backend=args.backend)
    if args.affine:
        augment = dict(model.train_config.augment, rotate=15.0, translate=0.1)
        model.train_config = model.train_config.replace(augment=augment)
    model.prepare(args.batch, train=True)  # kernels built before any clock
    warm = model.train_config.replace(batch_size=args.batch, prefetch=0)
    TimedTrainer(model, warm, data.part(slice(0, 4 * args.batch)), classes=10).run()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, backend "
          f"{args.backend}, batch {args.batch}, {args.examples} examples per epoch, augment "
          f"{ {k: v for k, v in model.train_config.augment.items() if v} }")
    print("| prefetch | epoch s | examples/s | wait on data s |\n|---:|---:|---:|---:|")
    results: dict[int, list[tuple[float, float]]] = {0: [], args.depth: []}
    for _ in range(args.rounds):
        for depth, runs in results.items():
            config = model.train_config.replace(batch_size=args.batch, prefetch=depth)
            trainer = TimedTrainer(model, config, data, classes=10)
            t = time.perf_counter()
            trainer.run()
            wall = time.perf_counter() - t
            runs.append((wall, trainer.waited))
            print(f"| {depth} | {wall:.2f} | {args.examples / wall:.0f} | "
                  f"{trainer.waited:.2f} |")
    for depth, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        wait = statistics.median(r[1] for r in runs)
        print(f"median prefetch {depth}: epoch {wall:.2f} s, {args.examples / wall:.0f} "
              f"examples/s, waiting on data {wait:.2f} s")


if __name__ == "__main__":
    main()
