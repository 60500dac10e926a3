"""The train section's checks: one error per bad setting, naming its key path."""

from __future__ import annotations

import pytest

from cnnc.data.catalog import DATASETS as CATALOG
from cnnc.errors import SpecError
from cnnc.ir.train_config import DATASETS, TrainConfig, parse_loss, parse_train_config


def test_the_datasets_a_spec_may_name_are_those_cnnc_knows():
    assert DATASETS == tuple(CATALOG)


@pytest.mark.parametrize("settings,headline", [
    ({"batch_size": 0},
     "train.batch_size: Expected a strictly positive integer. Received batch_size=0."),
    ({"dataset": "fashion"},
     ("train.dataset: Expected one of 'fashion_mnist', 'mnist', or the path of your own data "
      "(./images, data.npz, ...). Received dataset='fashion'. (did you mean 'fashion_mnist'?)")),
    ({"validation_split": 0.1, "validation_size": 10},
     "train.validation_size: give validation_split or validation_size, not both"),
    ({"loss": "mse2"},
     ("train.loss: unknown loss 'mse2'; expected one of sparse_categorical_crossentropy, "
      "categorical_crossentropy, mean_squared_error, mse; did you mean 'mse'?")),
    ({"epoch": 3}, "train.epoch: unknown key 'epoch'; did you mean 'epochs'?"),
    ({"schedule": {"name": "cosine", "warmup": 1}},
     "train.schedule.warmup: unknown key 'warmup'; did you mean 'warmup_epochs'?"),
])
def test_bad_settings_name_their_key_path(settings, headline):
    with pytest.raises(SpecError) as info:
        parse_train_config(settings)
    assert info.value.headline() == headline


def test_settings_not_given_keep_their_defaults():
    config = parse_train_config({"epochs": 3, "loss": "mse"})
    assert config == TrainConfig(epochs=3, loss="mean_squared_error")
    assert parse_loss("MSE") == "mean_squared_error"
