"""The training loop's prefetch queue (cnnc/train/prefetch.py): the same weights bit for bit with
and without it (augmentation and mixing on, exact resume included), a bounded depth, errors on
the worker raised in the loop, and no thread left behind by Ctrl-C or an error."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from test_fit import _sigint_at
from training_spec import AUGMENTED_SPEC

import cnnc
from cnnc.errors import SpecError
from cnnc.ir.train_config import parse_train_config
from cnnc.train.checkpoint import CHECKPOINT_NAME
from cnnc.train.loop import LabelledData, Trainer, TrainingInterrupted
from cnnc.train.prefetch import Prefetcher


def _with(prefetch: int) -> str:
    return AUGMENTED_SPEC.replace("  seed: 5\n", f"  seed: 5\n  prefetch: {prefetch}\n")


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "cnnc-prefetch"]


def _same(a, b) -> None:
    sa, sb = a.get_training_state(), b.get_training_state()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


def _watched(model) -> list[bool]:
    """Whether a prefetch thread was running at each step the model queued."""
    seen: list[bool] = []
    queue = model.queue_train_step

    def watching(x, y, **kw):
        seen.append(bool(_workers()))
        queue(x, y, **kw)

    model.queue_train_step = watching
    return seen


def test_prefetching_changes_no_weight(tiny_data, backend):
    plain = cnnc.compile(_with(0), backend=backend)
    off = _watched(plain)
    plain.fit(data_dir=tiny_data, epochs=2, verbose=0)
    ahead = cnnc.compile(_with(3), backend=backend)
    on = _watched(ahead)
    ahead.fit(data_dir=tiny_data, epochs=2, verbose=0)
    assert ahead.step == plain.step == 16
    assert not any(off) and on[0] and on[8]  # working ahead at the start of each epoch
    _same(ahead, plain)
    assert _workers() == []


def test_resume_with_prefetching_is_exact_and_ctrl_c_leaves_no_thread(tiny_data, tmp_path):
    from cnnc.data import load_dataset
    from cnnc.train.fit import input_shape, prepare_data

    straight = cnnc.compile(_with(0), backend="numpy")
    straight.fit(data_dir=tiny_data, verbose=0)
    model = cnnc.compile(_with(4), backend="numpy")
    data = prepare_data(model.train_config, load_dataset("fashion_mnist", tiny_data),
                        input_shape(model))
    trainer = _sigint_at(epoch=1, batch=2)(model, model.train_config, data.train,
                                           data.validation, classes=10,
                                           checkpoint_path=tmp_path / CHECKPOINT_NAME)
    with pytest.raises(TrainingInterrupted):
        trainer.run()
    assert _workers() == []
    resumed = cnnc.compile(_with(2), backend="numpy")
    resumed.fit(data_dir=tiny_data, verbose=0, checkpoint_dir=tmp_path, resume=True)
    _same(resumed, straight)


class _BadAt:
    """Training inputs whose read of the batch at `bad` fails (a file gone mid-epoch)."""

    def __init__(self, x: np.ndarray, bad: int):
        self.x, self.bad, self.reads = x, bad, 0
        self.shape = x.shape

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, idx):
        self.reads += 1
        if self.reads == self.bad:
            raise OSError("the disk went away")
        return self.x[idx]


@pytest.mark.parametrize("prefetch", [0, 2])
def test_an_error_preparing_a_batch_reaches_the_loop_and_stops_the_worker(prefetch):
    model = cnnc.compile(_with(prefetch), backend="numpy")
    rng = np.random.default_rng(0)
    x = rng.random((64, 12, 12, 1)).astype(np.float32)
    train = LabelledData(_BadAt(x, bad=3), rng.integers(0, 10, 64))
    trainer = Trainer(model, model.train_config, train, classes=10)
    with pytest.raises(OSError, match="the disk went away"):
        trainer.run()
    assert model.step == 2  # the two batches before it were trained on
    assert _workers() == []


def test_the_queue_is_bounded_ordered_and_closes_while_full():
    made: list[int] = []

    def make(key: int) -> int:
        made.append(key)
        return key * 10

    queue = Prefetcher(make, range(100), depth=2)
    time.sleep(0.3)
    # two in the queue and one made, waiting for room: never the whole epoch ahead
    assert len(made) <= 3
    assert [queue.get(k) for k in range(5)] == [0, 10, 20, 30, 40]
    t0 = time.perf_counter()
    queue.close()
    assert time.perf_counter() - t0 < 1.0 and not queue.alive
    with Prefetcher(make, [7], depth=1) as one:
        assert one.get(7) == 70
    assert not one.alive


def test_the_setting_is_checked():
    assert parse_train_config({"prefetch": 0}).prefetch == 0
    with pytest.raises(SpecError, match="at most 8 batches"):
        parse_train_config({"prefetch": 9})
    with pytest.raises(SpecError, match="prefetch"):
        parse_train_config({"prefetch": -1})


def test_a_second_ctrl_c_mid_step_leaves_no_thread(tiny_data):
    """KeyboardInterrupt raised at once (a second Ctrl-C) while the worker is ahead: the worker
    is stopped before the exception leaves fit."""
    model = cnnc.compile(_with(4), backend="numpy")
    queue, calls = model.queue_train_step, [0]

    def interrupted(x, y, **kw):
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        queue(x, y, **kw)

    model.queue_train_step = interrupted
    with pytest.raises(KeyboardInterrupt):
        model.fit(data_dir=tiny_data, epochs=1, verbose=0)
    assert _workers() == []
