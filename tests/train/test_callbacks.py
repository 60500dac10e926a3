"""Keras' callbacks from Python (cnnc/train/callbacks.py): the decisions on hand-written series of
figures, then fit with them as a user writes it, and exact resumption with their state."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.errors import CnncError, InputError
from cnnc.train.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint
from cnnc.weights import load_arrays

SPEC = """network tiny
input 4x4x1
flatten
dense 3 softmax
train {
  epochs 4
  batch_size 8
  optimizer sgd learning_rate=0.1
}
"""


def _data(n: int = 24):
    rng = np.random.default_rng(0)
    return rng.random((n, 4, 4, 1), dtype=np.float32), rng.integers(0, 3, n)


def _model():
    return cnnc.compile(SPEC, backend="numpy")


class _Holder:
    """What a callback sees as its model, for the decisions alone."""

    def __init__(self):
        self.stop_training = False
        self.weights = {"w": np.zeros(1)}

    def get_weights(self):
        return dict(self.weights)

    def set_weights(self, values):
        self.weights = dict(values)


def _feed(callback, values, monitor="val_loss"):
    """Call on_epoch_end with `values` until the callback stops training; the epochs run."""
    holder = _Holder()
    callback.set_model(holder)
    callback.on_train_begin({})
    for epoch, value in enumerate(values):
        holder.weights = {"w": np.array([float(epoch)])}
        callback.on_epoch_end(epoch, {monitor: value, "learning_rate": 0.1})
        if holder.stop_training:
            return epoch + 1, holder
    return len(values), holder


# ---------------------------------------------------------------- decisions, worked by hand


def test_early_stopping_waits_patience_epochs_without_improvement():
    # 1.0 and 0.9 improve; 0.95 and 0.96 do not: the second of those ends it (patience 2).
    run, _ = _feed(cnnc.EarlyStopping(patience=2), [1.0, 0.9, 0.95, 0.96, 0.5])
    assert run == 4


def test_early_stopping_min_delta_and_mode():
    # 0.9 is not better than 1.0 by more than 0.2: waited 1, then 2 at 0.85.
    assert _feed(cnnc.EarlyStopping(patience=2, min_delta=0.2), [1.0, 0.9, 0.85, 0.1])[0] == 3
    # accuracy is maximised ('auto'), so a falling accuracy stops it at once after epoch 2
    stop = cnnc.EarlyStopping(monitor="val_accuracy", patience=1)
    assert _feed(stop, [0.5, 0.4, 0.9], "val_accuracy")[0] == 2
    assert _feed(cnnc.EarlyStopping(patience=1, mode="max"), [1.0, 0.9, 2.0])[0] == 2


def test_early_stopping_baseline_counts_epochs_until_beaten():
    # Each improvement above the baseline 0.5 still counts as waited; the first epoch that
    # does not improve (wait 3 >= 1) stops.
    assert _feed(cnnc.EarlyStopping(patience=1, baseline=0.5), [1.0, 0.9, 0.95])[0] == 3


def test_early_stopping_restores_the_best_epochs_weights():
    stop = cnnc.EarlyStopping(patience=2, restore_best_weights=True)
    run, holder = _feed(stop, [1.0, 0.7, 0.8, 0.9])
    stop.on_train_end({})
    assert run == 4 and stop.best_epoch == 1 and holder.weights["w"][0] == 1.0


def test_reduce_lr_on_plateau_waits_then_scales_and_cools_down():
    reduce = cnnc.ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.02)

    class Loop:
        learning_rate_factor = 1.0

    reduce.loop = Loop()
    reduce.set_model(_Holder())
    reduce.on_train_begin({})
    factors = []
    rate = 0.1
    for epoch, value in enumerate([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]):
        reduce.on_epoch_end(epoch, {"val_loss": value, "learning_rate": rate})
        factors.append(reduce.loop.learning_rate_factor)
        rate = 0.1 * reduce.loop.learning_rate_factor
    # Keras' order: waited epochs 1, 2 -> 0.05; epoch 3 ends the cooldown and waits again
    # (Keras counts it), epoch 4 -> 0.025; epochs 5, 6 likewise, but 0.0125 would pass
    # min_lr 0.02, so the rate stops at 0.02, and stays there.
    assert factors == pytest.approx([1, 1, 0.5, 0.5, 0.25, 0.25, 0.2])
    for epoch in (7, 8, 9):
        reduce.on_epoch_end(epoch, {"val_loss": 1.0, "learning_rate": 0.02})
    assert 0.1 * reduce.loop.learning_rate_factor == pytest.approx(0.02)


def test_bad_callback_arguments_name_the_callback_and_the_argument():
    with pytest.raises(InputError, match=r"EarlyStopping: patience must be a non-negative "
                                         r"integer, got -1"):
        cnnc.EarlyStopping(patience=-1)
    with pytest.raises(InputError, match=r"ReduceLROnPlateau: factor must be between 0 and 1"):
        cnnc.ReduceLROnPlateau(factor=2)
    with pytest.raises(InputError, match=r"mode must be one of 'auto', 'min', 'max', got 'up'"):
        cnnc.ModelCheckpoint("best.safetensors", mode="up")
    with pytest.raises(InputError, match=r"must name a \.safetensors file"):
        cnnc.ModelCheckpoint("best.h5")
    x, y = _data()
    with pytest.raises(InputError, match=r"callbacks\[0\] is 'stop', not a cnnc.Callback"):
        _model().fit(x, y, callbacks=["stop"], verbose=0)


# ---------------------------------------------------------------- in fit


def test_fit_returns_history_and_calls_a_custom_callback_in_keras_order():
    calls = []

    class Recorder(cnnc.Callback):
        def on_train_begin(self, logs=None):
            calls.append(f"train_begin {self.params}")

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(f"begin {epoch}")

        def on_batch_end(self, batch, logs=None):
            calls.append(f"batch {batch} {'loss' in logs}")

        def on_epoch_end(self, epoch, logs=None):
            calls.append(f"end {epoch} {sorted(k for k in logs if k.endswith('loss'))}")

        def on_train_end(self, logs=None):
            calls.append("train_end")

    x, y = _data()
    model = _model()
    history = model.fit(x, y, epochs=2, validation_split=1 / 3, callbacks=[Recorder()],
                        verbose=0)
    assert isinstance(history, cnnc.History)
    assert history.history["epoch"] == [1, 2] and len(history.history["val_loss"]) == 2
    assert calls == ["train_begin {'epochs': 2, 'steps': 2}", "begin 0", "batch 0 True", "batch 1 True",
                     "end 0 ['loss', 'val_loss']", "begin 1", "batch 0 True", "batch 1 True",
                     "end 1 ['loss', 'val_loss']", "train_end"]


def test_early_stopping_in_fit_stops_and_restores_the_best_weights():
    # The training loss falls every epoch; maximising it makes epoch 1 the best, so training
    # stops after `patience` more epochs and epoch 1's weights come back.
    x, y = _data()
    model = _model()
    seen = []
    keep = cnnc.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(model.get_weights()))
    stop = cnnc.EarlyStopping(monitor="loss", mode="max", patience=2,
                              restore_best_weights=True)
    history = model.fit(x, y, epochs=10, callbacks=[keep, stop], verbose=0)
    assert len(history.epochs) == 3 and model.step == 3 * 3
    for name, value in model.get_weights().items():
        np.testing.assert_array_equal(value, seen[0][name])


def test_reduce_lr_on_plateau_in_fit_scales_the_next_epochs_rate():
    x, y = _data()
    reduce = cnnc.ReduceLROnPlateau(monitor="loss", mode="max", factor=0.5, patience=1)
    history = _model().fit(x, y, epochs=4, callbacks=[reduce], verbose=0)
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_model_checkpoint_keeps_the_best_epochs_weights(tmp_path):
    x, y = _data()
    model = _model()
    seen = []
    keep = cnnc.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(model.get_weights()))
    best = cnnc.ModelCheckpoint(tmp_path / "best.safetensors", monitor="loss", mode="max",
                                save_best_only=True)
    every = cnnc.ModelCheckpoint(str(tmp_path / "w-{epoch:02d}-{loss:.2f}.safetensors"))
    history = model.fit(x, y, epochs=3, callbacks=[keep, best, every], verbose=0)
    saved, _ = load_arrays(tmp_path / "best.safetensors")
    for name, value in saved.items():
        np.testing.assert_array_equal(value, seen[0][name])  # only epoch 1 improved
    names = sorted(p.name for p in tmp_path.glob("w-*"))
    assert names == [f"w-{e + 1:02d}-{loss:.2f}.safetensors"
                     for e, loss in enumerate(history.history["loss"])]
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left over


def test_resume_with_callbacks_reaches_the_uninterrupted_run(tmp_path):
    x, y = _data()

    def callbacks():
        return [cnnc.ReduceLROnPlateau(monitor="loss", mode="max", factor=0.5, patience=1),
                cnnc.EarlyStopping(monitor="loss", mode="max", patience=3,
                                   restore_best_weights=True)]

    straight = _model()
    whole = straight.fit(x, y, epochs=4, callbacks=callbacks(), verbose=0)
    first = _model()
    first.fit(x, y, epochs=2, callbacks=callbacks(), verbose=0, checkpoint_dir=tmp_path)
    saved = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert saved.callbacks["learning_rate_factor"] == 0.5
    assert set(saved.callback_arrays) == {f"callback/1/{k}" for k in first.get_weights()}
    resumed = _model()
    history = resumed.fit(x, y, epochs=4, callbacks=callbacks(), verbose=0,
                          checkpoint_dir=tmp_path, resume=True)
    assert history.history["learning_rate"] == whole.history["learning_rate"]
    assert history.history["loss"] == whole.history["loss"]
    for name, value in straight.get_weights().items():
        np.testing.assert_array_equal(resumed.get_weights()[name], value)
    with pytest.raises(CheckpointError, match=r"written with the callbacks \[ReduceLROnPlateau, "
                                              r"EarlyStopping\]; now \[EarlyStopping\]"):
        _model().fit(x, y, epochs=5, callbacks=callbacks()[1:], verbose=0,
                     checkpoint_dir=tmp_path, resume=True)


def test_a_monitor_that_is_not_there_warns_and_does_nothing():
    x, y = _data()
    with pytest.warns(UserWarning, match=r"EarlyStopping monitors 'val_loss', which is not "
                                         r"among the epoch's figures"):
        history = _model().fit(x, y, epochs=2, callbacks=[cnnc.EarlyStopping()], verbose=0)
    assert len(history.epochs) == 2


# ---------------------------------------------------------------- the spec's train section


def test_the_train_section_takes_keras_callbacks_in_dsl_and_yaml():
    dsl = SPEC.replace("train {", "train {\n  early_stopping patience=3 monitor=loss\n"
                       "  reduce_lr_on_plateau factor=0.5\n  checkpoint best")
    config = cnnc.load_spec(dsl).train
    assert config.early_stopping["patience"] == 3 and config.early_stopping["monitor"] == "loss"
    assert config.reduce_lr_on_plateau["factor"] == 0.5
    assert config.reduce_lr_on_plateau["patience"] == 10  # Keras' default
    assert config.checkpoint["name"] == "best"
    yaml = """network: tiny
input: [4, 4, 1]
layers: [flatten, {dense: 3, activation: softmax}]
train:
  early_stopping: {patience: 3, monitor: val_loss}
  checkpoint: best
"""
    config = cnnc.load_spec(yaml).train
    assert config.early_stopping["patience"] == 3 and config.checkpoint["monitor"] == "val_loss"
    with pytest.raises(CnncError, match=r"<string>:6:18: unknown key 'patiense'; did you mean "
                                        r"'patience'\?"):
        cnnc.load_spec(SPEC.replace("train {", "train {\n  early_stopping patiense=3"))
    with pytest.raises(CnncError, match=r"unknown checkpoint 'worst'"):
        cnnc.load_spec(SPEC.replace("train {", "train {\n  checkpoint worst"))


def test_spec_callbacks_run_in_fit_and_round_trip_through_the_writers(tmp_path):
    from cnnc.frontend.writers import to_dsl, to_yaml

    spec = SPEC.replace("train {", "train {\n  early_stopping patience=1 monitor=loss mode=max\n"
                        "  checkpoint best monitor=loss")
    graph = cnnc.load_spec(spec)
    for text in (to_dsl(graph), to_yaml(graph)):
        assert cnnc.load_spec(text).train == graph.train
    x, y = _data()
    model = cnnc.compile(graph, backend="numpy")
    with pytest.raises(InputError, match=r"`checkpoint best`.*give fit a checkpoint_dir"):
        model.fit(x, y, verbose=0)
    history = model.fit(x, y, verbose=0, checkpoint_dir=tmp_path)
    assert len(history.epochs) == 2  # epoch 2 did not raise the loss: patience 1 ends it
    assert (tmp_path / "best.safetensors").is_file()


def _spec_run(tiny_data, tmp_path, capsys):
    """`cnnc run` of the tiny spec with early stopping and `checkpoint best` that stops after
    epoch 2 of 3; returns the run folder."""
    from training_spec import TINY_SPEC  # tests/train is on sys.path under pytest

    from cnnc.cli import main

    # Maximising the training loss: epoch 1 is the best, patience 1 stops after epoch 2.
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC + "  early_stopping: {monitor: loss, mode: max, patience: 1}\n"
                    "  checkpoint: {name: best, monitor: loss, mode: max}\n")
    out = tmp_path / "run"
    argv = ["run", str(spec), "--data", str(tiny_data), "--out", str(out), "--backend",
            "numpy", "--progress", "off"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "epoch 2/3" in text and "epoch 3/3" not in text
    assert len((out / "metrics.csv").read_text().splitlines()) == 3  # header and 2 epochs
    best, _ = load_arrays(out / "best.safetensors")
    last, _ = load_arrays(out / "weights.safetensors")
    assert any(not np.array_equal(best[k], last[k]) for k in best)
    saved = load_checkpoint(out / CHECKPOINT_NAME)
    assert [c["class"] for c in saved.callbacks["items"]] == ["EarlyStopping", "ModelCheckpoint"]
    assert saved.callbacks["items"][0]["state"]["wait"] == 1
    return out


@pytest.mark.slow(reason="a whole `cnnc run` with its pictures and report: 5-20 s on 2 cores")
def test_cnnc_run_stops_early_and_keeps_the_best_weights(tiny_data, tmp_path, capsys):
    _spec_run(tiny_data, tmp_path, capsys)


@pytest.mark.slow(reason="two whole `cnnc run`s with their pictures: about 30 s on 2 cores")
def test_cnnc_run_resumes_with_the_callbacks_state(tiny_data, tmp_path, capsys):
    from cnnc.cli import main

    out = _spec_run(tiny_data, tmp_path, capsys)
    # Resuming for more epochs restores the wait counter: one more epoch, and it stops again.
    assert main(["run", "--resume", str(out), "--epochs", "5", "--progress", "off"]) == 0
    assert "epoch 3/5" in capsys.readouterr().out
    assert len((out / "metrics.csv").read_text().splitlines()) == 4
