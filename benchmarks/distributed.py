"""Data-parallel speed-up: N ranks with one CPU core each against one rank with one core.

    .venv/bin/python benchmarks/distributed.py [SPEC] [--batch 64] [--ranks 2] [--steps 8]
                                               [--backend opencl]

Runs the spec's training step (default: the seed model, specs/fashion.yaml) at one global batch
size, twice, each process limited to one pocl thread (POCL_MAX_PTHREAD_COUNT=1):
- 1 rank: Model.train_step on the whole batch, as `cnnc run` trains on one device;
- N ranks under mpiexec: the data-parallel step (cnnc/distributed/step.py), each rank on its
  share of the batch, gradients all-reduced through the host.
Prints images/s of each (median step time of --steps timed steps after two warm-up steps), their
ratio, and per step on rank 0: the all-reduce (which includes waiting for the slowest rank; the
same all-reduce timed alone after a barrier is printed beside it), the host's reading back and
writing of gradients, and batch norm's exchanges. Also the machine's load average, since the machine may be shared.
Needs the mpi extra.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


def _batch(graph, batch: int):
    shape = graph.shape_of(graph.inputs[0])[1:]
    classes = graph.shape_of(graph.outputs[0])[-1]
    rng = np.random.default_rng(0)
    return (rng.random((batch, *shape), dtype=np.float32),
            rng.integers(0, classes, batch).astype(np.int32))


def worker(args) -> None:
    """One process of a measurement: prints one JSON line (rank 0)."""
    import cnnc

    graph = cnnc.load_spec(args.spec)
    model = cnnc.compile(graph, backend=args.backend, seed=0)
    x, y = _batch(graph, args.batch)
    times: list[float] = []
    if args.ranks == 1:
        def step() -> None:
            model.train_step(x, y, learning_rate=1e-4)
        rank, extra = 0, {}
    else:
        from cnnc.distributed.comm import MPIComm
        from cnnc.distributed.shares import shares
        from cnnc.distributed.step import DataParallelStep

        comm = MPIComm()
        stepper = DataParallelStep(model, comm)
        lo, hi = shares(args.batch, comm.size)[comm.rank]

        def step() -> None:
            stepper.run(x[lo:hi], y[lo:hi], y[lo:hi], first_example=lo,
                        weight=(hi - lo) / args.batch, learning_rate=1e-4)
        rank = comm.rank
    for i in range(2 + args.steps):
        if i == 2 and args.ranks > 1:
            stepper.times.__init__()  # count the timed steps only
        start = time.perf_counter()
        step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    if args.ranks > 1:
        # The step's all-reduce also waits for the slowest rank; time it alone too, in step.
        from cnnc.distributed.comm import any_rank

        buf = stepper.buffer.copy()
        any_rank(comm, False)  # a barrier
        start = time.perf_counter()
        for _ in range(5):
            comm.allreduce_sum(buf)
        extra = {"per_step_ms": stepper.times.per_step_ms(),
                 "gradient_mb": stepper.gradient_bytes / 1e6,
                 "allreduce_alone_ms": 1e3 * (time.perf_counter() - start) / 5}
    if rank == 0:
        median = statistics.median(times)
        print(json.dumps({"ranks": args.ranks, "step_s": median,
                          "images_per_s": args.batch / median,
                          "device": model.backend.device.describe()
                          if hasattr(model.backend, "device") else "host", **extra}))


def measure(args, ranks: int) -> dict:
    cmd = [sys.executable, str(HERE), args.spec, "--worker", "--ranks", str(ranks),
           "--batch", str(args.batch), "--steps", str(args.steps), "--backend", args.backend]
    if ranks > 1:
        mpiexec = Path(sys.executable).parent / "mpiexec"
        cmd = [str(mpiexec) if mpiexec.exists() else "mpiexec", "-n", str(ranks), *cmd]
    env = {**os.environ, "POCL_MAX_PTHREAD_COUNT": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"benchmark failed ({' '.join(cmd)}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", nargs="?", default="specs/fashion.yaml")
    parser.add_argument("--batch", type=int, default=64, help="the global batch size")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--backend", default="opencl")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    load = os.getloadavg()
    print(f"{args.spec}, global batch {args.batch}, {args.steps} timed steps, one pocl thread "
          f"per rank; load average before {load[0]:.2f} on {os.cpu_count()} CPUs")
    one = measure(args, 1)
    many = measure(args, args.ranks)
    print(f"device   {one['device']}")
    print(f"1 rank   {one['images_per_s']:8.1f} images/s  ({1e3 * one['step_s']:.0f} ms/step)")
    print(f"{args.ranks} ranks  {many['images_per_s']:8.1f} images/s  "
          f"({1e3 * many['step_s']:.0f} ms/step)")
    print(f"ratio    {many['images_per_s'] / one['images_per_s']:.2f}x")
    ms = many["per_step_ms"]
    print(f"comm     {many['gradient_mb']:.2f} MB of gradients per step, on rank 0 per step: "
          f"all-reduce {ms['allreduce']:.1f} ms (with waiting for the other ranks; "
          f"{many['allreduce_alone_ms']:.1f} ms alone, in step), packing and writing the "
          f"gradients {ms['host']:.1f} ms, update phase {ms['update']:.1f} ms, batch-norm "
          f"exchanges {ms['exchange']:.1f} ms")
    load = os.getloadavg()
    print(f"load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
