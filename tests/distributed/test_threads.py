"""Data-parallel training with ranks as threads (no MPI needed): the same run whatever N is.

The equivalence target: per-step losses within 1e-5 relative and final weights within 1e-4
relative (all weights as one vector, L2 norm; 1e-3 for each tensor alone, since Adam turns the
rounding of a near-zero gradient into a whole step for a small tensor such as batch norm's
beta: one device with 1 or 2 pocl threads differs that much) of the single-device run, on a
spec with batch norm,
dropout, augmentation, Adam and a schedule, including short last batches and a batch with fewer
examples than ranks. The longer, 100-step version on real ranks is in test_mpi.py (-m slow).
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from cnnc.distributed.comm import DistributedError
from cnnc.distributed.launch import run_ranked
from cnnc.distributed.run import DistributedRun
from cnnc.distributed.step import DataParallelStep
from cnnc.errors import DataError, DeviceError
from cnnc.testing.equivalence import SPEC, train_recorded
from cnnc.testing.threadcomm import ThreadGroup
from cnnc.train.session import RunOptions, run_spec

LOSS_RTOL = 1e-5
WEIGHT_RTOL = 1e-4  # all weights together
TENSOR_RTOL = 1e-3  # each tensor alone


def assert_same_run(got, want, what: str = ""):
    losses, weights = got
    ref_losses, ref_weights = want
    assert len(losses) == len(ref_losses)
    np.testing.assert_allclose(losses, ref_losses, rtol=LOSS_RTOL, err_msg=what)
    diff = np.sqrt(sum(np.sum((weights[k] - w) ** 2) for k, w in ref_weights.items()))
    norm = np.sqrt(sum(np.sum(w.astype(np.float64) ** 2) for w in ref_weights.values()))
    assert diff / norm <= WEIGHT_RTOL, f"{what}: all weights {diff / norm:.2e}"
    for k, w in ref_weights.items():
        rel = np.linalg.norm(weights[k] - w) / max(np.linalg.norm(w), 1e-12)
        assert rel <= TENSOR_RTOL, f"{what}: {k}: {rel:.2e}"


@pytest.mark.parametrize("examples", [90, 33], ids=["short-last-batch", "batch-of-one"])
def test_one_two_and_three_ranks_make_the_same_run(examples):
    want = train_recorded(steps=10, examples=examples)
    for n in (1, 2, 3):
        ranks = ThreadGroup(n).run(lambda comm: train_recorded(comm, steps=10,
                                                               examples=examples))
        assert_same_run(ranks[0], want)
        for losses, weights in ranks[1:]:  # the replicas never drift apart
            np.testing.assert_array_equal(losses, ranks[0][0])
            assert all(np.array_equal(weights[k], ranks[0][1][k]) for k in weights)


# Every augmentation, mixup/cutmix (pairs across the whole batch, so across ranks) and label
# smoothing (cnnc/train/augmentation.py).
AUGMENTED_SPEC = SPEC.replace(
    "augment: {shift: 1, flip: true}",
    "augment: {crop: 2, shift: 1, flip: true, vflip: true, rotate: 10, translate: 0.1, "
    "erase: 0.5, cutout: 4, mixup: 0.4, cutmix: 1.0}\n  label_smoothing: 0.1")


def test_ranks_make_the_same_run_with_every_augmentation_and_mixing():
    assert AUGMENTED_SPEC != SPEC
    want = train_recorded(steps=8, examples=45, spec=AUGMENTED_SPEC)
    for n in (2, 3):
        ranks = ThreadGroup(n).run(lambda comm: train_recorded(comm, steps=8, examples=45,
                                                               spec=AUGMENTED_SPEC))
        assert_same_run(ranks[0], want)


def _options(spec, data, out, **changes):
    opts = {"spec": str(spec), "data": str(data), "out": str(out), "backend": "numpy",
            "bars": False, "epochs": 2}
    opts.update(changes)
    return RunOptions(**opts)


def _ranked(n, make_opts):
    """`cnnc run` on n thread-ranks; (exit statuses, what each rank printed)."""
    outs = [io.StringIO() for _ in range(n)]
    statuses = ThreadGroup(n).run(lambda comm: run_ranked(make_opts(), outs[comm.rank], comm))
    return statuses, [o.getvalue() for o in outs]


def _history(folder):
    return json.loads((folder / "metrics.json").read_text())


def test_cnnc_run_on_two_ranks_matches_one_device(run_spec_file, small_data, tmp_path):
    assert run_spec(_options(run_spec_file, small_data, tmp_path / "one")) == 0
    statuses, printed = _ranked(2, lambda: _options(run_spec_file, small_data, tmp_path / "two"))
    assert statuses == [0, 0]
    assert "ranks     2 data-parallel ranks, the global batch of 16 split 8 per rank" in printed[0]
    assert "epoch 2/2" in printed[0] and printed[1] == ""  # rank 0 alone speaks ...
    assert not (tmp_path / "two-1").exists()  # ... and writes
    one, two = _history(tmp_path / "one"), _history(tmp_path / "two")
    for a, b in zip(one, two):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "step"):
            assert b[key] == pytest.approx(a[key], rel=1e-5), key
    test_one = json.loads((tmp_path / "one" / "test_metrics.json").read_text())
    test_two = json.loads((tmp_path / "two" / "test_metrics.json").read_text())
    assert abs(test_one["accuracy"] - test_two["accuracy"]) <= 0.001
    assert test_two["count"] == 40 and json.loads(
        (tmp_path / "two" / "run.json").read_text())["ranks"] == 2


def test_a_two_rank_checkpoint_resumes_on_one_device(run_spec_file, small_data, tmp_path):
    statuses, _ = _ranked(2, lambda: _options(run_spec_file, small_data, tmp_path / "cut",
                                              epochs=1))
    assert statuses == [0, 0]
    assert run_spec(RunOptions(spec=None, resume=str(tmp_path / "cut"), epochs=3,
                               bars=False)) == 0
    assert run_spec(_options(run_spec_file, small_data, tmp_path / "straight", epochs=3)) == 0
    for a, b in zip(_history(tmp_path / "straight"), _history(tmp_path / "cut")):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["val_accuracy"] == pytest.approx(a["val_accuracy"], abs=1e-9)


def test_a_failure_while_setting_up_is_reported_once_naming_the_rank(
        run_spec_file, small_data, tmp_path, monkeypatch):
    real = DistributedRun.data

    def data(self):
        if self.comm.rank == 1:
            raise DataError("the dataset files are not on this node")
        return real(self)

    monkeypatch.setattr(DistributedRun, "data", data)
    with pytest.raises(DistributedError, match="^rank 1 of 2: the dataset files are not on "):
        _ranked(2, lambda: _options(run_spec_file, small_data, tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # nothing started


def test_a_failure_on_one_rank_ends_every_rank_naming_it(run_spec_file, small_data, tmp_path,
                                                        monkeypatch, capsys):
    real = DataParallelStep.run

    def run(self, *args, **kwargs):
        if self.comm.rank == 1 and self.model.step == 12:
            raise DeviceError("OpenCL error while running node 'conv2d'")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DataParallelStep, "run", run)
    with pytest.raises(BaseException):  # noqa: B017 (threads cannot be aborted: they raise)
        _ranked(2, lambda: _options(run_spec_file, small_data, tmp_path / "run"))
    err = capsys.readouterr().err
    assert "cnnc: rank 1 of 2 failed: OpenCL error while running node 'conv2d'" in err
    assert "stopping all 2 ranks; the last good checkpoint is" in err
    # The checkpoint of epoch 1 (9 steps) is what is left.
    from cnnc.train.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "run" / "checkpoint.safetensors").step == 9


NO_BN_SPEC = """\
input 12x12x1
flatten
dense 16 relu
dense 10 softmax
train { epochs 1  batch_size 16  optimizer sgd  seed 3 }
"""


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflow, on purpose
def test_a_loss_that_is_not_finite_on_one_rank_stops_every_rank_naming_it():
    import cnnc
    from cnnc.data.split import epoch_order
    from cnnc.distributed.trainer import DistributedTrainer
    from cnnc.testing.equivalence import training_data
    from cnnc.train.loop import TrainingDiverged

    data = training_data(48)
    data.x[epoch_order(48, 3, 0)[12]] = 3e38  # overflows, in rank 1's half of batch 1

    def train(comm):
        model = cnnc.compile(NO_BN_SPEC, backend="numpy")
        DistributedTrainer(model, model.train_config, data, classes=10, comm=comm).run()

    with pytest.raises(TrainingDiverged, match=r"at step 1 .*on rank 1 of 2\)"):
        ThreadGroup(2).run(train)
