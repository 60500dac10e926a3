"""Training steps read after every step against steps queued and read every N: one process.

    python benchmarks/host_stalls.py [--spec fashion] [--batch 32] [--steps 30] [--rounds 3]

Both loops run on the same model and executable, in interleaved rounds: `eager` is the loop as
it was (Model.train_step, which waits for the step and reads its loss and predictions, then
counts right predictions on the host); `queued` is the training loop's way now
(Model.queue_train_step, figures read every --read-every steps). Prints each round's
examples/s, the medians and their ratio (queued / eager), the process's CPU time per round (the
same work should cost the same: on a shared machine it is steadier than the wall clock), and
how many times the host waited for the whole queue. Random inputs; the figures are not checked here (tests/train are).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import cnnc
from cnnc.train.metrics import count_correct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="fashion")
    parser.add_argument("--backend", default="opencl")
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30, help="steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--read-every", type=int, default=50)
    args = parser.parse_args()
    model = cnnc.compile(args.spec, backend=args.backend, device=args.device)
    shape = model.graph.shape_of(model.graph.inputs[0])[1:]
    classes = model.graph.shape_of(model.graph.outputs[0])[-1]
    rng = np.random.default_rng(0)
    x = rng.random((args.steps * args.batch, *shape), dtype=np.float32)
    labels = rng.integers(0, classes, len(x)).astype(np.int32)
    batches = [slice(i * args.batch, (i + 1) * args.batch) for i in range(args.steps)]

    def eager() -> None:
        for b in batches:
            _, pred = model.train_step(x[b], labels[b], return_predictions=True)
            count_correct(np.asarray(pred), labels[b])

    def queued() -> None:
        for k, b in enumerate(batches):
            model.queue_train_step(x[b], labels[b])
            if (k + 1) % args.read_every == 0:
                model.read_queued_steps()
        model.read_queued_steps()

    eager()  # compiles and warms up
    queued()
    rates: dict[str, list[float]] = {"eager": [], "queued": []}
    cpu: dict[str, list[float]] = {"eager": [], "queued": []}
    waits: dict[str, int] = {"eager": 0, "queued": 0}
    for r in range(args.rounds):
        for name, loop in (("eager", eager), ("queued", queued)):
            w0 = getattr(model.backend, "waits", 0)
            t0, c0 = time.perf_counter(), time.process_time()
            loop()
            rate = args.steps * args.batch / (time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            waits[name] += getattr(model.backend, "waits", 0) - w0
            rates[name].append(rate)
            print(f"round {r + 1}  {name:<6}  {rate:8.1f} examples/s, CPU {cpu[name][-1]:.2f} s",
                  flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    device = getattr(getattr(model.backend, "device", None), "describe", lambda: "host")()
    print(f"{args.spec}, batch {args.batch}, {args.steps} steps x {args.rounds} rounds on "
          f"{device}")
    for k, rate in med.items():
        print(f"  {k:<6} median {rate:8.1f} examples/s, CPU {statistics.median(cpu[k]):.2f} s "
              f"a round, {waits[k] / args.rounds:.0f} whole-queue waits per round")
    print(f"  ratio queued / eager: {med['queued'] / med['eager']:.3f} (examples/s), "
          f"{statistics.median(cpu['queued']) / statistics.median(cpu['eager']):.3f} (CPU time)")


if __name__ == "__main__":
    main()
