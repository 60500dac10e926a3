"""From dataset files to training, validation and test arrays, as `cnnc run` prepares them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cnnc
from cnnc.data import load_dataset
from cnnc.data.catalog import FASHION_MNIST
from cnnc.data.synthetic import write_synthetic_dataset
from cnnc.ir.train_config import parse_train_config
from cnnc.train.fit import prepare_data

REAL = Path(FASHION_MNIST.system_dirs[0])  # where Debian's package puts it


def test_validation_is_the_tail_and_limit_cuts_training_only(tmp_path):
    data = load_dataset("fashion_mnist", write_synthetic_dataset(tmp_path, train=100, test=10,
                                                                 shape=(4, 4)))
    config = parse_train_config({"validation_size": 30})
    prepared = prepare_data(config, data, (4, 4, 1), limit=50)
    assert len(prepared.train) == 50 and len(prepared.validation) == 30
    np.testing.assert_array_equal(prepared.validation.labels, data.train.labels[70:])
    np.testing.assert_array_equal(prepared.train.labels, data.train.labels[:50])
    np.testing.assert_allclose(prepared.validation.x[..., 0], data.train.images[70:] / 255.0,
                               rtol=1e-6)
    assert prepared.train.x.dtype == np.float32 and len(prepared.test) == 10
    fraction = prepare_data(parse_train_config({"validation_split": 0.25}), data, (4, 4, 1))
    assert len(fraction.train) == 75 and len(fraction.validation) == 25
    none = prepare_data(parse_train_config({}), data, (4, 4, 1))
    assert none.validation is None and len(none.train) == 100


@pytest.mark.skipif(not REAL.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_seed_recipe_holds_out_the_last_5000_real_images():
    graph = cnnc.load_spec("specs/fashion.yaml")
    data = load_dataset("fashion_mnist")
    prepared = prepare_data(graph.train, data, (28, 28, 1))
    assert (len(prepared.train), len(prepared.validation), len(prepared.test)) == \
        (55000, 5000, 10000)
    np.testing.assert_array_equal(prepared.validation.labels, data.train.labels[55000:])
    assert prepared.train.x.min() == 0.0 and prepared.train.x.max() == 1.0
