"""SIGKILL during `cnnc run`, at planted moments and at random ones: no file is ever torn, and
`--resume` always ends with the weights of an uninterrupted run, bit for bit.

The processes are real (forked by bounded.py's server, which saves the second of start-up each
would cost) and die by SIGKILL, which nothing can catch: the state on disk is whatever the
atomic writes left. Planted kills (planted_kills.py) hit the checkpoint write itself: half of its
bytes written, complete but not renamed, renamed but the folder not yet fsync'd.
"""

from __future__ import annotations

import json
import random
import signal

import numpy as np
import pytest
from safetensors.numpy import load_file
from training_spec import AUGMENTED_SPEC, TINY_SPEC

from cnnc.data.synthetic import write_synthetic_dataset
from cnnc.train.checkpoint import load_checkpoint

MEMORY_MB = 800
SECONDS = 120.0


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kills")
    spec = folder / "tiny.yaml"
    spec.write_text(TINY_SPEC)  # 3 epochs of 8 steps, dropout, batch norm, Adam, augmentation
    data = write_synthetic_dataset(folder / "data", train=160, test=48, shape=(12, 12))
    return spec, data


def _run(bounded, setup, out, **options):
    spec, data = setup
    return bounded.run(["run", spec, "--data", data, "--backend", "numpy", "--progress", "off",
                        "--out", out], memory_mb=MEMORY_MB, timeout_s=SECONDS, **options)


def _resume(bounded, out):
    result = bounded.run(["run", "--resume", out, "--progress", "off"], memory_mb=MEMORY_MB,
                         timeout_s=SECONDS)
    assert result.rc == 0, result.describe()
    return result


@pytest.fixture(scope="module")
def straight(bounded, setup, tmp_path_factory):
    """The weights of the run never interrupted."""
    out = tmp_path_factory.mktemp("straight") / "run"
    result = _run(bounded, setup, out)
    assert result.rc == 0, result.describe()
    return load_file(str(out / "weights.safetensors"))


def assert_nothing_torn(folder):
    """Every file under its real name is whole: JSON parses, the checkpoint loads."""
    for path in folder.iterdir():
        if path.name.startswith("."):
            continue  # a temporary file: never read, removed by --resume
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.name == "checkpoint.safetensors":
            load_checkpoint(path)
        elif path.name == "weights.safetensors":
            load_file(str(path))


def assert_same_weights(folder, straight):
    got = load_file(str(folder / "weights.safetensors"))
    assert got.keys() == straight.keys()
    for name in got:
        np.testing.assert_array_equal(got[name], straight[name], err_msg=name)


def test_killed_before_the_first_checkpoint(bounded, setup, straight, tmp_path):
    out = tmp_path / "run"
    killed = _run(bounded, setup, out, plant=("before-first-checkpoint", 0))
    assert killed.signal == signal.SIGKILL, killed.describe()
    assert {p.name for p in out.iterdir()} == {"run.json", "spec.yaml"}
    resumed = _resume(bounded, out)
    assert "stopped before its first checkpoint: starting it over" in resumed.stdout
    assert_same_weights(out, straight)


@pytest.mark.parametrize("mode, k", [("mid-write", 2), ("before-rename", 2),
                                     ("after-rename", 1)])
def test_killed_during_a_checkpoint_write(bounded, setup, straight, tmp_path, mode, k):
    out = tmp_path / "run"
    killed = _run(bounded, setup, out, plant=(mode, k))
    assert killed.signal == signal.SIGKILL, killed.describe()
    assert_nothing_torn(out)
    temporaries = [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert len(temporaries) == (0 if mode == "after-rename" else 1)
    if mode != "after-rename":  # the previous checkpoint stands
        assert load_checkpoint(out / "checkpoint.safetensors").epoch == k - 1
    resumed = _resume(bounded, out)
    if temporaries:
        assert "cleaned   1 temporary file" in resumed.stdout
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert_same_weights(out, straight)


def _random_kill_trial(bounded, setup, straight, folder, delay):
    out = folder / "run"
    killed = _run(bounded, setup, out, kill_after_s=delay)
    if not (out / "run.json").exists():  # killed before the run recorded itself
        assert killed.signal == signal.SIGKILL
        left = {p.name for p in out.iterdir()} if out.exists() else set()
        assert left <= {"spec.yaml"} or all(n.endswith(".tmp") for n in left - {"spec.yaml"})
        out = folder / "again"  # nothing to resume: the run starts again
        again = _run(bounded, setup, out)
        assert again.rc == 0, again.describe()
    else:
        assert_nothing_torn(out)
        _resume(bounded, out)
    assert_same_weights(out, straight)


def test_killed_at_a_random_moment(bounded, setup, straight, tmp_path):
    _random_kill_trial(bounded, setup, straight, tmp_path, random.Random(10).uniform(0.2, 1.0))


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(15))
def test_killed_at_many_random_moments(bounded, setup, straight, tmp_path, trial):
    delay = random.Random(trial).uniform(0.0, 2.0)
    _random_kill_trial(bounded, setup, straight, tmp_path, delay)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["mid-write", "before-rename", "after-rename"])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_killed_during_every_checkpoint_write(bounded, setup, straight, tmp_path, mode, k):
    out = tmp_path / "run"
    killed = _run(bounded, setup, out, plant=(mode, k))
    assert killed.signal == signal.SIGKILL or (k == 4 and killed.rc == 0), killed.describe()
    assert_nothing_torn(out)
    _resume(bounded, out)
    assert_same_weights(out, straight)


# Issue 21: fashion-best's recipe (AdamW, one-cycle with momentum cycling, label smoothing,
# crop, flip and erasing) with every other augmentation, mixup and cutmix's soft targets and
# flip test-time augmentation on, killed between two epochs' checkpoints and resumed.
RECIPE_SPEC = AUGMENTED_SPEC.replace(
    "optimizer: {name: adam, learning_rate: 0.01}",
    "optimizer: {name: adamw, learning_rate: 0.01, weight_decay: 0.05}").replace(
    "schedule: {name: cosine, warmup_epochs: 1}",
    "schedule: {name: one_cycle, max_lr: 0.01, pct_start: 0.25}") + "  tta: flip\n"


@pytest.mark.slow  # three real runs (56 s at load 7): test_killed_during_a_checkpoint_write and
# test_augmentation's in-process resume with every augmentation cover its parts by default
def test_killed_mid_write_with_the_whole_recipe_resumes_bit_identically(bounded, setup,
                                                                         tmp_path):
    assert "adamw" in RECIPE_SPEC and "one_cycle" in RECIPE_SPEC and "erase" in RECIPE_SPEC
    spec = tmp_path / "recipe.yaml"
    spec.write_text(RECIPE_SPEC)
    recipe = (spec, setup[1])
    whole = _run(bounded, recipe, tmp_path / "whole")
    assert whole.rc == 0, whole.describe()
    out = tmp_path / "run"
    killed = _run(bounded, recipe, out, plant=("mid-write", 2))
    assert killed.signal == signal.SIGKILL, killed.describe()
    assert load_checkpoint(out / "checkpoint.safetensors").epoch == 1
    _resume(bounded, out)
    assert_same_weights(out, load_file(str(tmp_path / "whole" / "weights.safetensors")))
    # The validation figures (under test-time augmentation) are the uninterrupted run's too.
    assert (json.loads((out / "metrics.json").read_text())[-1]["val_accuracy"]
            == json.loads((tmp_path / "whole" / "metrics.json").read_text())[-1]["val_accuracy"])
