"""Train a small spec for a number of steps, on one device or as ranks, recording every loss.

The equivalence tests of data-parallel training compare these records: a run on N ranks must
reproduce the single-device run's per-step losses and final weights to floating-point reduction
order. Run as a program under MPI it writes rank 0's record to an .npz file:

    mpiexec -n 3 python -m cnnc.testing.equivalence OUT.npz --backend opencl --steps 100
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

# Every kind of state a step touches: batch norm (exchanged statistics and sums), dropout (masks
# keyed by the global example index), augmentation, Adam's slots, a schedule.
SPEC = """\
network: equivalence
input: [12, 12, 1]
layers:
  - {conv2d: [6, 3], padding: same, use_bias: false}
  - batchnorm
  - {activation: relu}
  - {maxpool2d: 2}
  - flatten
  - {dropout: 0.25}
  - {dense: 16, activation: relu}
  - {dropout: 0.25}
  - {dense: 10, activation: softmax}
train:
  epochs: 1
  batch_size: 16
  optimizer: {name: adam, learning_rate: 0.005}
  augment: {shift: 1, flip: true}
  schedule: {name: cosine, warmup_epochs: 1}
  seed: 3
"""


def training_data(examples: int):
    from cnnc.data.synthetic import synthetic_split
    from cnnc.train.loop import LabelledData

    x, y = synthetic_split(examples, (12, 12), seed=11)
    return LabelledData((x[..., None] / np.float32(255.0)).astype(np.float32), y.astype(np.int64))


def train_recorded(comm=None, *, backend: str = "numpy", steps: int = 10, batch: int = 16,
                   examples: int | None = None, spec: str = SPEC
                   ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(the loss of every step, the final weights), over `steps` steps of `batch` examples
    (epochs of `examples` examples, whose last batch may be short); comm None: one device;
    `spec`: a YAML spec of 12 x 12 x 1 inputs and 10 classes (default: SPEC)."""
    import cnnc
    from cnnc.distributed.trainer import DistributedTrainer
    from cnnc.train.loop import Trainer, TrainingInterrupted

    examples = examples or batch * steps
    per_epoch = -(-examples // batch)
    epochs = -(-steps // per_epoch)
    model = cnnc.compile(spec, backend=backend)
    config = model.train_config.replace(epochs=epochs, batch_size=batch)
    losses: list[float] = []
    base = Trainer if comm is None else DistributedTrainer

    queued = [0]

    class Recording(base):
        def _queue_batch(self, *args):
            super()._queue_batch(*args)
            queued[0] += 1

        def _read_batches(self):
            figures = super()._read_batches()
            losses.extend(loss for loss, _ in figures)
            return figures

        def _stop_requested(self, stop) -> bool:
            # after `steps` steps, stop as Ctrl-C would (there is no checkpoint to write)
            return super()._stop_requested(stop) or queued[0] >= steps

    extra = {} if comm is None else {"comm": comm}
    trainer = Recording(model, config, training_data(examples), None, classes=10, **extra)
    try:
        trainer.run()
    except TrainingInterrupted:
        pass
    return np.array(losses), model.get_weights()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--examples", type=int)
    parser.add_argument("--single", action="store_true", help="one device, no MPI")
    args = parser.parse_args(argv)
    comm = None
    if not args.single:
        from cnnc.distributed.comm import MPIComm

        comm = MPIComm()
    losses, weights = train_recorded(comm, backend=args.backend, steps=args.steps,
                                     batch=args.batch, examples=args.examples)
    if comm is None or comm.rank == 0:
        np.savez(args.out, losses=losses, **{f"w:{k}": v for k, v in weights.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
