"""Training steps queued without a host stall: the loop reads their figures every few steps
(cnnc/train/loop.py, cnnc/backends/step_figures.py) and must get exactly what reading after
every step gave, find a diverged loss, resume exactly, and not wait for the device per step."""

from __future__ import annotations

import math

import numpy as np
import pytest
from training_spec import TINY_SPEC

import cnnc
from cnnc.data.synthetic import synthetic_split
from cnnc.train.checkpoint import load_checkpoint
from cnnc.train.loop import LabelledData, Trainer, TrainingDiverged, TrainingInterrupted
from cnnc.train.metrics import count_correct

# Plain SGD at a rate beyond float32's range, from the first step on.
WILD_SPEC = TINY_SPEC.replace("schedule: {name: cosine, warmup_epochs: 1}",
                              "schedule: {name: constant}").replace(
    "optimizer: {name: adam, learning_rate: 0.01}", "optimizer: {name: sgd, learning_rate: 1.0e39}")


def _data(n: int = 80) -> LabelledData:
    x, y = synthetic_split(n, (12, 12), seed=3)
    return LabelledData((x[..., None] / np.float32(255.0)).astype(np.float32),
                        y.astype(np.int64))


class EagerTrainer(Trainer):
    """The loop as it was before steps were queued: train_step, which waits for the step and
    reads its loss and predictions, then right predictions counted on the host."""

    def _queue_batch(self, idx, start, aug, lr):
        xb = self.train.x[idx]
        if aug is not None:
            xb = aug.batch(xb, start, start + len(idx))
        loss, pred = self.model.train_step(xb, self._targets[idx], learning_rate=lr,
                                           return_predictions=True)
        self._eager = [*getattr(self, "_eager", []),
                       (float(loss), count_correct(np.asarray(pred), self.train.labels[idx]))]

    def _read_batches(self):
        done, self._eager = getattr(self, "_eager", []), []
        return done


def _train(backend: str, trainer=Trainer, *, epochs: int = 2, data=None, spec=TINY_SPEC,
           **options):
    model = cnnc.compile(spec, backend=backend)
    config = model.train_config.replace(epochs=epochs, validation_size=None)
    t = trainer(model, config, data or _data(), None, classes=10, **options)
    history = t.run()
    return model, history


def _same(a, b) -> None:
    (ma, ha), (mb, hb) = a, b
    figures = [[(r["loss"], r["accuracy"], r["step"]) for r in h.epochs] for h in (ha, hb)]
    assert figures[0] == figures[1]  # exactly: the same float64 sums in the same order
    wa, wb = ma.get_weights(), mb.get_weights()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("read_every", [3, 50])
def test_reading_every_few_steps_gives_what_reading_every_step_gives(backend, read_every):
    # 80 examples at batch 16: 5 steps an epoch, so 3 reads at an uneven point of the epoch.
    _same(_train(backend, read_every=1), _train(backend, read_every=read_every))


def test_queued_steps_match_the_eager_train_step_loop(backend):
    # The figures and weights the loop reached before steps were queued, bit for bit.
    _same(_train(backend, EagerTrainer), _train(backend))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflows, expected
def test_a_diverged_loss_is_found_at_the_next_read_naming_its_step(backend):
    model = cnnc.compile(WILD_SPEC, backend=backend)
    config = model.train_config.replace(epochs=2, validation_size=None)
    trainer = Trainer(model, config, _data(), None, classes=10, read_every=50,
                      read_every_s=math.inf)
    with pytest.raises(TrainingDiverged) as err:
        trainer.run()
    message = err.value.message
    # The first step's loss is finite (the weights are the initial ones); the update then
    # blows them up, and the next step's loss is the first that is not.
    assert "became nan at step 2 (epoch 1, batch 2 of 5" in message \
        or "became inf at step 2 (epoch 1, batch 2 of 5" in message
    assert "found when reading steps 1 to 5" in message
    assert "no checkpoint was written" in message


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverged_loss_stops_at_the_same_step_whenever_it_is_read(backend):
    messages = []
    for read_every in (1, 4):
        model = cnnc.compile(WILD_SPEC, backend=backend)
        config = model.train_config.replace(epochs=2, validation_size=None)
        with pytest.raises(TrainingDiverged) as err:
            Trainer(model, config, _data(), None, classes=10, read_every=read_every).run()
        messages.append(err.value.message.split("); training stopped")[0])
    assert "; found" not in messages[0] and "; found when reading steps 1 to 4" in messages[1]
    assert messages[0] == messages[1].split("; found")[0]  # the same step, epoch, batch, rate


def test_resume_after_an_interrupt_between_reads_is_exact(backend, tmp_path):
    whole = _train(backend, epochs=2)
    calls = [0]

    class StopAfterThree(Trainer):
        def _stop_requested(self, stop):
            calls[0] += 1
            return calls[0] == 3  # in the first epoch, between two reads (read_every 50)

    ckpt = tmp_path / "checkpoint.safetensors"
    model = cnnc.compile(TINY_SPEC, backend=backend)
    config = model.train_config.replace(epochs=2, validation_size=None)
    with pytest.raises(TrainingInterrupted):
        StopAfterThree(model, config, _data(), None, classes=10, checkpoint_path=ckpt).run()
    start = load_checkpoint(ckpt)
    assert (start.epoch, start.batch, start.step) == (0, 3, 3)
    assert start.partial["count"] == 48 and math.isfinite(start.partial["loss_sum"])
    resumed = cnnc.compile(TINY_SPEC, backend=backend)
    history = Trainer(resumed, config, _data(), None, classes=10).run(start)
    _same(whole, (resumed, history))


def _opencl_model(opencl_status):
    if not opencl_status[0]:
        pytest.skip(opencl_status[1])
    return cnnc.compile(TINY_SPEC, backend="opencl")


def _count_host_waits(model, monkeypatch, steps: int, read_every: int) -> int:
    """Times the host waited for the device while the loop ran `steps` steps: whole-queue
    waits, blocking copies, and waits for a queued step (at most IN_FLIGHT steps ahead)."""
    import pyopencl as cl

    blocking = [0]
    real_copy = cl.enqueue_copy

    def counting_copy(*args, **kwargs):
        blocking[0] += bool(kwargs.get("is_blocking", True))
        return real_copy(*args, **kwargs)

    monkeypatch.setattr(cl, "enqueue_copy", counting_copy)
    config = model.train_config.replace(epochs=1, batch_size=4, validation_size=None)
    data = _data(4 * steps)
    model.predict(data.x[:4])  # compile what can be compiled before counting
    trainer = Trainer(model, config, data, None, classes=10, read_every=read_every,
                      read_every_s=math.inf)
    waits0, blocking[0] = model.backend.waits, 0
    trainer.run()
    monkeypatch.setattr(cl, "enqueue_copy", real_copy)
    exe = model._executables[("train", 4)]
    return model.backend.waits - waits0 + blocking[0], exe.in_flight.waits


def test_queued_steps_do_not_wait_for_the_device_per_step(opencl_status, monkeypatch):
    model = _opencl_model(opencl_status)
    _count_host_waits(model, monkeypatch, 2, read_every=50)  # state and kernels made here
    few, _ = _count_host_waits(model, monkeypatch, 6, read_every=50)
    many, ahead = _count_host_waits(model, monkeypatch, 30, read_every=50)
    # One read, at the epoch's end: the same for 6 steps as for 30.
    assert many == few == 1
    # Waiting for the step before last bounds how far ahead the host runs: at most one wait
    # per step, never a read.
    assert ahead <= 30
    every_step, _ = _count_host_waits(model, monkeypatch, 30, read_every=1)
    assert every_step >= 30  # the counter does see per-step reads


def test_the_record_kernel_counts_as_numpy_argmax_does(opencl_status):
    """Ties, NaN and one-hot targets: the device's count equals count_correct's."""
    import pyopencl as cl

    model = _opencl_model(opencl_status)
    backend = model.backend
    rng = np.random.default_rng(0)
    rows, cols = 150, 7  # more rows than the kernel's work-group, cols not a power of two
    pred = rng.integers(0, 3, size=(rows, cols)).astype(np.float32)  # many ties
    pred[5, 2] = np.nan
    pred[9, 0] = np.nan
    pred[11, :] = np.nan
    pred[12, 3:] = np.inf
    labels = rng.integers(0, cols, size=rows).astype(np.int32)
    labels[5], labels[9], labels[12] = 2, 0, 3
    onehot = np.eye(cols, dtype=np.float32)[labels]
    want = count_correct(pred, labels)
    assert 0 < want < rows

    def buffer(host):
        return cl.Buffer(backend.device.context,
                         cl.mem_flags.READ_ONLY | cl.mem_flags.COPY_HOST_PTR, hostbuf=host)

    figures = backend.step_figures()
    loss = np.array([1.25], np.float32)
    for target, sparse in ((labels, True), (onehot, False)):
        figures.record(backend.queue, buffer(loss), buffer(pred), buffer(target), rows, cols,
                       sparse)
    assert backend.read_step_figures() == [(1.25, want), (1.25, want)]
    assert backend.read_step_figures() == []


def test_queued_and_waited_for_steps_mix_on_one_model(backend):
    """Queued steps read their inputs from their own buffers, train_step from the arena: in any
    order they take the same steps as train_step alone."""
    data = _data(96)
    batches = [slice(i * 16, (i + 1) * 16) for i in range(6)]
    alone = cnnc.compile(TINY_SPEC, backend=backend)
    want = [alone.train_step(data.x[b], data.labels[b]) for b in batches]
    mixed = cnnc.compile(TINY_SPEC, backend=backend)
    got = []
    for k, b in enumerate(batches):
        if k in (2, 5):
            got += [loss for loss, _ in mixed.read_queued_steps()]
            got.append(mixed.train_step(data.x[b], data.labels[b]))
        else:
            mixed.queue_train_step(data.x[b], data.labels[b])
    assert got == want
    wa, wb = alone.get_weights(), mixed.get_weights()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_uploads_on_a_separate_queue_give_the_same_steps(opencl_status):
    """GPUs upload a queued step's inputs on a second queue (the first launch waits for the
    copies): forced here on whatever device there is."""
    import pyopencl as cl

    eager = _train("opencl", EagerTrainer) if opencl_status[0] else None
    model = _opencl_model(opencl_status)
    model.backend._upload_queue = cl.CommandQueue(model.backend.device.context)
    config = model.train_config.replace(epochs=2, validation_size=None)
    history = Trainer(model, config, _data(), None, classes=10).run()
    _same(eager, (model, history))


def test_more_queued_steps_than_device_slots_are_all_read(opencl_status, monkeypatch):
    from cnnc.backends.opencl import queued_steps

    monkeypatch.setattr(queued_steps, "CAPACITY", 3)
    data = _data(7 * 8)
    batches = [slice(i * 8, (i + 1) * 8) for i in range(7)]
    eager = _opencl_model(opencl_status)
    want = [eager.train_step(data.x[b], data.labels[b]) for b in batches]
    model = cnnc.compile(TINY_SPEC, backend="opencl")
    for b in batches:
        model.queue_train_step(data.x[b], data.labels[b])
    assert [loss for loss, _ in model.read_queued_steps()] == want


def test_a_queued_step_keeps_its_copies_from_host_memory(opencl_status, monkeypatch):
    """pyopencl's event of a non-blocking copy from host memory waits for the copy when the
    last reference to it goes; on one in-order queue that copy runs after the step before, so a
    queued step that dropped one would wait for the device every step. Every such copy a queued
    step enqueues (its inputs, the optimizer's scalars) is still held when it returns."""
    import sys

    import pyopencl as cl

    model = _opencl_model(opencl_status)
    data = _data(16)
    model.queue_train_step(data.x[:8], data.labels[:8])  # compiles, makes the input sets
    model.read_queued_steps()
    made = []
    real_copy = cl.enqueue_copy

    def keeping_copy(queue, dest, src, **kw):
        event = real_copy(queue, dest, src, **kw)
        if isinstance(src, np.ndarray) and not kw.get("is_blocking", True):
            made.append(event)
        return event

    monkeypatch.setattr(cl, "enqueue_copy", keeping_copy)
    model.queue_train_step(data.x[8:], data.labels[8:])
    monkeypatch.setattr(cl, "enqueue_copy", real_copy)
    assert len(made) >= 2  # the two inputs (and the optimizer's scalars)
    # references besides the list's and getrefcount's argument: none if the step dropped it
    held = [sys.getrefcount(made[i]) - 2 for i in range(len(made))]
    assert min(held) >= 1, held
    model.read_queued_steps()
