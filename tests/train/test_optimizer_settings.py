"""Optimizer settings through the compiled model on both backends: decoupled weight decay
reaches kernels only (biases and batch/layer norm parameters are left alone unless
decay_bias_and_norm), in the queued training step the training loop uses; and training with
AdamW, Nesterov SGD, an L2 kernel regularizer and the one-cycle schedule resumes
bit-identically."""

from __future__ import annotations

import numpy as np
import pytest
from training_spec import TINY_SPEC  # tests/train is on sys.path under pytest

import cnnc
from cnnc.train.checkpoint import CHECKPOINT_NAME, load_checkpoint

SPEC = """\
network: decay
input: [6, 6, 2]
layers:
  - {conv2d: [4, 3], padding: same}
  - batchnorm
  - {activation: relu}
  - flatten
  - layer_norm
  - {dense: 3, activation: softmax}
"""
UNDECAYED = ("conv2d/bias", "batch_normalization/gamma", "batch_normalization/beta",
             "layer_normalization/gamma", "layer_normalization/beta", "dense/bias")
DECAYED = ("conv2d/kernel", "dense/kernel")
LR, WD = 0.1, 0.5


def _one_step(backend: str, **decay) -> tuple[dict, dict]:
    """Weights before and after one queued SGD step (same start, same batch)."""
    optimizer = {"name": "sgd", "learning_rate": LR, **decay}
    model = cnnc.compile(SPEC, backend=backend, optimizer=optimizer, seed=3)
    rng = np.random.default_rng(0)
    start = {k: (v + rng.normal(0, 0.5, v.shape)).astype(np.float32)
             for k, v in model.get_weights().items()}
    start = {k: (np.abs(v) + 0.5 if k.endswith("variance") else v) for k, v in start.items()}
    model.set_weights(start)
    x = rng.random((4, 6, 6, 2), dtype=np.float32)
    y = np.array([0, 1, 2, 1], np.int32)
    model.queue_train_step(x, y)
    (figures,) = model.read_queued_steps()
    assert np.isfinite(figures.loss)
    return start, model.get_weights()


def test_weight_decay_reaches_kernels_only(backend):
    start, plain = _one_step(backend)
    _, decayed = _one_step(backend, weight_decay=WD)
    assert set(UNDECAYED + DECAYED) <= set(start)
    for name in UNDECAYED:  # the same update, bit for bit
        np.testing.assert_array_equal(decayed[name], plain[name], err_msg=name)
    for name in DECAYED:  # p(1 - lr wd) - lr g  versus  p - lr g
        np.testing.assert_allclose(decayed[name] - plain[name], -LR * WD * start[name],
                                   rtol=1e-4, atol=1e-6, err_msg=name)
    for name in ("batch_normalization/moving_mean", "batch_normalization/moving_variance"):
        np.testing.assert_array_equal(decayed[name], plain[name], err_msg=name)


def test_decay_bias_and_norm_decays_every_parameter(backend):
    start, plain = _one_step(backend)
    _, decayed = _one_step(backend, weight_decay=WD, decay_bias_and_norm=True)
    for name in UNDECAYED + DECAYED:
        np.testing.assert_allclose(decayed[name] - plain[name], -LR * WD * start[name],
                                   rtol=1e-4, atol=1e-6, err_msg=name)
    # moving statistics are not trained: no decay however it is set
    for name in ("batch_normalization/moving_mean", "batch_normalization/moving_variance"):
        np.testing.assert_array_equal(decayed[name], plain[name], err_msg=name)


def test_the_training_graph_says_which_updates_decay():
    model = cnnc.compile(SPEC, backend="numpy", optimizer={"name": "adamw", "weight_decay": 0.05})
    graph = model.training_graph()
    decay = {n.inputs[0]: n.attrs["weight_decay"] for n in graph.nodes if n.op == "adamw_update"}
    assert decay == {**dict.fromkeys(DECAYED, 0.05), **dict.fromkeys(UNDECAYED, 0.0)}


RECIPES = {
    "adamw_one_cycle": ("optimizer: {name: adam, learning_rate: 0.01}",
                        "optimizer: {name: adamw, learning_rate: 0.01, weight_decay: 0.05}",
                        "schedule: {name: cosine, warmup_epochs: 1}",
                        "schedule: {name: one_cycle, max_lr: 0.02, three_phase: true}"),
    "sgd_nesterov_decay": ("optimizer: {name: adam, learning_rate: 0.01}",
                           ("optimizer: {name: sgd, learning_rate: 0.05, momentum: 0.9, "
                            "nesterov: true, weight_decay: 0.01}"),
                           "schedule: {name: cosine, warmup_epochs: 1}",
                           "schedule: {name: one_cycle, pct_start: 0.4}"),
}


def _recipe(name: str) -> str:
    """TINY_SPEC with the recipe's optimizer and schedule, and an L2 kernel regularizer on its
    convolution (its penalty joins the loss, its gradient the update)."""
    old_opt, new_opt, old_sched, new_sched = RECIPES[name]
    conv = "use_bias: false}"
    assert old_opt in TINY_SPEC and old_sched in TINY_SPEC and conv in TINY_SPEC
    return (TINY_SPEC.replace(old_opt, new_opt).replace(old_sched, new_sched)
            .replace(conv, "use_bias: false, kernel_regularizer: [l2, 0.001]}"))


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_ctrl_c_mid_epoch_resumes_bit_identically(recipe, tiny_data, tmp_path, backend):
    """Killed mid-epoch and resumed with the same settings (a changed `epochs` would change
    the one-cycle schedule itself): slots, weights and the schedule's position all resume."""
    from test_fit import _sigint_at

    from cnnc.data import load_dataset
    from cnnc.train.fit import input_shape, prepare_data
    from cnnc.train.loop import TrainingInterrupted

    spec = _recipe(recipe)
    straight = cnnc.compile(spec, backend=backend)
    straight.fit(data_dir=tiny_data, verbose=0)
    model = cnnc.compile(spec, backend=backend)
    data = prepare_data(model.train_config, load_dataset("fashion_mnist", tiny_data),
                        input_shape(model))
    ckpt = tmp_path / CHECKPOINT_NAME
    trainer = _sigint_at(epoch=1, batch=2)(model, model.train_config, data.train,
                                           data.validation, classes=10, checkpoint_path=ckpt)
    with pytest.raises(TrainingInterrupted):
        trainer.run()
    assert load_checkpoint(ckpt).step == 8 + 3
    resumed = cnnc.compile(spec, backend=backend)
    resumed.fit(data_dir=tiny_data, verbose=0, checkpoint_dir=tmp_path, resume=True)
    assert resumed.step == straight.step
    a, b = resumed.get_training_state(), straight.get_training_state()
    assert a.keys() == b.keys() and any(k.startswith("slot/") for k in a)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
