"""Host time of training-batch augmentation (cnnc/train/augmentation.py), per batch.

    python benchmarks/augmentation.py [--batch 128] [--batches 40]

For each transform alone and all together, at 28x28x1 and 32x32x3: the median wall time of one
batch (its augmentation and, for mixup/cutmix, its target mixing) and the process's CPU time per
batch (steadier than the wall clock on a shared machine), plus the time to draw one epoch's plan
for 60,000 examples. Random images; correctness is tests/train/test_augmentation.py's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from cnnc.ir.train_config import parse_train_config
from cnnc.train.augmentation import epoch_plan

SETTINGS = {
    "crop 4": {"crop": 4},
    "crop 4 reflect": {"crop": 4, "crop_padding": "reflect"},
    "flip + vflip": {"flip": True, "vflip": True},
    "rotate 15 + translate 0.1": {"rotate": 15, "translate": 0.1},
    "erase 0.5": {"erase": 0.5},
    "cutout 8": {"cutout": 8},
    "mixup 0.2": {"mixup": 0.2},
    "cutmix 1": {"cutmix": 1.0},
    "all of them": {"crop": 4, "flip": True, "rotate": 15, "translate": 0.1, "erase": 0.5,
                    "cutout": 8, "mixup": 0.2, "cutmix": 1.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, batch {args.batch}")
    print("| shape | augment | wall ms (median) | CPU ms |\n|---|---|---:|---:|")
    for shape in ((28, 28, 1), (32, 32, 3)):
        n = args.batch * args.batches
        x = np.random.default_rng(0).random((n, *shape), dtype=np.float32)
        y = np.eye(10, dtype=np.float32)[np.arange(n) % 10]
        for name, augment in SETTINGS.items():
            plan = epoch_plan(parse_train_config({"augment": augment}), n, shape, 0)
            walls = []
            cpu0 = time.process_time()
            for b in range(args.batches):
                s, e = b * args.batch, (b + 1) * args.batch
                t = time.perf_counter()
                xb = plan.batch(x[s:e], s, e)
                plan.mix(xb, y[s:e], s, e)
                walls.append(time.perf_counter() - t)
            cpu = (time.process_time() - cpu0) / args.batches
            print(f"| {'x'.join(map(str, shape))} | {name} | "
                  f"{1000 * statistics.median(walls):.2f} | {1000 * cpu:.2f} |")
        t = time.perf_counter()
        epoch_plan(parse_train_config({"augment": SETTINGS["all of them"]}), 60000, shape, 0)
        print(f"one epoch's plan for 60,000 examples at {shape}: "
              f"{1000 * (time.perf_counter() - t):.0f} ms")


if __name__ == "__main__":
    main()
