"""Exact resumption with gradient clipping and the weights' moving average on: after an epoch,
after a Ctrl-C mid-epoch (Model.fit) and through `cnnc run --resume` with an adapted
normalization layer, on both backends. The average is an optimizer slot, so checkpoints hold it;
the weights at the end are the average, so they differ from a run without it."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file
from test_fit import _model, _same_weights, _sigint_at
from training_spec import TINY_SPEC

from cnnc.cli import main
from cnnc.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from cnnc.train.loop import TrainingInterrupted

OPTIMIZER = "  optimizer: {name: adam, learning_rate: 0.01}\n"
CLIP_EMA = ("  optimizer: {name: adam, learning_rate: 0.01, global_clipnorm: 0.5, use_ema: true,"
            " ema_momentum: 0.9}\n")
assert OPTIMIZER in TINY_SPEC
SPEC = TINY_SPEC.replace(OPTIMIZER, CLIP_EMA)


def test_the_options_change_the_result(tiny_data):
    plain, both = _model("numpy"), _model("numpy", SPEC)
    plain.fit(data_dir=tiny_data, epochs=1, verbose=0)
    both.fit(data_dir=tiny_data, epochs=1, verbose=0)
    assert not np.array_equal(plain.get_weights()["dense/kernel"],
                              both.get_weights()["dense/kernel"])
    assert "slot/dense/kernel/ema" in both.get_training_state()


def test_resume_after_an_epoch_is_exact(tiny_data, tmp_path, backend):
    straight = _model(backend, SPEC)
    ref = straight.fit(data_dir=tiny_data, verbose=0)
    _model(backend, SPEC).fit(data_dir=tiny_data, epochs=1, verbose=0, checkpoint_dir=tmp_path)
    saved = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert "slot/dense/kernel/ema" in saved.state
    resumed = _model(backend, SPEC)
    history = resumed.fit(data_dir=tiny_data, verbose=0, checkpoint_dir=tmp_path, resume=True)
    _same_weights(resumed, straight)
    assert [r["val_loss"] for r in history.epochs] == [r["val_loss"] for r in ref.epochs]


def test_ctrl_c_mid_epoch_resumes_exactly(tiny_data, tmp_path, backend):
    from cnnc.data import load_dataset
    from cnnc.train.fit import input_shape, prepare_data

    straight = _model(backend, SPEC)
    straight.fit(data_dir=tiny_data, verbose=0)
    model = _model(backend, SPEC)
    data = prepare_data(model.train_config, load_dataset("fashion_mnist", tiny_data),
                        input_shape(model))
    ckpt = tmp_path / CHECKPOINT_NAME
    trainer = _sigint_at(epoch=1, batch=2)(model, model.train_config, data.train,
                                           data.validation, classes=10, checkpoint_path=ckpt)
    with pytest.raises(TrainingInterrupted):
        trainer.run()
    resumed = _model(backend, SPEC)
    resumed.fit(data_dir=tiny_data, verbose=0, checkpoint_dir=tmp_path, resume=True)
    _same_weights(resumed, straight)


def test_cnnc_run_resume_with_adapted_normalization_is_exact(tiny_data, tmp_path, capsys,
                                                             backend):
    spec = tmp_path / "prep.yaml"
    spec.write_text(SPEC.replace("layers:\n", "layers:\n  - normalization\n"))

    def run(*argv):
        return main(["run", *map(str, argv), "--progress", "off"])

    assert run(spec, "--data", tiny_data, "--out", tmp_path / "straight", "--backend",
               backend) == 0
    assert run(spec, "--data", tiny_data, "--out", tmp_path / "part", "--epochs", "1",
               "--backend", backend) == 0
    assert run("--resume", tmp_path / "part", "--epochs", "3") == 0
    out = capsys.readouterr().out
    assert out.count("adapted   normalization") == 2  # the two fresh runs, not the resumed one
    a = load_file(str(tmp_path / "straight" / "weights.safetensors"))
    b = load_file(str(tmp_path / "part" / "weights.safetensors"))
    assert a.keys() == b.keys() and "normalization/mean" in a
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
