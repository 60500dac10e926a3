"""Training-batch augmentation (cnnc/train/augmentation.py): each transform against hand-worked
values or an independent reference (PyTorch's grid_sample and reflect padding where torch is
installed), determinism under the seed, training batches only, and exact resume."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cnnc
from cnnc.errors import SpecError
from cnnc.ir.train_config import parse_train_config
from cnnc.train import augmentation as aug
from cnnc.train.loop import LabelledData, Trainer


def _grid(n: int, h: int, w: int, c: int = 1) -> np.ndarray:
    """Images whose every pixel differs: value = 1 + index."""
    return (1 + np.arange(n * h * w * c, dtype=np.float32)).reshape(n, h, w, c)


# ---------------------------------------------------------------- random crop


def test_crop_with_zero_padding_by_hand():
    x = _grid(2, 3, 3)  # image 0 is [[1 2 3] [4 5 6] [7 8 9]]
    out = aug.random_crop(x, np.array([[0, 0], [2, 1]]), pad=1)
    # Offset (0, 0) of the padded image: the content moves down and right by one.
    np.testing.assert_array_equal(out[0, ..., 0], [[0, 0, 0], [0, 1, 2], [0, 4, 5]])
    # Offset (2, 1): up by one, columns as they were.
    np.testing.assert_array_equal(out[1, ..., 0], [[13, 14, 15], [16, 17, 18], [0, 0, 0]])


def test_crop_with_reflect_padding_by_hand():
    x = _grid(1, 3, 3)
    out = aug.random_crop(x, np.array([[0, 0]]), pad=1, mode="reflect")
    # Reflection without repeating the edge (torchvision's 'reflect'): row -1 is row 1.
    np.testing.assert_array_equal(out[0, ..., 0], [[5, 4, 5], [2, 1, 2], [5, 4, 5]])


def test_crop_matches_torch_reflect_padding():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((4, 6, 5, 3), dtype=np.float32)
    offsets = np.array([[0, 0], [4, 4], [1, 3], [2, 2]])
    out = aug.random_crop(x, offsets, pad=2, mode="reflect")
    padded = torch.nn.functional.pad(torch.tensor(x).permute(0, 3, 1, 2), (2, 2, 2, 2),
                                     mode="reflect").permute(0, 2, 3, 1).numpy()
    for i, (r, c) in enumerate(offsets):
        np.testing.assert_array_equal(out[i], padded[i, r:r + 6, c:c + 5])


def test_crop_offsets_cover_the_padding_uniformly():
    config = parse_train_config({"augment": {"crop": 2}, "seed": 3})
    plan = aug.epoch_plan(config, 5000, (8, 8, 1), 0)
    assert plan.crop.min() == 0 and plan.crop.max() == 4
    counts = np.bincount(plan.crop.ravel(), minlength=5) / plan.crop.size
    np.testing.assert_allclose(counts, 0.2, atol=0.02)


# ---------------------------------------------------------------- rotation and translation


def test_rotation_by_90_degrees_is_rot90_counter_clockwise():
    x = _grid(1, 5, 5, 2)
    out = aug.affine(x, np.array([90.0]), np.zeros((1, 2)))
    np.testing.assert_allclose(out[0], np.rot90(x[0]), atol=1e-4)


def test_integer_translation_moves_the_content_with_zero_fill():
    x = _grid(1, 3, 4)
    out = aug.affine(x, np.array([0.0]), np.array([[1.0, -1.0]]))  # right 1, up 1
    want = np.zeros((3, 4))
    want[:2, 1:] = x[0, 1:, :3, 0]
    np.testing.assert_array_equal(out[0, ..., 0], want)


def test_half_pixel_translation_averages_neighbours():
    x = _grid(1, 1, 3)  # [1 2 3]
    out = aug.affine(x, np.array([0.0]), np.array([[0.5, 0.0]]))
    # Pixel j reads x at j - 0.5: (0 + 1)/2, (1 + 2)/2, (2 + 3)/2; the left edge reads zero.
    np.testing.assert_allclose(out[0, 0, :, 0], [0.5, 1.5, 2.5])


def test_affine_matches_torch_grid_sample():
    """Bilinear sampling and zero fill against PyTorch's affine_grid + grid_sample
    (align_corners=False: pixel centres, the image centre at ((W-1)/2, (H-1)/2))."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    n, h, w = 5, 7, 9
    x = rng.random((n, h, w, 2), dtype=np.float32)
    degrees = rng.uniform(-30, 30, n)
    shifts = rng.uniform(-2, 2, (n, 2))
    out = aug.affine(x, degrees, shifts)
    # The inverse map in normalised coordinates u = (x - cx) * 2 / W, v = (y - cy) * 2 / H.
    t = np.radians(degrees)
    theta = np.zeros((n, 2, 3))
    theta[:, 0, 0] = np.cos(t)
    theta[:, 0, 1] = -np.sin(t) * h / w
    theta[:, 1, 0] = np.sin(t) * w / h
    theta[:, 1, 1] = np.cos(t)
    # p_in = R^-1 (p_out - shift): the shift's part, in normalised units.
    dx, dy = shifts[:, 0] * 2 / w, shifts[:, 1] * 2 / h
    theta[:, 0, 2] = -(theta[:, 0, 0] * dx + theta[:, 0, 1] * dy)
    theta[:, 1, 2] = -(theta[:, 1, 0] * dx + theta[:, 1, 1] * dy)
    grid = torch.nn.functional.affine_grid(torch.tensor(theta), [n, 2, h, w],
                                           align_corners=False)
    ref = torch.nn.functional.grid_sample(
        torch.tensor(x, dtype=torch.float64).permute(0, 3, 1, 2), grid, mode="bilinear",
        padding_mode="zeros", align_corners=False).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-5)


# ---------------------------------------------------------------- erasing and cutout


def _uniform_for(area_fraction: float, aspect: float) -> tuple[float, float]:
    lo, hi = aug.ERASE_SCALE
    a = (area_fraction - lo) / (hi - lo)
    r = (math.log(aspect) - math.log(aug.ERASE_RATIO[0])) / (
        math.log(aug.ERASE_RATIO[1]) - math.log(aug.ERASE_RATIO[0]))
    return a, r


def test_erasing_box_by_hand():
    """10x10 images. Image 0: its first attempt (33% of the area, aspect 3.3: 10.4 x 3.2 ->
    10 x 3 rows) is too tall and is skipped; the second (16%, aspect 1: 4 x 4) is kept at
    top-left (floor(0.5 * 7), floor(0.99 * 7)) = (3, 6). Image 1 is not erased (p missed).
    Image 2: no attempt fits, so nothing is erased."""
    u = np.full((3, aug.ERASE_ATTEMPTS, 4), 0.5)
    u[0, 0, :2] = _uniform_for(0.33, 3.3)
    u[0, 1, :2] = _uniform_for(0.16, 1.0)
    u[0, 1, 2:] = (0.5, 0.99)
    u[2, :, :2] = _uniform_for(0.33, 3.3)
    boxes = aug.erasing_boxes(np.array([True, False, True]), u, 10, 10)
    np.testing.assert_array_equal(boxes, [[3, 6, 7, 10], [0, 0, 0, 0], [0, 0, 0, 0]])
    x = np.ones((3, 10, 10, 2), np.float32)
    out = aug.erase_boxes(x, boxes)
    assert (out[0, 3:7, 6:] == 0).all() and out[0].sum() == 2 * (100 - 16)
    assert (out[1:] == 1).all()


def test_erasing_follows_randomerasing_statistics():
    """Over many images: erased with probability p, area within 2-33% of the image (give or
    take the rounding of the sides), aspect ratio within 0.3-3.3 likewise."""
    config = parse_train_config({"augment": {"erase": 0.5}, "seed": 1})
    boxes = aug.epoch_plan(config, 4000, (32, 32, 3), 0).erase
    bh, bw = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    erased = bh > 0
    assert 0.45 < erased.mean() < 0.55
    area = bh[erased] * bw[erased] / 1024
    assert area.min() >= 0.01 and area.max() <= 0.37
    assert (boxes[erased, 2] <= 32).all() and (boxes[erased, 3] <= 32).all()
    assert (boxes[erased, :2] >= 0).all()


def test_cutout_squares_clip_at_the_border():
    centre = np.array([[0.0, 0.0], [0.5, 0.5], [0.99, 0.2]])  # pixels (0,0), (4,4), (7,1) of 8x8
    boxes = aug.cutout_boxes(centre, 4, 8, 8)
    np.testing.assert_array_equal(boxes, [[0, 0, 2, 2], [2, 2, 6, 6], [5, 0, 8, 3]])


# ---------------------------------------------------------------- mixup and cutmix


def test_mixup_of_images_and_targets_by_hand():
    x = np.stack([np.full((2, 2, 1), 1.0), np.full((2, 2, 1), 10.0),
                  np.full((2, 2, 1), 100.0)]).astype(np.float32)
    y = np.eye(3, dtype=np.float32)
    lam = np.array([0.25, 0.5, 0.9])
    mixed, soft = aug.mix_batch(x, y, lam, np.zeros((3, 4), int), np.zeros(3, bool))
    # Example i mixes with example 2 - i.
    np.testing.assert_allclose(mixed[:, 0, 0, 0], [0.25 + 75, 10, 90 + 0.1])
    np.testing.assert_allclose(soft, [[0.25, 0, 0.75], [0, 1, 0], [0.1, 0, 0.9]], atol=1e-6)


def test_cutmix_box_and_its_lambda_by_hand():
    """8x8, lam 0.75: sides int(8 * 0.5) = 4 around the centre pixel (4, 4): rows and columns
    2..5, 16 of 64 pixels, so the target keeps 0.75 of the example's own class; around (0, 0)
    the box is clipped to 2x2 and keeps 1 - 4/64."""
    boxes = aug.cutmix_boxes(np.array([0.75, 0.75]), np.array([[0.5, 0.5], [0.0, 0.0]]), 8, 8)
    np.testing.assert_array_equal(boxes, [[2, 2, 6, 6], [0, 0, 2, 2]])
    x = np.stack([np.zeros((8, 8, 1)), np.ones((8, 8, 1))]).astype(np.float32)
    y = np.eye(2, dtype=np.float32)
    mixed, soft = aug.mix_batch(x, y, np.array([0.75, 0.75]), boxes, np.ones(2, bool))
    assert mixed[0, 2:6, 2:6].min() == 1 and mixed[0].sum() == 16
    assert mixed[1, :2, :2].max() == 0 and mixed[1].sum() == 64 - 4
    np.testing.assert_allclose(soft, [[0.75, 0.25], [1 / 16, 15 / 16]])


def test_mixing_draws_beta_lambdas_and_picks_one_method_per_example():
    config = parse_train_config({"augment": {"mixup": 0.4, "cutmix": 1.0}, "seed": 2})
    plan = aug.epoch_plan(config, 6000, (16, 16, 3), 0)
    assert 0.45 < plan.mix_cut.mean() < 0.55
    lam_mixup = plan.mix_lambda[~plan.mix_cut]
    # Beta(0.4, 0.4): mean 1/2, variance 1/(4 * 1.8) = 0.139.
    assert abs(lam_mixup.mean() - 0.5) < 0.02 and abs(lam_mixup.var() - 1 / 7.2) < 0.01
    assert (plan.mix_box[~plan.mix_cut] == 0).all()
    lam_cut = plan.mix_lambda[plan.mix_cut]
    assert abs(lam_cut.mean() - 0.5) < 0.02 and abs(lam_cut.var() - 1 / 12) < 0.01  # uniform


# ---------------------------------------------------------------- the plan and the loop

ALL = {"crop": 2, "crop_padding": "reflect", "shift": 1, "flip": True, "vflip": True,
       "rotate": 15, "translate": 0.1, "erase": 0.5, "cutout": 3, "mixup": 0.2, "cutmix": 1.0}


def test_the_plan_is_a_function_of_seed_and_epoch():
    config = parse_train_config({"augment": ALL, "seed": 7})
    x = np.random.default_rng(0).random((20, 12, 12, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(20) % 10]

    def run(cfg, epoch):
        plan = aug.epoch_plan(cfg, 20, (12, 12, 1), epoch)
        return plan.mix(plan.batch(x[4:12], 4, 12), y[4:12], 4, 12)

    a, b = run(config, 1), run(config, 1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], run(config, 2)[0])
    assert not np.array_equal(a[0], run(config.replace(seed=8), 1)[0])


def test_each_transform_keeps_its_draws_when_another_is_turned_on():
    base = parse_train_config({"augment": {"crop": 2}, "seed": 3})
    more = parse_train_config({"augment": {"crop": 2, "erase": 0.5, "flip": True}, "seed": 3})
    a = aug.epoch_plan(base, 50, (8, 8, 1), 0)
    b = aug.epoch_plan(more, 50, (8, 8, 1), 0)
    np.testing.assert_array_equal(a.crop, b.crop)


def test_shift_and_flip_keep_their_draws():
    from cnnc.data.augment import epoch_augmentation

    config = parse_train_config({"augment": {"shift": 2, "flip": True, "rotate": 10}, "seed": 4})
    plan = aug.epoch_plan(config, 30, (8, 8, 1), 3)
    old = epoch_augmentation(30, 4, 3, 2, True)
    np.testing.assert_array_equal(plan.base.shifts, old.shifts)
    np.testing.assert_array_equal(plan.base.flips, old.flips)


def test_no_augmentation_is_no_plan_and_the_input_is_never_written():
    assert aug.epoch_plan(parse_train_config({}), 10, (8, 8, 1), 0) is None
    config = parse_train_config({"augment": {k: v for k, v in ALL.items()
                                             if k not in ("mixup", "cutmix")}})
    plan = aug.epoch_plan(config, 10, (8, 8, 1), 0)
    x = np.random.default_rng(0).random((10, 8, 8, 1), dtype=np.float32)
    before = x.copy()
    out = plan.batch(x, 0, 10)
    np.testing.assert_array_equal(x, before)
    assert out.shape == x.shape and out.dtype == np.float32


def test_bad_augmentation_settings_name_the_key():
    with pytest.raises(SpecError, match="train.augment.rotate"):
        parse_train_config({"augment": {"rotate": 200}})
    with pytest.raises(SpecError, match="train.augment.erase"):
        parse_train_config({"augment": {"erase": 1.5}})
    with pytest.raises(SpecError, match="train.augment.crop_padding"):
        parse_train_config({"augment": {"crop_padding": "wrap"}})
    with pytest.raises(SpecError, match="train.augment.mixup"):
        parse_train_config({"augment": {"mixup": 0.2}, "target": "input", "loss": "mse"})
    config = parse_train_config({"augment": {"crop": 8, "crop_padding": "reflect"}})
    with pytest.raises(SpecError, match="reflect padding of 8 pixels"):
        aug.epoch_plan(config, 4, (8, 8, 1), 0)


SPEC = """\
network: small
input: [8, 8, 1]
layers:
  - {conv2d: [4, 3], padding: same, activation: relu}
  - flatten
  - {dense: 3, activation: softmax}
train:
  epochs: 2
  batch_size: 8
  optimizer: {name: sgd, learning_rate: 0.05}
  seed: 11
"""


def _data(n: int, seed: int = 0) -> LabelledData:
    rng = np.random.default_rng(seed)
    return LabelledData(rng.random((n, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, n))


class Recording(Trainer):
    """Keeps every batch the model was given, and every batch it was asked to predict."""

    def _queue_batch(self, idx, start, aug_plan, lr):
        model = self.model
        seen = getattr(self, "seen", [])
        original = model.queue_train_step

        def spy(x, y, **kw):
            seen.append((np.array(x), np.array(y)))
            return original(x, y, **kw)

        model.queue_train_step = spy
        try:
            super()._queue_batch(idx, start, aug_plan, lr)
        finally:
            model.queue_train_step = original
        self.seen = seen


def _spec(augment: dict, **train) -> str:
    """SPEC with these augmentation settings (and other train keys) in its train section."""
    items = ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}"
                      for k, v in augment.items())
    extra = "".join(f"  {k}: {v}\n" for k, v in train.items())
    return SPEC + f"  augment: {{{items}}}\n" + extra


def test_training_batches_are_augmented_and_validation_is_not(monkeypatch):
    from cnnc.train import loop

    model = cnnc.compile(_spec(ALL), backend="numpy")
    config = model.train_config
    assert config.augment == parse_train_config({"augment": ALL}).augment
    train, validation = _data(24), _data(10, seed=1)
    evaluated = []
    real = loop.evaluate_arrays

    def spy(m, data, *args, **kw):
        evaluated.append(np.array(data.x))
        return real(m, data, *args, **kw)

    monkeypatch.setattr(loop, "evaluate_arrays", spy)
    t = Recording(model, config, train, validation, classes=3)
    history = t.run()
    assert len(evaluated) == 2 and all(np.array_equal(v, validation.x) for v in evaluated)
    x0, y0 = t.seen[0]
    assert y0.shape == (8, 3) and np.allclose(y0.sum(1), 1)  # soft targets: rows of weights
    assert not any(np.array_equal(x0[i], train.x[j]) for i in range(8) for j in range(24))
    assert 0 <= history.epochs[-1]["accuracy"] <= 1


def test_mixup_accuracy_counts_the_larger_share(backend):
    """Training accuracy under mixup: a prediction is right when it is the class with the
    larger share of the mixed target (the target row's argmax)."""
    model = cnnc.compile(SPEC + "  augment: {mixup: 0.2}\n", backend=backend)
    assert model.train_config.soft_targets
    x = _data(4).x
    y = np.array([[0.7, 0.3, 0.0], [0.0, 0.4, 0.6], [0.0, 1.0, 0.0], [0.2, 0.0, 0.8]],
                 np.float32)
    pred = model.predict(x)
    model.queue_train_step(x, y)
    (fig,) = model.read_queued_steps()
    assert fig.correct == int((pred.argmax(1) == y.argmax(1)).sum())


def _resume_check(backend: str, tmp_path, augment: dict) -> None:
    from cnnc.train.checkpoint import load_checkpoint
    from cnnc.train.loop import TrainingInterrupted

    spec = _spec(augment, label_smoothing=0.1).replace(
        "{name: sgd, learning_rate: 0.05}", "{name: adam, learning_rate: 0.01}")
    whole = cnnc.compile(spec, backend=backend)
    config = whole.train_config
    assert config.label_smoothing == 0.1 and config.optimizer.name == "adam"
    ref = Trainer(whole, config, _data(40), None, classes=3).run()
    calls = [0]

    class StopMidEpoch(Trainer):
        def _stop_requested(self, stop):
            calls[0] += 1
            return calls[0] == 8  # epoch 2 after its second batch (6: the end of epoch 1)

    ckpt = tmp_path / "checkpoint.safetensors"
    model = cnnc.compile(spec, backend=backend)
    with pytest.raises(TrainingInterrupted):
        StopMidEpoch(model, config, _data(40), None, classes=3, checkpoint_path=ckpt).run()
    start = load_checkpoint(ckpt)
    assert (start.epoch, start.batch) == (1, 2)
    resumed = cnnc.compile(spec, backend=backend)
    history = Trainer(resumed, config, _data(40), None, classes=3).run(start)
    assert [(r["loss"], r["accuracy"]) for r in history.epochs] == \
        [(r["loss"], r["accuracy"]) for r in ref.epochs]
    wa, wb = whole.get_weights(), resumed.get_weights()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_resume_mid_epoch_is_bit_identical_with_every_augmentation(backend, tmp_path):
    _resume_check(backend, tmp_path, ALL)


def test_augmentation_and_label_smoothing_round_trip_through_the_dsl_and_yaml(tmp_path):
    from cnnc.frontend.writers import to_dsl, to_yaml

    dsl = tmp_path / "t.cnn"
    dsl.write_text("network t\ninput 8x8x1\nflatten\ndense 3 softmax\ntrain {\n"
                   "  augment crop=4 crop_padding=reflect vflip=true rotate=10 translate=0.1 "
                   "erase=0.5 cutout=4 mixup=0.2 cutmix=1.0\n  label_smoothing 0.1\n}\n")
    graph = cnnc.load_spec(dsl)
    want = {**parse_train_config({}).augment, "crop": 4, "crop_padding": "reflect",
            "vflip": True, "rotate": 10.0, "translate": 0.1, "erase": 0.5, "cutout": 4,
            "mixup": 0.2, "cutmix": 1.0}
    assert dict(graph.train.augment) == want and graph.train.label_smoothing == 0.1
    for text, name in ((to_dsl(graph), "back.cnn"), (to_yaml(graph), "back.yaml")):
        (tmp_path / name).write_text(text)
        assert cnnc.load_spec(tmp_path / name).train == graph.train, name


def test_mixup_applies_to_inputs_of_any_shape_and_the_rest_need_images():
    config = parse_train_config({"augment": {"mixup": 0.5}, "seed": 1})
    plan = aug.epoch_plan(config, 6, (5,), 0)
    x = np.arange(30, dtype=np.float32).reshape(6, 5)
    y = np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 0, 1]]
    mixed, soft = plan.mix(x, y, 0, 6)
    lam = plan.mix_lambda[:, None]
    np.testing.assert_allclose(mixed, lam * x + (1 - lam) * x[::-1], rtol=1e-6)
    np.testing.assert_allclose(soft[:, 0], np.where(y[:, 0] == 1, lam[:, 0], 1 - lam[:, 0]),
                               rtol=1e-6)
    with pytest.raises(SpecError, match="augment crop needs image inputs"):
        aug.epoch_plan(parse_train_config({"augment": {"crop": 2}}), 6, (5,), 0)


def test_the_run_header_and_summary_name_each_setting():
    from cnnc.ir.summary import training_line

    config = parse_train_config({"augment": ALL, "label_smoothing": 0.1})
    words = aug.describe(config.augment)
    assert words == ["random crop with 2 px reflect padding", "vertical flips", "rotation ±15°",
                     "translation ±0.1", "random erasing p=0.5", "cutout 3 px",
                     "mixup alpha=0.2", "cutmix alpha=1"]
    line = training_line(config)
    assert "crop_padding=reflect" in line and line.endswith("label smoothing 0.1")
    plain = training_line(parse_train_config({"augment": {"shift": 2}}))
    assert "augment shift=2" in plain and "crop_padding" not in plain
