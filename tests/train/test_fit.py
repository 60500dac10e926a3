"""Model.fit / Model.evaluate: learning, exact resumption, Ctrl-C between steps, divergence."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from training_spec import AUGMENTED_SPEC, TINY_SPEC  # tests/train is on sys.path under pytest

import cnnc
from cnnc.data.synthetic import write_synthetic_dataset
from cnnc.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from cnnc.train.loop import TrainingDiverged, TrainingInterrupted


def _model(backend="numpy", spec=TINY_SPEC):
    return cnnc.compile(spec, backend=backend)


def _same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)


def test_fit_learns_the_synthetic_classes(tmp_path):
    data = write_synthetic_dataset(tmp_path, train=480, test=48, shape=(12, 12))
    model = _model()
    history = model.fit(data_dir=data, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 8 and losses[-1] < 0.5 * losses[0]
    assert history.epochs[-1]["val_accuracy"] > 0.6  # 10 classes: chance is 0.1
    assert model.step == 8 * 28  # 448 training examples after 32 held out, batches of 16
    ev = model.evaluate(data_dir=data, verbose=0)
    assert ev.count == 48 and ev.confusion.sum() == 48 and ev.accuracy > 0.6


def test_fit_on_arrays_with_keras_validation_split():
    rng = np.random.default_rng(0)
    x = rng.random((40, 12, 12, 1), dtype=np.float32)
    y = rng.integers(0, 10, 40)
    model = _model()
    history = model.fit(x, y, epochs=1, batch_size=10, validation_split=0.25, verbose=0)
    assert model.step == 3  # 30 training examples, the last 10 held out
    assert "val_loss" in history.epochs[0]
    ev = model.evaluate(x[30:], y[30:], verbose=0)
    assert ev.loss == pytest.approx(history.epochs[0]["val_loss"])


@pytest.mark.parametrize("spec", [TINY_SPEC, AUGMENTED_SPEC], ids=["shift_flip", "augmented"])
def test_resume_after_an_epoch_ends_with_the_same_weights(tiny_data, tmp_path, backend, spec):
    straight = _model(backend, spec)
    straight.fit(data_dir=tiny_data, verbose=0)
    first = _model(backend, spec)
    first.fit(data_dir=tiny_data, epochs=1, verbose=0, checkpoint_dir=tmp_path)
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME).epoch == 1
    resumed = _model(backend, spec)
    history = resumed.fit(data_dir=tiny_data, verbose=0, checkpoint_dir=tmp_path, resume=True)
    assert [r["epoch"] for r in history.epochs] == [1, 2, 3]
    assert resumed.step == straight.step
    _same_weights(resumed, straight)


def _sigint_at(epoch: int, batch: int):
    """A Trainer class that sends this process SIGINT once it has queued a given batch (a
    Ctrl-C mid-epoch, between two reads of the steps' losses)."""
    from cnnc.train.loop import Trainer

    class SigintAt(Trainer):
        def _epoch(self, e, *args):
            self._at_epoch = e
            return super()._epoch(e, *args)

        def _queue_batch(self, idx, start, aug, lr):
            super()._queue_batch(idx, start, aug, lr)
            if self._at_epoch == epoch and start == batch * self.config.batch_size:
                os.kill(os.getpid(), signal.SIGINT)

    return SigintAt


@pytest.mark.parametrize("spec", [TINY_SPEC, AUGMENTED_SPEC], ids=["shift_flip", "augmented"])
def test_ctrl_c_mid_epoch_checkpoints_and_resumes_exactly(tiny_data, tmp_path, backend, spec):
    from cnnc.data import load_dataset
    from cnnc.train.fit import input_shape, prepare_data
    straight = _model(backend, spec)
    ref = straight.fit(data_dir=tiny_data, verbose=0)
    model = _model(backend, spec)
    data = prepare_data(model.train_config, load_dataset("fashion_mnist", tiny_data),
                        input_shape(model))
    ckpt = tmp_path / CHECKPOINT_NAME
    trainer = _sigint_at(epoch=1, batch=2)(model, model.train_config, data.train,
                                           data.validation, classes=10, checkpoint_path=ckpt)
    with pytest.raises(TrainingInterrupted) as stop:
        trainer.run()
    assert stop.value.step == 8 + 3 and stop.value.checkpoint == ckpt
    saved = load_checkpoint(ckpt)
    assert (saved.epoch, saved.batch, saved.step) == (1, 3, 11)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    resumed = _model(backend, spec)
    history = resumed.fit(data_dir=tiny_data, verbose=0, checkpoint_dir=tmp_path, resume=True)
    _same_weights(resumed, straight)
    # The interrupted epoch's metrics are those of an uninterrupted epoch.
    assert history.epochs[1]["loss"] == pytest.approx(ref.epochs[1]["loss"], rel=1e-12)
    assert history.epochs[1]["accuracy"] == ref.epochs[1]["accuracy"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflow warnings, expected
def test_divergence_names_the_step_and_keeps_the_last_good_checkpoint(tiny_data, tmp_path):
    # A step schedule that multiplies the rate by 1e41 from the second epoch on: more than
    # float32 holds, so the first update of epoch 2 makes the weights infinite.
    spec = TINY_SPEC.replace("schedule: {name: cosine, warmup_epochs: 1}",
                             "schedule: {name: step, factor: 1.0e41, every: 1}")
    model = _model(spec=spec)
    with pytest.raises(TrainingDiverged) as err:
        model.fit(data_dir=tiny_data, verbose=0, checkpoint_dir=tmp_path)
    msg = str(err.value)
    assert "became nan" in msg or "became inf" in msg
    step = int(msg.split(" at step ")[1].split()[0])
    assert step > 8 and "(epoch 2," in msg
    assert "last good checkpoint (after epoch 1, step 8)" in msg
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME).epoch == 1
    # The model was put back to that checkpoint: finite weights, step 8.
    assert model.step == 8
    assert all(np.isfinite(w).all() for w in model.get_weights().values())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_without_a_checkpoint_says_so(tiny_data):
    model = cnnc.compile(TINY_SPEC, backend="numpy", optimizer={"name": "sgd",
                                                                "learning_rate": 1e39})
    with pytest.raises(TrainingDiverged, match="no checkpoint was written"):
        model.fit(data_dir=tiny_data, verbose=0)


def test_bad_fit_arguments_are_clear_errors():
    model = _model()
    x = np.zeros((4, 12, 12, 1), np.float32)
    with pytest.raises(cnnc.CnncError, match="x was given without y"):
        model.fit(x, verbose=0)
    with pytest.raises(cnnc.CnncError, match="expected 4 labels"):
        model.fit(x, np.zeros(3, int), verbose=0)
    with pytest.raises(cnnc.CnncError, match="epochs"):
        model.fit(x, np.zeros(4, int), epochs=0, verbose=0)


@pytest.mark.parametrize("option,message", [
    ({"batch_size": 0},
     "train.batch_size: Expected a strictly positive integer. Received batch_size=0."),
    ({"epochs": 0}, "train.epochs: Expected a strictly positive integer. Received epochs=0."),
    ({"validation_split": 1.0},
     "train.validation_split: Expected a number in [0, 1). Received validation_split=1.0."),
    ({"limit": 0}, "limit must be a positive number of examples, got 0"),
])
def test_bad_fit_settings_name_the_setting(option, message):
    x = np.zeros((40, 12, 12, 1), np.float32)  # TINY_SPEC holds out 32 for validation
    with pytest.raises(cnnc.CnncError) as info:
        _model().fit(x, np.zeros(40, int), verbose=0, **option)
    assert info.value.render() == message


def test_resume_refuses_a_checkpoint_of_other_settings(tiny_data, tmp_path):
    _model().fit(data_dir=tiny_data, epochs=1, verbose=0, checkpoint_dir=tmp_path)
    with pytest.raises(cnnc.CnncError, match="other training settings"):
        _model().fit(data_dir=tiny_data, batch_size=8, verbose=0, checkpoint_dir=tmp_path,
                     resume=True)
    with pytest.raises(cnnc.CnncError, match="other training settings"):
        _model().fit(data_dir=tiny_data, limit=100, verbose=0, checkpoint_dir=tmp_path,
                     resume=True)
